import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

const include = ['src/**/*.test.ts', 'test/**/*.test.ts'];

/**
 * The test files that replace a module (vi.mock, vi.doMock): their mock only takes hold where
 * the module, and every module importing it, is loaded afresh. They run in a project whose
 * worker empties its module cache before each file. Every other file shares its worker's
 * modules with the files before it: loading the ledger, fastify and zod again for each of
 * ~280 files took a quarter of the suite's time (docs/BENCHMARKS.md, session 31). vi.spyOn
 * needs no project of its own: vitest restores every spy after each file.
 */
function filesMockingModules(): string[] {
  const found: string[] = [];
  const walk = (folder: string): void => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.test.ts') && /\bvi\.(?:do)?[mM]ock\(/.test(readFileSync(path, 'utf8'))) found.push(path);
    }
  };
  for (const folder of ['src', 'test']) walk(folder);
  return found;
}

const mocking = filesMockingModules();

/** What both projects share; the one PostgreSQL of the run is the root's (its globalSetup). */
const shared = { testTimeout: 60_000, hookTimeout: 120_000, pool: 'forks' } as const;

export default defineConfig({
  test: {
    // Once for the run, not once per project: inject() in a project reads the root's values.
    globalSetup: ['test/global-setup.ts'],
    // Two cores: database-heavy files run two at a time, each worker kept for the files after.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1, isolate: false } },
    projects: [
      { test: { ...shared, name: 'shared-modules', include, exclude: mocking } },
      { test: { ...shared, name: 'module-mocks', include: mocking, poolOptions: { forks: { isolate: true } } } },
    ],
  },
});
