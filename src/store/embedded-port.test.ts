import { describe, expect, it } from 'vitest';
import { findFreePort } from './embedded.ts';

/** The kernel's answers, in turn, as findFreePort's probe. */
function probesReturning(...ports: number[]): () => Promise<number> {
  let next = 0;
  return async () => ports[Math.min(next++, ports.length - 1)]!;
}

describe('findFreePort', () => {
  it('passes over a port it must avoid (serve\'s API port) and returns the next free one', async () => {
    expect(await findFreePort([40329], probesReturning(40329, 40329, 40330))).toBe(40330);
  });

  it('fails, naming the ports, when the kernel offers nothing else', async () => {
    await expect(findFreePort([40329], probesReturning(40329))).rejects.toThrow(/other than 40329/);
  });

  it('asks the kernel when given no probe', async () => {
    const port = await findFreePort();
    expect(port).toBeGreaterThan(0);
    expect(port).toBeLessThan(65_536);
  });
});
