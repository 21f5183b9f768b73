/**
 * One PostgreSQL for the whole test run: TEST_DATABASE_URL when set, otherwise an
 * embedded server in a fresh temporary folder. Each test file makes its own database
 * from it (test/database.ts), so files never see each other's rows. A run stopped before its
 * teardown (Ctrl-C) leaves its cluster behind: the next run removes it (test/stale-clusters.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import pg from 'pg';
import { startEmbeddedPostgres } from '../src/store/embedded.ts';
import { ensureWriterLogin } from '../src/store/writer-role.ts';
import { testWriterPassword, testWriterRole } from './writer.ts';
import { claimTestCluster, removeStaleTestClusters, testClusterPrefix } from './stale-clusters.ts';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  removeStaleTestClusters(tmpdir(), Date.now()); // whichever PostgreSQL this run uses
  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    await makeWriter(external);
    project.provide('databaseUrl', external);
    return async () => {};
  }
  const folder = mkdtempSync(join(tmpdir(), testClusterPrefix));
  claimTestCluster(folder);
  const database = await startEmbeddedPostgres({ dataDir: join(folder, 'pg'), durable: false });
  await makeWriter(database.url);
  project.provide('databaseUrl', database.url);
  return async () => {
    await database.stop();
    rmSync(folder, { recursive: true, force: true });
  };
}

/**
 * The role each test's ledger writes as, made once for the run (it is the cluster's, shared by
 * every test database): test/database.ts grants it its rights in each.
 */
async function makeWriter(ownerUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: ownerUrl });
  await client.connect();
  try {
    await ensureWriterLogin(client, testWriterRole, testWriterPassword(ownerUrl));
  } finally {
    await client.end();
  }
}

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}
