/**
 * The timed client of the proof benchmark, in a process of its own: the benchmark's process
 * holds a million tile hashes (to verify the answers), and its garbage collections would
 * otherwise land in the latencies it measures, as a real verifier's heap does not.
 *
 * Reads one JSON object from stdin: { base, warmup, paths }. Sends GET `warmup` once (so
 * connection set-up is not timed), then each path in turn on one keep-alive connection, and
 * writes one JSON object to stdout: { latenciesMs, bodies }, in the order of `paths`. Any
 * answer other than 200 stops it with exit code 1 and the answer on stderr.
 */
import { Agent, request } from 'node:http';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface ProofClientInput {
  base: string;
  warmup: string;
  paths: string[];
}

export interface ProofClientOutput {
  latenciesMs: number[];
  bodies: string[];
}

const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function get(base: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { agent }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (response.statusCode === 200) resolve(body);
        else reject(new Error(`GET ${path} answered ${response.statusCode}: ${body}`));
      });
      response.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ProofClientInput;
  await get(input.base, input.warmup);
  const latenciesMs: number[] = [];
  const bodies: string[] = [];
  for (const path of input.paths) {
    const started = performance.now();
    bodies.push(await get(input.base, path));
    latenciesMs.push(performance.now() - started);
  }
  agent.destroy();
  process.stdout.write(JSON.stringify({ latenciesMs, bodies } satisfies ProofClientOutput));
}

/** Runs the client in a new Node process and returns what it measured. */
export function runProofClient(input: ProofClientInput): Promise<ProofClientOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve(JSON.parse(Buffer.concat(out).toString('utf8')) as ProofClientOutput);
      else reject(new Error(`the proof client exited with code ${code}: ${Buffer.concat(err).toString('utf8').slice(-2_000)}`));
    });
    child.stdin.end(JSON.stringify(input));
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
