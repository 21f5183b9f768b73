/**
 * `chipledger token revoke`: the operator revokes any token, also one no authority admin may
 * (an auditor's in a country without an authority here), and the token stops working.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { tokenActor, worldPerFile, type World } from '../../test/world.ts';
import { systemActor } from '../ledger/permissions.ts';
import { TokenVerifier } from '../server/auth.ts';
import { tokenRevokeCommand } from './admin.ts';
import { readConfig } from './config.ts';
import type { Output } from './output.ts';

let database: TestDatabase;
let world: World;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const folder = mkdtempSync(join(tmpdir(), 'chipledger-token-revoke-'));
const dataDir = join(folder, 'data');
afterAll(() => rmSync(folder, { recursive: true, force: true }));

async function revoke(tokenId: string): Promise<{ code: number | Error; lines: string[] }> {
  // A data dir of its own: the repository's default (./.chipledger) holds the published
  // checkpoint of any `npm start` run there, which this database is not.
  const read = readConfig({ DATABASE_URL: database.url, CHIPLEDGER_DATA_DIR: dataDir });
  if (!read.ok) throw new Error(read.problems.join('; '));
  const lines: string[] = [];
  const output: Output = { out: (line) => lines.push(line), err: (line) => lines.push(line), errStream: { write: () => true } };
  const code = await tokenRevokeCommand(read.config, tokenId, output).catch((error: Error) => error);
  return { code, lines };
}

describe('chipledger token revoke', () => {
  it("revokes an auditor's token, which no authority admin may", async () => {
    const made = await world.run('token.create', { organisationId: world.actors.auditor.orgId, role: 'auditor', label: 'leaked laptop' }, systemActor);
    const tokenId = String(made.tokenId);
    const secret = String(made.secret);
    // Neither authority may: the auditor is in neither's country.
    for (const admin of [await tokenActor(world.run, world.actors.bis.orgId, 'authority_admin'), await tokenActor(world.run, world.actors.mofcom.orgId, 'authority_admin')]) {
      const answer = await world.ledger.submit('token.revoke', { tokenId }, admin);
      expect(answer.ok).toBe(false);
      if (!answer.ok) expect(answer.error.message).toContain('chipledger token revoke');
    }
    expect(await new TokenVerifier(database.pool).verify(`Bearer ${secret}`)).toMatchObject({ id: tokenId, role: 'auditor' });

    const { code, lines } = await revoke(tokenId);
    expect(code).toBe(0);
    expect(lines[0]).toMatch(new RegExp(`^Token ${tokenId} revoked at \\d{4}-`));
    await expect(new TokenVerifier(database.pool).verify(`Bearer ${secret}`)).rejects.toThrow(/not valid/);

    const again = await revoke(tokenId);
    expect(again.code).toBeInstanceOf(Error);
    expect((again.code as Error).message).toMatch(/couldn't revoke token .* \(conflict, token-status\): .* already revoked/);
    expect((await revoke('TOK-nosuch')).code).toBeInstanceOf(Error);
  });
});
