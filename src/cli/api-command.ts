/**
 * `chipledger api METHOD PATH`: any route of the API from the command line, for what has no
 * command of its own (products, organisations, tokens, a shipment's serial list). It goes
 * where every client command goes (CHIPLEDGER_URL, CHIPLEDGER_TOKEN) and
 * sends as they do: a POST with one Idempotency-Key, sent again with it while the outcome is
 * unknown, and the command that reruns it printed when the CLI gives up. Everything it can
 * check (the method, the path, the key, the body) is checked before anything is sent.
 */
import { limits } from '../core/limits.ts';
import { UnexpectedAnswerError, unknownOutcomeOf, type ApiClient, type GetAnswer } from './http.ts';
import { checkedKey, commandLine, nextCursorOnce, type ChangeOptions, type StdinInput } from './client-commands.ts';
import { readBody } from './json-body.ts';
import { Failure, printable, printableJson, type Output } from './output.ts';

/**
 * Items `--all` gathers before it stops with the cursor: as many as its pages hold at the
 * API's largest page size. The byte bound (limits.apiAllPagesBytesMax) does not bound them:
 * 256 MiB of `{},` are 89 million objects, gigabytes once parsed. No honest walk reaches this
 * before limits.reportPagesMax does.
 */
export const allPagesItemsMax = limits.reportPagesMax * limits.pageSizeMax;

export interface ApiCommandOptions extends ChangeOptions {
  /** A file holding the JSON body of a POST, or - for stdin. */
  body?: string;
  /** Print the answer on one line, as a program would read it. */
  json?: boolean;
  /** GET: follow nextCursor, up to limits.reportPagesMax pages. */
  all?: boolean;
}

/** Where `--body -` reads from; tests give a stream of their own. */
export type BodyInput = StdinInput;

/** Where a text answer goes (stdout), and whether it is a terminal; tests give their own. */
export interface TextSink {
  isTerminal: () => boolean;
}

const processStdout: TextSink = { isTerminal: () => process.stdout.isTTY === true };

export async function apiCommand(client: ApiClient, methodText: string, pathText: string, options: ApiCommandOptions, output: Output, stdin: BodyInput = process.stdin, stdout: TextSink = processStdout): Promise<number> {
  const method = checkedMethod(methodText);
  const path = checkedApiPath(pathText);
  if (method === 'GET') {
    if (options.body !== undefined) throw new Failure('--body is for POST: a GET sends no body', 2);
    if (options.idempotencyKey !== undefined) throw new Failure('--idempotency-key is for POST: a GET changes nothing, and is sent again safely without one', 2);
    return options.all ? getAll(client, path, options, output, stdout) : getOne(client, path, options, output, stdout);
  }
  if (options.all) throw new Failure('--all is for GET: it follows the pages of a list', 2);
  const key = checkedKey(options);
  const body = options.body === undefined ? {} : await readBody(options.body, stdin);
  const answer = await post(client, path, body, key, options);
  return printAnswer(answer, options, output);
}

/** How an answer is printed: on one line for a program (--json), indented for a person. */
function layoutOf(options: ApiCommandOptions): 'one line' | 'indented' {
  return options.json ? 'one line' : 'indented';
}

/** Prints an answer as JSON (one too deep or too large to print is said in one line: printableJson). */
function printAnswer(answer: unknown, options: ApiCommandOptions, output: Output): number {
  output.out(printableJson(answer, layoutOf(options)));
  return 0;
}

function checkedMethod(text: string): 'GET' | 'POST' {
  const method = text.toUpperCase();
  if (method === 'GET' || method === 'POST') return method;
  throw new Failure(`METHOD must be GET or POST (the API's routes take no other); got ${printableJson(text, 'one line')}`, 2);
}

/**
 * A route of the API as typed: under /v1/, relative to CHIPLEDGER_URL (no scheme or host, so
 * the token goes nowhere else), with nothing a URL would resolve to another route: "." and
 * ".." segments (also spelt %2e), and backslashes, which URLs read as slashes.
 */
export function checkedApiPath(path: string): string {
  const shown = printableJson(path, 'one line');
  if (!path.startsWith('/v1/')) {
    throw new Failure(`PATH must start with /v1/, such as /v1/licences or /v1/sites/SITE-4 (the request goes to CHIPLEDGER_URL, with CHIPLEDGER_TOKEN); got ${shown}`, 2);
  }
  if (!/^[\x21-\x7E]+$/.test(path) || path.includes('\\') || path.includes('#')) {
    throw new Failure(`PATH must be visible ASCII characters without spaces, backslashes or '#'; percent-encode the rest of a query value (a space as %20); got ${shown}`, 2);
  }
  const route = path.split('?', 1)[0]!;
  if (route.split('/').some((segment) => /^(\.|%2e){1,2}$/i.test(segment))) {
    throw new Failure(`PATH must not hold a "." or ".." segment: the URL would resolve it to another route than the one typed; got ${shown}`, 2);
  }
  return path;
}

/**
 * A text/plain answer of the API (the log's verifier key, an event's serial list) as it came:
 * the serial list is the exact bytes its event's serialsSha256 is taken over, so nothing is
 * escaped or changed (`api GET /v1/events/42/serials | sha256sum`). Such text holding a
 * character a terminal acts on (a control or bidi character) is refused on a terminal, where
 * it would reach it raw, and printed into a file or a pipe.
 */
function printText(bytes: Buffer, path: string, output: Output, stdout: TextSink): number {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new Failure(`${path} answered text that is not UTF-8; no answer of the chipledger API is: is CHIPLEDGER_URL the chipledger API?`);
  }
  if (stdout.isTerminal() && text.split('\n').some((line) => printable(line) !== line)) {
    throw new Failure(`${path} answered text holding characters a terminal would act on (control or bidi characters); it is printed only into a file or a pipe: add > FILE`);
  }
  if (text === '') return 0;
  // Every text of the API ends with a newline, which output.out writes back.
  if (text.endsWith('\n')) output.out(text.slice(0, -1));
  else {
    output.out(text);
    output.err('(the answer did not end with a newline; one was added)');
  }
  return 0;
}

/** One answer, printed whole; a page's further pages are said on stderr. */
async function getOne(client: ApiClient, path: string, options: ApiCommandOptions, output: Output, stdout: TextSink): Promise<number> {
  const answered = await get(client, path, {});
  if (answered.kind === 'text') return printText(answered.text, path, output, stdout);
  const { answer } = answered;
  printAnswer(answer, options, output);
  const next = pageOf(answer)?.nextCursor;
  if (!options.json && typeof next === 'string') output.err(`(more: add --all, or cursor=${printable(next)} to the query)`);
  return 0;
}

/**
 * Every page of a list, as one page: its items, and a nextCursor that is null unless the
 * pages ran out at limits.reportPagesMax, or their bytes passed limits.apiAllPagesBytesMax (then it
 * is where to go on from). The first request is the path as typed, as without --all: a route
 * that is not a list (the log's key, an event's serial list, one licence) refuses a limit it
 * does not take (400), and its answer is printed as it came. A page the user asked for by its
 * limit keeps it; otherwise each page after the first is the API's largest, and a page of those
 * that passes the most the CLI reads (apiResponseBytesMax: a licence's versions, each with all
 * its terms; events with long texts) is asked for again at the API's default size.
 */
async function getAll(client: ApiClient, path: string, options: ApiCommandOptions, output: Output, stdout: TextSink): Promise<number> {
  const chosen = limitIn(path) === undefined;
  const items: unknown[] = [];
  let cursor: string | undefined;
  const followed = new Set<string>();
  let bytes = 0;
  for (let pages = 0; pages < limits.reportPagesMax; pages += 1) {
    const counted = chosen && pages > 0 ? await getLargestThatFits(client, path, cursor) : await get(client, path, { cursor });
    if (counted.kind === 'text') {
      if (pages > 0) throw new Failure(`${path} answered page ${pages + 1} with text, not a page (items and nextCursor); is CHIPLEDGER_URL the chipledger API?`);
      return printText(counted.text, path, output, stdout);
    }
    const page = pageOf(counted.answer);
    if (page === undefined) {
      if (pages > 0) throw new Failure(`${path} answered page ${pages + 1} with something other than a page (items and nextCursor); is CHIPLEDGER_URL the chipledger API?`);
      // Not a list: there is nothing to follow, and the answer is printed as it came.
      return printAnswer(counted.answer, options, output);
    }
    // One at a time: a spread passes every item as an argument, and a page of millions of
    // small items reaches the end of the stack.
    for (const item of page.items) items.push(item);
    bytes += counted.bytes;
    if (page.nextCursor === null) return printAll(items, null, options, output);
    cursor = nextCursorOnce(followed, page.nextCursor, path, pages + 1);
    const past = bytes > limits.apiAllPagesBytesMax ? `${bytes.toLocaleString('en-US')} bytes, past the ${limits.apiAllPagesBytesMax.toLocaleString('en-US')}`
      : items.length > allPagesItemsMax ? `${items.length.toLocaleString('en-US')} items, past the ${allPagesItemsMax.toLocaleString('en-US')}` : undefined;
    if (past !== undefined) return printIncomplete(items, cursor, `${pages + 1} page(s), ${past} that --all gathers`, options, output);
  }
  return printIncomplete(items, cursor!, `${limits.reportPagesMax} pages`, options, output);
}

/**
 * The pages gathered before a bound stopped the walk, with the cursor to go on from: printed,
 * and exit 1, since the list goes on and a script that saves the answer (`> list.json`) must
 * not take it for the whole list.
 */
function printIncomplete(items: unknown[], cursor: string, stoppedAt: string, options: ApiCommandOptions, output: Output): number {
  printAll(items, cursor, options, output);
  output.err(`chipledger: stopped after ${stoppedAt}, before the end of the list, so the answer is incomplete (exit 1); go on with --all and cursor=${printable(cursor)} in the query`);
  return 1;
}

/** A page at the API's largest size, or, when that passes the most the CLI reads, at its default. */
async function getLargestThatFits(client: ApiClient, path: string, cursor: string | undefined): Promise<GetAnswer> {
  try {
    return await client.getAnswer(path, { limit: limits.pageSizeMax, cursor });
  } catch (error) {
    if (!(error instanceof UnexpectedAnswerError && error.failure === 'too-large')) throw error;
    return get(client, path, { limit: limits.pageSizeDefault, cursor });
  }
}

function printAll(items: unknown[], nextCursor: string | null, options: ApiCommandOptions, output: Output): number {
  return printAnswer({ items, nextCursor }, options, output);
}

/** The limit= the path gives, if it gives one. */
function limitIn(path: string): string | undefined {
  return new URLSearchParams(path.includes('?') ? path.slice(path.indexOf('?') + 1) : '').get('limit') ?? undefined;
}

/**
 * The answer to a GET. One past the most the CLI reads is, from the API, a page of long rows
 * asked for at too large a size: the error says to ask for smaller pages, with the limit the
 * page was asked for (the path's, or the API's default, pageSizeDefault, which getAll falls back to).
 */
async function get(client: ApiClient, path: string, query: { limit?: number; cursor?: string }): Promise<GetAnswer> {
  try {
    return await client.getAnswer(path, query);
  } catch (error) {
    if (!(error instanceof UnexpectedAnswerError && error.failure === 'too-large')) throw error;
    const asked = Number(query.limit ?? limitIn(path) ?? limits.pageSizeDefault);
    const smaller = Number.isSafeInteger(asked) && asked > 1 ? `, such as limit=${Math.ceil(asked / 5)} (this page was asked for with limit=${asked})` : '';
    throw new UnexpectedAnswerError(`${error.message}; if ${printable(path.split('?', 1)[0]!)} is a list, ask for smaller pages: give the path a smaller limit=${smaller}`, 'too-large');
  }
}

/** The answer as a page of a list, if it is one. */
function pageOf(answer: Record<string, unknown>): { items: unknown[]; nextCursor: string | null } | undefined {
  const { items, nextCursor } = answer;
  if (!Array.isArray(items) || !(nextCursor === null || typeof nextCursor === 'string')) return undefined;
  return { items, nextCursor };
}

/**
 * Sends the change; when its outcome is unknown, the error carries the command that sends the
 * same body under the same key, with --json when this run had it, so that a script that reads
 * the answer gets it on one line from the rerun too. A body from stdin is not there to send
 * again: the line says so after a '#', so that it can still be pasted as it is.
 */
async function post(client: ApiClient, path: string, body: unknown, key: ChangeOptions, options: ApiCommandOptions): Promise<unknown> {
  const bodyFile = options.body;
  try {
    return await client.post<unknown>(path, body, key);
  } catch (error) {
    const outcome = unknownOutcomeOf(error);
    if (outcome !== undefined) {
      const words = ['chipledger', 'api', 'POST', path, ...(bodyFile === undefined ? [] : ['--body', bodyFile]), ...(options.json ? ['--json'] : []), '--idempotency-key', outcome.idempotencyKey];
      outcome.rerun = `${commandLine(words)}${bodyFile === '-' ? '  # with the same body on stdin' : ''}`;
    }
    throw error;
  }
}
