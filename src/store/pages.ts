/**
 * Keyset pages for the read path (store/read-queries.ts says the rules): rows in a fixed order
 * by a unique key, each page asking for one row more than it returns to know whether another
 * follows, and the snapshot for reads that must agree with each other.
 */
import { limits } from '../core/limits.ts';
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

/**
 * `sql.rowBytes` (an expression over the page's rows as `q`, with `sql.keyColumn` their key's
 * column) bounds the page by bytes too: see withinBytes.
 */
export async function keysetPage<T, K extends number | string>(
  pool: Reader, statement: Statement, sql: { from: string; where: string[]; key: string; select?: string; rowBytes?: { expression: string; keyColumn: string } }, page: PageRequest<K>, keyOf: (row: T) => K,
): Promise<Page<T, K>> {
  const where = [...sql.where];
  if (page.after !== null) where.push(`${sql.key} > ${statement.add(page.after)}`);
  const text = `SELECT ${sql.select ?? '*'} FROM ${sql.from} WHERE ${where.join(' AND ')} ORDER BY ${sql.key} LIMIT ${statement.add(page.limit + 1)}`;
  if (sql.rowBytes === undefined) return pageOf((await pool.query(text, statement.params)).rows as T[], page.limit, keyOf);
  const measured = withinBytes(text, sql.rowBytes.expression, sql.rowBytes.keyColumn, statement);
  return pageWithinBytes((await pool.query(measured, statement.params)).rows as Array<T & MeasuredRow>, page.limit, keyOf);
}

/** What withinBytes adds to each row: the stored bytes of the rows before it, and how many rows the page read. */
export interface MeasuredRow {
  page_bytes_before_: string | number | null;
  page_rows_read_: string | number;
}

/**
 * `query` (a page's rows in key order, at most limit + 1 of them) cut where its rows pass
 * limits.pageBytesMax stored bytes (`rowBytes`, an expression over the rows as `q`; null for
 * a row that is no page row, which is kept): a row is kept while the rows before it hold
 * fewer bytes than the bound, so a page always holds its first row. In SQL, so that the rows
 * cut never reach this process.
 */
export function withinBytes(query: string, rowBytes: string, keyColumn: string, statement: Statement): string {
  // Each row measured once (OFFSET 0 keeps PostgreSQL from inlining the measure, which the
  // window and the projection would then each compute: a version's snapshot turned into text
  // twice made its page 600 times slower on the server; session 18's review of this change).
  return `SELECT * FROM (
      SELECT q.*, sum(m.bytes) OVER (ORDER BY q.${keyColumn} ROWS UNBOUNDED PRECEDING) - m.bytes AS page_bytes_before_, count(q.${keyColumn}) OVER () AS page_rows_read_
      FROM (${query}) q CROSS JOIN LATERAL (SELECT ${rowBytes} AS bytes OFFSET 0) m) measured
    WHERE page_bytes_before_ IS NULL OR page_bytes_before_ < ${statement.add(limits.pageBytesMax)}
    ORDER BY ${keyColumn}`;
}

/** Whether withinBytes cut rows off this page (then the page ends at its last row, with a cursor), and the rows without its columns. */
export function measuredRows<T>(rows: Array<T & MeasuredRow>): { rows: T[]; cut: boolean } {
  const read = rows.length === 0 ? 0 : Number(rows[0]!.page_rows_read_);
  const kept = rows.map(({ page_bytes_before_: _before, page_rows_read_: _read, ...row }) => row as T);
  return { rows: kept, cut: kept.filter((_row, index) => rows[index]!.page_bytes_before_ !== null).length < read };
}

/** A page from withinBytes' rows: cut short by bytes, it goes on after its last row; otherwise as pageOf. */
export function pageWithinBytes<T, K>(rows: Array<T & MeasuredRow>, limit: number, keyOf: (row: T) => K): Page<T, K> {
  const measured = measuredRows(rows);
  if (!measured.cut) return pageOf(measured.rows, limit, keyOf);
  return { rows: measured.rows, nextAfter: keyOf(measured.rows[measured.rows.length - 1]!) };
}

/** A page from up to limit + 1 rows in key order: the extra row says there is more. */
export function pageOf<T, K>(rows: T[], limit: number, keyOf: (row: T) => K): Page<T, K> {
  const more = rows.length > limit;
  if (more) rows.length = limit;
  const last = rows[rows.length - 1];
  return { rows, nextAfter: more && last !== undefined ? keyOf(last) : null };
}

export const bySeq = (row: { created_seq: number }): number => row.created_seq;
