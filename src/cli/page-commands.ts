/**
 * Client commands that read: one page of a list as a table, and one record as `key: value`
 * lines, each the API's own answer with --json. Every list and show command of the CLI prints
 * through these two (licences, allocations, shipments, units, sites, events, versions), so they
 * check --limit and say the next page alike.
 */
import { pageLimitOf } from './client-values.ts';
import type { ApiClient } from './http.ts';
import { Failure, printable, printableJson, type Output } from './output.ts';
import { pickColumns, renderRecord, renderTable, type Row } from './table.ts';

/** Options of a list: one page. */
export interface PageOptions {
  limit?: string;
  cursor?: string;
  json?: boolean;
}

/** How a page is shown: its preferred columns, its items shaped for the table, and a note on them for stderr. */
export interface PageView {
  columns: readonly string[];
  rows?: (items: Row[]) => Row[];
  note?: (items: Row[]) => string | undefined;
}

/** A page of the API as every list answers one: its items (records) and the cursor of the next, or null. */
export interface Page<T = Row> {
  items: T[];
  nextCursor: string | null;
}

/** Whether a JSON value is a record: an object, not null or a list. */
const isRecord = (value: unknown): value is Row => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Gets one page of `route`, held to that shape before anything is read of it: an answer of
 * another shape (a mistyped CHIPLEDGER_URL's catch-all, a broken server) is said in one line,
 * not met as a TypeError deep in the table's code.
 */
export async function getPage<T = Row>(client: ApiClient, route: string, query: Record<string, string | number | undefined>): Promise<Page<T>> {
  const answer = await client.get<unknown>(route, query);
  const page = answer as Partial<Page<unknown>> | null;
  if (!isRecord(page) || !Array.isArray(page!.items) || !page!.items.every(isRecord) || !(page!.nextCursor === null || typeof page!.nextCursor === 'string')) {
    throw new Failure(`GET ${route} answered with something other than a page of records (items and nextCursor); is CHIPLEDGER_URL the chipledger API?`);
  }
  return page as Page<T>;
}

/**
 * One page of a list as a table (`view.rows` shapes its items for one), or the API's page with
 * --json; a note on the items, then the next page, if any, are said on stderr.
 */
export async function pageCommand(client: ApiClient, route: string, query: Record<string, string | undefined>, view: PageView, options: PageOptions, output: Output): Promise<number> {
  // A usage error (exit 2), like a bad --units, not a refusal by the server (exit 1).
  const limit = pageLimitOf(options.limit);
  const page = await getPage(client, route, { ...query, limit, cursor: options.cursor });
  if (options.json) {
    output.out(printableJson(page));
    return 0;
  }
  const rows = view.rows === undefined ? page.items : view.rows(page.items);
  output.out(renderTable(rows, pickColumns(rows, view.columns)));
  const note = view.note?.(page.items);
  if (note !== undefined) output.err(note);
  if (page.nextCursor !== null) output.err(`(more: add --cursor ${printable(String(page.nextCursor))})`);
  return 0;
}

/** One record as `key: value` lines (`shown` leaves out what a person does not read), or the API's answer with --json. */
export async function recordCommand(client: ApiClient, route: string, options: { json?: boolean }, output: Output, shown: (record: Row) => Row = (record) => record): Promise<number> {
  const record = await client.get<unknown>(route);
  if (!isRecord(record)) throw new Failure(`GET ${route} answered with something other than a record; is CHIPLEDGER_URL the chipledger API?`);
  output.out(options.json ? printableJson(record) : renderRecord(shown(record)));
  return 0;
}
