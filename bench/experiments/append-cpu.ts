/**
 * Where a sustained append's time goes: Node's CPU and PostgreSQL's CPU over the append
 * phase of the tlog benchmark, against its wall time. A side at ~100 % of a core is the
 * bottleneck. `node --import tsx bench/experiments/append-cpu.ts [leaves] [batchLeaves]`
 */
import { createPool } from '../../src/store/pool.ts';
import { generateSignerKey } from '../../src/tlog/index.ts';
import { cpuSecondsBetween, startBenchServer } from '../database.ts';
import { sustainedAppends } from '../tlog-append.ts';

const leaves = Number(process.argv[2] ?? 300_000);
const batchLeaves = Number(process.argv[3] ?? 2_048);
const server = await startBenchServer('append-cpu');
try {
  for (let run = 0; run < 3; run += 1) {
    const pool = createPool({ url: await server.createDatabase(`append_cpu_${run}`), connectionsMax: 8, applicationName: 'append-cpu' });
    const pgBefore = server.cpuTicks();
    const nodeBefore = process.cpuUsage();
    const started = performance.now();
    const result = await sustainedAppends(pool, generateSignerKey('bench/append').signerKey, leaves, batchLeaves, () => {});
    const wall = (performance.now() - started) / 1000;
    const node = process.cpuUsage(nodeBefore);
    const pgSeconds = cpuSecondsBetween(pgBefore, server.cpuTicks());
    await pool.end();
    console.log(`${Math.round(result.leavesPerSecond)} leaves/s; wall ${wall.toFixed(2)} s (appends ${result.seconds.toFixed(2)} s); node user ${(node.user / 1e6).toFixed(2)} s system ${(node.system / 1e6).toFixed(2)} s; postgres ${pgSeconds.toFixed(2)} s; per batch: append ${result.perBatchMs.logAppend.toFixed(1)} ms, whole ${result.perBatchMs.writeAndCommit.toFixed(1)} ms`);
  }
} finally {
  await server.stop();
}
