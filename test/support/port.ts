/**
 * A TCP port on 127.0.0.1 for a server a test starts itself and reaches only seconds later (a
 * child `chipledger serve`, whose PostgreSQL is made first).
 *
 * findFreePort's port is the kernel's pick from its ephemeral range, free only when probed:
 * until the child listens, any other file's listen(0), findFreePort or PostgreSQL may be given
 * the same port (CI saw it once in 1,900 tests; test/support/http-serve.ts retries for it). The
 * kernel never hands out a port below that range, so one from there is taken, in the meantime,
 * only by another pick of this function: each worker picks from a block of its own, each port
 * once, probed free.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Where the blocks start: above the ports the Fetch standard refuses (10080 and below), which serve refuses too. */
const blocksStart = 20_000;
const blockSize = 1_000;

/** The first port of the kernel's ephemeral range (Linux's default where it cannot be read). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low)) return low;
  } catch {
    // Not Linux: macOS's range starts at 49152, above the default.
  }
  return 32_768;
}

const blocks = Math.max(1, Math.floor((ephemeralLow() - blocksStart) / blockSize));
/** Workers run one file at a time: VITEST_POOL_ID tells apart those running at once. */
const worker = Number(process.env.VITEST_POOL_ID ?? process.pid);
const block = blocksStart + ((Number.isInteger(worker) ? worker : process.pid) % blocks) * blockSize;
/** From a random place in the block: a worker started afresh (an isolated file) skips what an earlier one may still hold. */
let next = Math.floor(Math.random() * blockSize);

function isFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const probe = createServer();
    probe.once('error', () => done(false));
    probe.listen({ host: '127.0.0.1', port, exclusive: true }, () => probe.close(() => done(true)));
  });
}

/** A port free now, below the ephemeral range, that this process has not handed out before. */
export async function unusedPort(): Promise<number> {
  for (let tries = 0; tries < blockSize; tries += 1) {
    const port = block + (next % blockSize);
    next += 1;
    if (await isFree(port)) return port;
  }
  throw new Error(`no free TCP port on 127.0.0.1 in ${block}-${block + blockSize - 1}`);
}
