/** `chipledger check` as a test runs it: on one database, its lines caught. */
import { checkCommand } from '../../src/cli/admin.ts';
import { readConfig } from '../../src/cli/config.ts';
import type { Output } from '../../src/cli/output.ts';

/** Runs `chipledger check` (`--replay` with options.replay) on the database at `databaseUrl` (it migrates first, as every admin command does), with `env`'s settings too. */
export async function runCheck(databaseUrl: string, env: Record<string, string> = {}, options: { replay?: boolean } = {}): Promise<{ code: number; lines: string[] }> {
  const read = readConfig({ ...env, DATABASE_URL: databaseUrl });
  if (!read.ok) throw new Error(read.problems.join('; '));
  const lines: string[] = [];
  const output: Output = { out: (line) => lines.push(line), err: (line) => lines.push(line), errStream: { write: () => true } };
  return { code: await checkCommand(read.config, output, options), lines };
}
