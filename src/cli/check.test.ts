/**
 * `chipledger check`: the database's invariants and the transparency log's start-up check
 * as one list, and a log that fails its check listed, not crashed on.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { checkCommand } from './admin.ts';
import { readConfig } from './config.ts';
import type { Output } from './output.ts';

let database: TestDatabase;
let world: World;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

async function check(): Promise<{ code: number; lines: string[] }> {
  const read = readConfig({ DATABASE_URL: database.url });
  if (!read.ok) throw new Error(read.problems.join('; '));
  const lines: string[] = [];
  const output: Output = { out: (line) => lines.push(line), err: (line) => lines.push(line), errStream: { write: () => true } };
  return { code: await checkCommand(read.config, output), lines };
}

describe('chipledger check', () => {
  it('says every invariant holds on an honest ledger', async () => {
    expect(world.exportLicenceId).toBeTruthy();
    expect(await check()).toEqual({ code: 0, lines: ['Every invariant holds: no violations.'] });
  });

  it('lists a changed event as an invariant-5 violation, beside whatever else it finds, and exits 1', async () => {
    const flip = 'UPDATE events SET canonical = set_byte(canonical, 20, get_byte(canonical, 20) # 1) WHERE seq = 3';
    await database.pool.query(flip);
    try {
      const { code, lines } = await check();
      expect(code).toBe(1);
      expect(lines[0]).toBe('1 invariant violation(s):');
      expect(lines.join('\n')).toMatch(/invariant-5 +log: leaf +transparency log check "leaf" failed/);
    } finally {
      await database.pool.query(flip); // the same flip undoes it
    }
    expect((await check()).code).toBe(0);
  });
});
