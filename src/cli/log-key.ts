/**
 * Where the transparency log's signing key comes from. It is never made silently: a
 * production server needs CHIPLEDGER_LOG_KEY_FILE (made by `chipledger log keygen`) or
 * CHIPLEDGER_LOG_SIGNER_KEY; only --demo keeps a demo key of its own, and says so.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSignerKey, parseSignerKey } from '../tlog/index.ts';
import type { Config } from './config.ts';
import { Failure, type Output } from './output.ts';

/** The demo log's origin (and key name). */
export const demoLogOrigin = 'demo.chipledger.local/log';

export async function loadLogSignerKey(config: Config, demo: boolean, output: Output): Promise<string> {
  if (config.log.signerKey !== undefined) return config.log.signerKey;
  if (config.log.keyFile !== undefined) return readKeyFile(config.log.keyFile);
  if (!demo) {
    throw new Failure('no transparency-log signing key: set CHIPLEDGER_LOG_KEY_FILE (make one with `chipledger log keygen --origin YOUR.ORIGIN/log --out FILE`) or CHIPLEDGER_LOG_SIGNER_KEY');
  }
  const file = join(config.dataDir, 'demo-log-signer.key');
  if (!existsSync(file)) {
    mkdirSync(config.dataDir, { recursive: true });
    const key = generateSignerKey(demoLogOrigin);
    writeFileSync(file, `${key.signerKey}\n`, { mode: 0o600, flag: 'wx' });
    output.err(`chipledger: made a DEMO log signing key in ${file} (verifier key ${key.verifierKey}); a real deployment sets CHIPLEDGER_LOG_KEY_FILE`);
  }
  return readKeyFile(file);
}

/** Reads a signer key file, refusing one that others can read. */
export function readKeyFile(file: string): string {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (error) {
    throw new Failure(`couldn't read the log signing key ${file}: ${(error as Error).message}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new Failure(`the log signing key ${file} is readable by others (mode ${(mode & 0o777).toString(8)}); run chmod 600 ${file}`);
  }
  const text = readFileSync(file, 'utf8').trim();
  try {
    parseSignerKey(text);
  } catch (error) {
    throw new Failure(`${file} does not hold a C2SP Ed25519 signer key: ${(error as Error).message}`);
  }
  return text;
}

/** Writes a new key file with mode 0600; never overwrites. */
export function writeKeyFile(file: string, signerKey: string): void {
  try {
    writeFileSync(file, `${signerKey}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
  } catch (error) {
    throw new Failure(`couldn't write the key to ${file}: ${(error as Error).message}`);
  }
}
