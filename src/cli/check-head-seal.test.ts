/**
 * `chipledger check` holds the log's head to its seal (ledger/log/head-seal.ts) when it is given
 * the log's key: a batch appended without the key is listed as a violation; without the key the
 * answer says the seal was not checked, rather than passing it over in silence.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/database.ts';
import { runCheck } from '../../test/support/check-command.ts';
import { appendWithoutKey } from '../../test/support/keyless-append.ts';
import { Ledger } from '../ledger/ledger.ts';
import { systemActor } from '../ledger/permissions.ts';
import { generateSignerKey } from '../tlog/index.ts';

const key = generateSignerKey('check-seal.chipledger.test');
const withKey = { CHIPLEDGER_LOG_SIGNER_KEY: key.signerKey };
let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
  const ledger = await Ledger.open({ pool: database.writerPool, logSignerKey: key.signerKey, checkpointIntervalMs: 3_600_000 });
  try {
    expect(await ledger.submit('organisation.register', { name: 'Checked Org', country: 'US', roles: ['exporter'], identifiers: {} }, systemActor)).toMatchObject({ ok: true });
  } finally {
    await ledger.close();
  }
});
afterAll(async () => {
  await database?.drop();
});

describe("chipledger check and the log head's seal", () => {
  it('passes a head the ledger sealed, and lists one appended without the key, as invariant-5 log: head-seal', async () => {
    expect(await runCheck(database.url, withKey)).toEqual({ code: 0, lines: [expect.stringMatching(/^Every invariant holds: no violations/)] });
    await appendWithoutKey(database.writerPool, 'forged.kind');
    const { code, lines } = await runCheck(database.url, withKey);
    expect(code).toBe(1);
    expect(lines[0]).toMatch(/^1 invariant violation\(s\)/);
    expect(lines.join('\n')).toMatch(/invariant-5 +log: head-seal +the log's head \(size \d+, root [0-9a-f]{64}\) is not sealed by the log's key check-seal\.chipledger\.test\+/);
  });

  it("says, without the log's key, that the seal was not checked", async () => {
    const { lines } = await runCheck(database.url);
    expect(lines.at(-1)).toBe(`The log head's seal was not checked: this command was not given the log's key (${key.verifierKey}); give it as the server is given it (CHIPLEDGER_LOG_KEY_FILE).`);
  });
});
