/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by
 * source (our files by path, dependencies by package), and total time by function (itself
 * and everything it called), so a profile of a benchmark can be quoted in a report
 * without opening DevTools.
 *
 *   node --import tsx bench/cpuprofile-summary.ts PROFILE.cpuprofile [top]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

function sourceOf(url: string): string {
  if (url === '') return '(native/runtime)';
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + 'node_modules/'.length).split('/');
    return `pkg:${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (url.startsWith('node:')) return url;
  const src = url.indexOf('/src/');
  if (src >= 0) return url.slice(src + 1);
  const bench = url.indexOf('/bench/');
  return bench >= 0 ? url.slice(bench + 1) : url;
}

function main(path: string, top: number): void {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMicros = new Map<number, number>();
  profile.samples.forEach((id, index) => selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0)));
  const total = profile.endTime - profile.startTime;
  const byFunction = new Map<string, number>();
  const bySource = new Map<string, number>();
  for (const [id, micros] of selfMicros) {
    const frame = byId.get(id)!.callFrame;
    const source = sourceOf(frame.url);
    const name = `${frame.functionName || '(anonymous)'}  ${source}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
    bySource.set(source, (bySource.get(source) ?? 0) + micros);
  }
  // Total time: each sample counts once for every distinct function on its stack.
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const nameOf = (id: number) => {
    const frame = byId.get(id)!.callFrame;
    return `${frame.functionName || '(anonymous)'}  ${sourceOf(frame.url)}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
  };
  const totalByFunction = new Map<string, number>();
  for (const [id, micros] of selfMicros) {
    const names = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) names.add(nameOf(at));
    for (const name of names) totalByFunction.set(name, (totalByFunction.get(name) ?? 0) + micros);
  }
  for (const name of ['(root)  (native/runtime)', '(idle)  (native/runtime)', '(program)  (native/runtime)', '(garbage collector)  (native/runtime)']) totalByFunction.delete(name);
  const print = (title: string, map: Map<string, number>) => {
    console.log(`\n${title}`);
    for (const [name, micros] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      console.log(`  ${(micros / 1000).toFixed(0).padStart(7)} ms ${((100 * micros) / total).toFixed(1).padStart(5)}%  ${name}`);
    }
  };
  console.log(`profile ${path}: ${(total / 1e6).toFixed(2)} s wall`);
  print('self time by source', bySource);
  print('self time by function', byFunction);
  print('total time by function (with what it called)', totalByFunction);
}

main(process.argv[2] ?? '', Number(process.argv[3] ?? 30));
