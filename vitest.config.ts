import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const include = ['src/**/*.test.ts', 'test/**/*.test.ts'];

/**
 * The test files that replace a module (vi.mock, vi.doMock, and what undoes or reloads one):
 * their mock only takes hold where the module, and every module importing it, is loaded
 * afresh. They run in a project whose worker empties its module cache before each file. Every
 * other file shares its worker's modules with the files before it: loading the ledger,
 * fastify and zod again for each of ~280 files took a quarter of the suite's time
 * (docs/BENCHMARKS.md, session 31). vi.spyOn needs no project of its own: vitest restores every
 * spy after each file, and stubbed variables and globals too (unstubEnvs, unstubGlobals).
 * What a file changes of the process itself it must put back: test/worker-state-guard.ts
 * fails it otherwise.
 *
 * A helper module that replaces one is refused here: the file importing it would not be found.
 */
const root = fileURLToPath(new URL('.', import.meta.url));
const replacesModule = /\bvi\s*\.\s*(?:mock|doMock|unmock|doUnmock|resetModules|importMock)\b/;

function filesMockingModules(): string[] {
  const found: string[] = [];
  const walk = (folder: string): void => {
    for (const entry of readdirSync(join(root, folder), { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && replacesModule.test(readFileSync(join(root, path), 'utf8'))) {
        if (!entry.name.endsWith('.test.ts')) throw new Error(`vitest.config.ts: ${path} replaces a module (vi.mock or the like) outside a test file; do it in the test file that needs it, so that the file runs with modules loaded afresh`);
        found.push(path);
      }
    }
  };
  for (const folder of ['src', 'test']) walk(folder);
  return found;
}

const mocking = filesMockingModules();

/** What both projects share; the one PostgreSQL of the run is the root's (its globalSetup). */
const shared = { testTimeout: 60_000, hookTimeout: 120_000, pool: 'forks', unstubEnvs: true, unstubGlobals: true, setupFiles: ['test/worker-state-guard.ts'] };

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
