/**
 * The writer role of a test run (store/writer-role.ts): each test's ledger writes as it, as a
 * server does, so a write the role's rights do not cover fails the tests that make it. Tests
 * that play an attacker who owns the tables use the owner's pool.
 */
import { derivedWriterPassword } from '../src/store/writer-role.ts';

/** Not the embedded cluster's name: TEST_DATABASE_URL may name a server that holds other roles. */
export const testWriterRole = 'chipledger_test_writer';

export function testWriterPassword(ownerUrl: string): string {
  return derivedWriterPassword(`test:${decodeURIComponent(new URL(ownerUrl).password)}`);
}

/** The URL of database `name` on the run's server, logged in as the test writer. */
export function testWriterUrl(ownerUrl: string, name: string): string {
  const url = new URL(ownerUrl);
  url.password = testWriterPassword(ownerUrl);
  url.username = testWriterRole;
  url.pathname = `/${name}`;
  return url.toString();
}
