/**
 * What adoptLogKey tells an operator whose configured key is not the log's: a rotation only
 * for a key of the log's origin; for a key of another origin, that a key of this log keeps its
 * origin, since the rotation it would otherwise suggest is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/database.ts';
import { listLogKeys } from '../../store/tlog-tables.ts';
import { generateSignerKey, parseSignerKey } from '../../tlog/index.ts';
import { adoptLogKey, LogKeyError } from './keys.ts';

let database: TestDatabase;
const logKey = generateSignerKey('log.keys.test');

beforeAll(async () => {
  database = await createTestDatabase();
  expect(await adoptLogKey(database.pool, parseSignerKey(logKey.signerKey))).toBe(false);
});
afterAll(async () => {
  await database?.drop();
});

async function refusal(signerKey: string, previousSignerKey?: string): Promise<LogKeyError> {
  const error = await adoptLogKey(database.pool, parseSignerKey(signerKey), previousSignerKey).then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(LogKeyError);
  return error as LogKeyError;
}

describe('a configured key that is not the log\'s', () => {
  it('of another origin: says the origins and how to make a key of this log, and suggests no rotation', async () => {
    const other = generateSignerKey('other.origin.test');
    const refused = await refusal(other.signerKey);
    expect(refused.message).toBe(`the configured log key is of origin other.origin.test, but this log's origin is log.keys.test (signed by ${logKey.verifierKey}): a key for this log must keep its origin, since a new origin is a new log; configure the log's own key, or make a new one with \`chipledger log keygen --origin log.keys.test --out FILE\``);
    expect(refused.message).not.toContain('CHIPLEDGER_LOG_PREVIOUS_KEY_FILE');
    // What the old message suggested is refused, as it says.
    expect((await refusal(other.signerKey, logKey.signerKey)).message).toContain('a new origin is a new log');
  });

  it('of the log\'s origin: says how to rotate to it', async () => {
    const next = generateSignerKey('log.keys.test');
    expect((await refusal(next.signerKey)).message).toBe(`this log is signed by ${logKey.verifierKey}, not by the configured key ${next.verifierKey}; to rotate to the new key, also configure the current one as the previous key (CHIPLEDGER_LOG_PREVIOUS_KEY_FILE) so that it can announce the new one`);
    expect((await listLogKeys(database.pool)).map((key) => key.verifier_key)).toEqual([logKey.verifierKey]);
  });
});
