/**
 * `npm run bench -- [name] [options]`: runs one benchmark by name, or every one that
 * exists when no name is given. Each benchmark starts (and stops) its own durable
 * PostgreSQL unless BENCH_DATABASE_URL names one. The last line of output is one JSON
 * object with the figures: a benchmark's own, or, when several ran, all of them.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Benchmark {
  run(args: string[]): Promise<Record<string, unknown>>;
}

/** Every benchmark the project plans; a name whose file is not written yet says so. */
const names = ['ledger', 'tlog', 'http'] as const;
type Name = (typeof names)[number];

const fileOf = (name: Name) => fileURLToPath(new URL(`./${name}.ts`, import.meta.url));
const available = (): Name[] => names.filter((name) => existsSync(fileOf(name)));

function usage(problem: string): never {
  console.error(`${problem}\nusage: npm run bench -- [${names.join('|')}] [options]\n  available now: ${available().join(', ') || 'none'}; no name runs them all`);
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  const first = argv[0];
  const named = first !== undefined && !first.startsWith('-');
  if (named && !(names as readonly string[]).includes(first)) usage(`unknown benchmark "${first}"`);
  if (named && !available().includes(first as Name)) usage(`benchmark "${first}" is planned but bench/${first}.ts is not written yet`);
  const chosen: Name[] = named ? [first as Name] : available();
  const args = named ? argv.slice(1) : argv;
  if (!named && args.length > 0 && chosen.length > 1) usage('options apply to one benchmark: name it');
  const results: Record<string, unknown>[] = [];
  for (const name of chosen) {
    const benchmark = (await import(`./${name}.ts`)) as Benchmark;
    const result = await benchmark.run(args);
    results.push(result);
    if (chosen.length > 1) console.log(JSON.stringify(result));
  }
  console.log(JSON.stringify(results.length === 1 ? results[0] : { bench: 'all', results }));
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);
