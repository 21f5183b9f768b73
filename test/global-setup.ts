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
import { startEmbeddedPostgres } from '../src/store/embedded.ts';
import { claimTestCluster, removeStaleTestClusters, testClusterPrefix } from './stale-clusters.ts';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  removeStaleTestClusters(tmpdir(), Date.now()); // whichever PostgreSQL this run uses
  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    project.provide('databaseUrl', external);
    return async () => {};
  }
  const folder = mkdtempSync(join(tmpdir(), testClusterPrefix));
  claimTestCluster(folder);
  const database = await startEmbeddedPostgres({ dataDir: join(folder, 'pg'), durable: false });
  project.provide('databaseUrl', database.url);
  return async () => {
    await database.stop();
    rmSync(folder, { recursive: true, force: true });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}
