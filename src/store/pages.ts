/**
 * Keyset pages for the read path (store/read-queries.ts says the rules): rows in a fixed order
 * by a unique key, each page asking for one row more than it returns to know whether another
 * follows, and the snapshot for reads that must agree with each other.
 */
import { inTransaction, type Pool, type PoolClient } from './pool.ts';
import type { Statement } from './visibility.ts';

export interface PageRequest<K> {
  /** The last key of the previous page; null starts at the beginning. */
  after: K | null;
  limit: number;
}

export interface Page<T, K> {
  rows: T[];
  /** The key to continue after; null on the last page. */
  nextAfter: K | null;
}

/** A pool, or one connection inside a snapshot (readSnapshot) for reads that must agree. */
export type Reader = Pool | PoolClient;

/**
 * Runs reads that must see one committed state (a licence's totals and its allocations) on
 * one connection in a REPEATABLE READ, READ ONLY transaction: a batch committing between two
 * statements on the pool would make the answer disagree with itself.
 */
export function readSnapshot<T>(pool: Pool, read: (reader: Reader) => Promise<T>): Promise<T> {
  return inTransaction(pool, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', read);
}

export async function keysetPage<T, K extends number | string>(
  pool: Reader, statement: Statement, sql: { from: string; where: string[]; key: string; select?: string }, page: PageRequest<K>, keyOf: (row: T) => K,
): Promise<Page<T, K>> {
  const where = [...sql.where];
  if (page.after !== null) where.push(`${sql.key} > ${statement.add(page.after)}`);
  const text = `SELECT ${sql.select ?? '*'} FROM ${sql.from} WHERE ${where.join(' AND ')} ORDER BY ${sql.key} LIMIT ${statement.add(page.limit + 1)}`;
  return pageOf((await pool.query(text, statement.params)).rows as T[], page.limit, keyOf);
}

/** A page from up to limit + 1 rows in key order: the extra row says there is more. */
export function pageOf<T, K>(rows: T[], limit: number, keyOf: (row: T) => K): Page<T, K> {
  const more = rows.length > limit;
  if (more) rows.length = limit;
  const last = rows[rows.length - 1];
  return { rows, nextAfter: more && last !== undefined ? keyOf(last) : null };
}

export const bySeq = (row: { created_seq: number }): number => row.created_seq;

/** Rows embedded in a detail view stop here; the list endpoints page through the rest. */
export const embeddedRowsMax = 500;
