/**
 * Which cluster a PostgreSQL server serves: its data_directory, asked on a connection of its
 * own (not a pool's), for telling a live lock holder's server from a copied folder's.
 */
import pg from 'pg';

export interface DataDirectoryQuestion {
  url: string;
  /** Bounds the connection and the query each. */
  timeoutMs: number;
  /** The connection's application_name, as pg_stat_activity shows it. */
  applicationName: string;
}

/**
 * The server's data_directory setting, as it says it (symbolic links not resolved). Throws
 * when the server cannot be reached or answered (the URL's user may read the setting: the
 * embedded server's superuser may). The connection is ended whatever happens, not awaited.
 */
export async function servedDataDirectory(question: DataDirectoryQuestion): Promise<string> {
  const client = new pg.Client({ connectionString: question.url, connectionTimeoutMillis: question.timeoutMs, application_name: question.applicationName });
  client.on('error', () => {}); // a lost connection fails the query that uses it
  try {
    await client.connect();
    const found = await client.query<{ served: string }>({ text: `SELECT current_setting('data_directory') AS served`, query_timeout: question.timeoutMs } as pg.QueryConfig);
    return found.rows[0]!.served;
  } finally {
    client.end().catch(() => {});
  }
}
