/**
 * Turning what went wrong into the refusal a caller can act on: schema problems (with
 * every field), limits hit (413, the database's own size limits too), and database
 * refusals. Anything else is a bug and is rethrown.
 */
import pg from 'pg';
import { DomainError, isDomainError } from '../core/errors.ts';
import { cut, quotedFieldPath } from '../core/text.ts';
import { clockAheadOfDatabaseCode, headMovedCode } from '../store/head-lock.ts';
import { networkErrorCodes } from '../store/database-unavailable.ts';
import { isTransientDatabaseError } from '../store/sqlstate.ts';

/**
 * Defined with the SQLSTATE table they read; the sequencer, the checkpointer, the API and the
 * CLI ask them here, beside the refusals. isLockTimeout: a batch sent ahead waits only briefly
 * for the head lock (limits.aheadLockWaitMsMax), then runs the classic way with the full
 * wait; the sequencer asks this apart from isWorthRunningAgain.
 */
export { isLockTimeout, isTransientDatabaseError } from '../store/sqlstate.ts';

/** A schema problem as zod reports it; `keys`: the keys an unrecognized_keys issue names. */
type SchemaIssue = { path: PropertyKey[]; message: string; code?: string; origin?: string; keys?: readonly string[]; maximum?: number | bigint };

/** The rule of a request its command's schema refused (a field missing, of the wrong form, out of range). */
export const schemaRule = 'schema';
/** The rule of a list over its named bound (shipmentSerialsMax, listItemsMax, …): a 413. */
export const listLengthMaxRule = 'list-length-max';

/**
 * Characters of a field's path and of its message that a refusal quotes. Both may carry what
 * the client sent (an unknown key of 11 MB is quoted in the message, a record's key in the
 * path), and a refusal is sent, logged and stored under its Idempotency-Key: it must not grow
 * with the body. Cut by code point, marked with "…".
 */
export const quotedFieldLengthMax = 200;
/** Unknown keys a refusal names (then how many more), and the characters of each it quotes. */
export const quotedKeysMax = 3;
export const quotedKeyLengthMax = 40;
/** Fields a refusal lists; the first is also in its detail, which is therefore bounded too. */
const listedFieldsMax = 20;

/**
 * `input`: the request as sent, when the caller has it, from which a list over its bound is
 * counted (zod's issue keeps the bound, not what was given; the schema's words say both).
 */
export function invalidInput(kind: string, issues: ReadonlyArray<SchemaIssue>, input?: unknown): DomainError {
  const fields = issues.slice(0, listedFieldsMax).map(fieldOf);
  const first = fields[0];
  // A list over its named bound (a manifest over shipmentSerialsMax) is a limit hit: 413.
  const overList = issues.find((issue) => issue.code === 'too_big' && issue.origin === 'array');
  if (overList) {
    const { path, message } = fieldOf(overList);
    const given = lengthAt(input, overList.path);
    const numbers = { ...(overList.maximum === undefined ? {} : { itemsMax: Number(overList.maximum) }), ...(given === undefined ? {} : { given }) };
    return new DomainError('payload_too_large', `couldn't take the ${kind} request: ${path}: ${message}`, { rule: listLengthMaxRule, details: { fields, ...numbers } });
  }
  return new DomainError('invalid_input', `couldn't read the ${kind} request: ${first ? `${first.path}: ${first.message}` : 'invalid'}${issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''}`, { rule: schemaRule, details: { fields } });
}

/** The length of the list at `path` in the input, if there is one there. */
function lengthAt(input: unknown, path: readonly PropertyKey[]): number | undefined {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return Array.isArray(value) ? value.length : undefined;
}

/** A field as a refusal lists it: its path ("(body)" for the body itself) and what is wrong, each cut to quotedFieldLengthMax. */
function fieldOf(issue: SchemaIssue): { path: string; message: string } {
  const message = issue.code === 'unrecognized_keys' && issue.keys !== undefined ? unrecognizedKeysMessage(issue.keys) : issue.message;
  return { path: quotedFieldPath(issue.path.map(String), quotedFieldLengthMax), message: cut(message, quotedFieldLengthMax) };
}

/** zod's words for unknown keys, naming the first few, each cut: zod's own message names them all, whole. */
function unrecognizedKeysMessage(keys: readonly string[]): string {
  const named = keys.slice(0, quotedKeysMax).map((key) => JSON.stringify(cut(key, quotedKeyLengthMax))).join(', ');
  return `Unrecognized key${keys.length === 1 ? '' : 's'}: ${named}${keys.length > quotedKeysMax ? ` and ${keys.length - quotedKeysMax} more` : ''}`;
}

/** SQLSTATE 54000, program_limit_exceeded: a value over one of the database's own size limits. */
const valueTooLargeCode = '54000';

/**
 * The database refused what a command wrote: a constraint (class 23), a value it cannot
 * hold (class 22: a date out of its range, text it cannot store), or a value too large for
 * it (54000 program_limit_exceeded: a text over a btree index's row limit of 2,704 bytes,
 * which 2,000 characters of Chinese reach) that our checks let through. Each is the
 * command's fault, not the batch's: the sequencer runs the batch again in halves, so only
 * the command that wrote it is refused.
 */
export function isRefusedWrite(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('23') || code.startsWith('22') || code === valueTooLargeCode);
}

/**
 * Tables and constraints of the log and of the write path's own bookkeeping: a refusal there
 * (a tile that would change, a seq already taken, a key already stored) is no fault of the
 * command's, and must not be remembered as its answer.
 */
const bookkeeping = /^(tlog_|log_head|events|event_serials|event_subjects|event_reader_sets|idempotency_keys)/;

/**
 * Whether a refused write is about what the command wrote (its rows), not the write path's
 * bookkeeping. A size limit that names no table (an array or a JSON value too large, say)
 * is not pinned on a row either.
 */
export function isCommandsOwnRefusal(error: unknown): boolean {
  const { code, table, constraint } = error as { code?: unknown; table?: unknown; constraint?: unknown };
  if (code === valueTooLargeCode && typeof table !== 'string') return false;
  return ![table, constraint].some((name) => typeof name === 'string' && bookkeeping.test(name));
}

/**
 * Uniqueness that holds invariant 4: one unit per serial (units_pkey), and a unit live in one
 * shipment at most (migration 075: units_keep_identity refuses to move a unit out of a shipment
 * under way, as the unique violation units_live_in_one_shipment). Our checks refuse a second
 * listing first; the database refuses one they could not see (two processes listing the same
 * serial at once), and the caller hears the same rule.
 */
const invariant4Indexes = new Set(['units_live_in_one_shipment', 'units_pkey']);

/**
 * Characters of the database's detail (the key it refused, which may be a 2,000-character
 * text) that a refusal quotes; cut by code point, so no half of a surrogate pair is left
 * to be refused when the answer is stored as JSON.
 */
const quotedDetailLengthMax = 200;

/**
 * One unit per GPU UUID (migrations 008, 027: the index on its canonical spelling). A new
 * serial whose GPU UUID another unit already has is no second listing: it is refused with a
 * rule of its own, naming the UUID, not the index's SQL or whose unit holds it (that may be
 * another tenant's, so the words are the same whoever's it is).
 */
const gpuUuidIndex = 'units_gpu_uuid_key';

/** The value in PostgreSQL's detail of a duplicate key: "Key (<expression>)=(<value>) already exists." */
function duplicateKeyValue(detail: string | undefined): string | undefined {
  return detail === undefined ? undefined : /\)=\((.*)\) already exists\.?$/su.exec(detail)?.[1];
}

function gpuUuidRefusal(detail: string | undefined): DomainError {
  return gpuUuidRecordedRefusal(duplicateKeyValue(detail));
}

/** A GPU UUID another unit holds (units_gpu_uuid_key), as the ledger's check and the index's refusal both answer it. */
export function gpuUuidRecordedRefusal(gpuUuid: string | undefined): DomainError {
  // A GPU UUID is at most a short line (schemas.ts); cut all the same, by code point, like any quoted key.
  const quoted = gpuUuid === undefined ? undefined : Array.from(gpuUuid).slice(0, quotedDetailLengthMax).join('');
  const message = quoted === undefined ? 'a GPU UUID given is already recorded for another unit' : `GPU UUID ${quoted} is already recorded for another unit`;
  return new DomainError('conflict', `${message}; a GPU is one unit (invariant 4), so the serial cannot be listed with it`, { rule: 'unit-gpu-uuid', ...(quoted === undefined ? {} : { details: { gpuUuid: quoted } }) });
}

function duplicateRefusal(pgError: { constraint?: string; message?: string; detail?: string }): DomainError {
  const index = pgError.constraint ?? 'unique index';
  if (index === gpuUuidIndex) return gpuUuidRefusal(pgError.detail);
  const detailCharacters = Array.from(pgError.detail ?? '');
  const detail = detailCharacters.length === 0 ? '' : ` (${detailCharacters.slice(0, quotedDetailLengthMax).join('')}${detailCharacters.length > quotedDetailLengthMax ? '…' : ''})`;
  const said = `${pgError.message ?? ''}${detail}`;
  if (invariant4Indexes.has(index)) {
    return new DomainError('conflict', `invariant 4 (a serial is one unit, with one GPU UUID, live in one shipment at most): the database refused a second listing (${index}): ${said}`, { rule: 'invariant-4' });
  }
  return new DomainError('conflict', `the database refused a duplicate (${index}): ${said}`, { rule: 'unique' });
}

/** A value over a size limit of the database's own, naming the index (and table) it did not fit. */
function valueTooLargeRefusal(pgError: { table?: string; constraint?: string; message?: string }): DomainError {
  const where = pgError.constraint === undefined ? '' : ` (index ${pgError.constraint}${pgError.table === undefined ? '' : ` on ${pgError.table}`})`;
  const details = { ...(pgError.table === undefined ? {} : { table: pgError.table }), ...(pgError.constraint === undefined ? {} : { index: pgError.constraint }) };
  return new DomainError('payload_too_large', `a value in the request is too large for the database to store${where}; shorten it: ${pgError.message ?? valueTooLargeCode}`, { rule: 'database-value-size', details });
}

/**
 * CHECK constraints of migration 001 that hold a quantity rule the ledger checks first, named
 * as PostgreSQL named them (a CHECK over two columns is <table>_check), with the rule and code
 * the ledger's own check gives (handlers/allocations.ts, shipment-checks.ts, units.ts). The database
 * refuses what those checks could not see, and the caller hears the same rule, as with
 * invariant4Indexes; the numbers are not the database's to give (its detail quotes the whole row).
 */
const quantityChecks: Record<string, { code: 'insufficient_units'; rule: string; words: string }> = {
  licences_check: { code: 'insufficient_units', rule: 'invariant-1', words: "a licence's allocated units would exceed its authorised units (invariant 1)" },
  allocations_check: { code: 'insufficient_units', rule: 'invariant-2', words: "an allocation's reserved and shipped units would exceed its units (invariant 2)" },
  sites_check: { code: 'insufficient_units', rule: 'site-capacity', words: "a site's deployed units would exceed its capacity" },
};

/**
 * Any other constraint the database holds (class 23): a CHECK, or a trigger's RAISE that names
 * its constraint (migrations 022 onwards). Its rule is the constraint's name, as before; its
 * words are fixed. A trigger's text is written for the operator and may name another tenant's
 * records (037's units_keep_identity names the exporter and the shipment that hold a unit,
 * which manifests.ts's unit-owner refusal keeps from a caller), so it goes in the error's cause,
 * for the log, never to the caller.
 */
function constraintRefusal(error: unknown, pgError: { code?: string; constraint?: string }): DomainError {
  const mapped = pgError.constraint === undefined ? undefined : quantityChecks[pgError.constraint];
  if (mapped !== undefined) {
    return new DomainError(mapped.code, `the database refused the change: ${mapped.words}; nothing was written`, { rule: mapped.rule, details: { constraint: pgError.constraint }, cause: error });
  }
  const named = pgError.constraint === undefined ? `a rule with no name (SQLSTATE ${pgError.code ?? '23000'})` : `the rule ${pgError.constraint}`;
  return new DomainError('conflict', `the database refused the change: it breaks ${named}, which the ledger's checks did not catch first; nothing was written`, {
    rule: pgError.constraint ?? 'database-constraint', ...(pgError.constraint === undefined ? {} : { details: { constraint: pgError.constraint } }), cause: error,
  });
}

/** The rule of a batch the database refused as dated too far ahead of its clock (migration 047). */
export const clockAheadOfDatabaseRule = 'clock-ahead-of-database';

/**
 * A batch dated more than the database's bound ahead of its clock (migration 047, SQLSTATE
 * CLH03): this server's clock runs ahead. Nothing was written, and sending again changes
 * nothing until the clock is put right, so the words say to fix it, with both times (the
 * trigger's DETAIL; its message, should the DETAIL not read as expected).
 */
function clockAheadRefusal(pgError: { message?: string; detail?: string }): DomainError {
  let times: { batchAt?: unknown; databaseAt?: unknown; aheadMsMax?: unknown } = {};
  try {
    times = JSON.parse(pgError.detail ?? '') as typeof times;
  } catch {
    // Said from the message below.
  }
  const { batchAt, databaseAt, aheadMsMax } = times;
  if (typeof batchAt !== 'string' || typeof databaseAt !== 'string' || typeof aheadMsMax !== 'number') {
    return new DomainError('unavailable', `the batch was dated ahead of the database's clock, so nothing was written: ${pgError.message ?? clockAheadOfDatabaseCode}; check this server's clock and the database host's (NTP), then send the request again`, { rule: clockAheadOfDatabaseRule });
  }
  const aheadSeconds = Math.round((Date.parse(batchAt) - Date.parse(databaseAt)) / 1000);
  return new DomainError('unavailable', `the batch was dated ${batchAt} (by this server's clock, or by the ledger's newest event when that is later), ${aheadSeconds} s ahead of the database's clock (${databaseAt}); at most ${aheadMsMax / 1000} s is taken as clock drift, so nothing was written: check this server's clock and the database host's (NTP), then send the request again`, {
    rule: clockAheadOfDatabaseRule, details: { batchAt, databaseAt, aheadMsMax },
  });
}

/**
 * What every command of a batch whose COMMIT went unconfirmed is answered (a lost connection,
 * a bound run out): the change may have been made. A caller without an Idempotency-Key (the
 * admin commands, the demo load) says it in words of its own (cli/admin.ts).
 */
export const unconfirmedChangeMessage = 'the database did not confirm the change; retry with the same Idempotency-Key to learn the outcome';

/** Database failures become refusals the caller can act on; bugs stay errors. */
export function toRefusal(error: unknown): DomainError {
  if (isDomainError(error)) return error;
  const pgError = error as { code?: string; table?: string; constraint?: string; message?: string; detail?: string };
  if (pgError.code === headMovedCode) {
    // A batch sent ahead whose rollback could not be confirmed: nothing of it committed.
    return new DomainError('unavailable', 'another writer moved the ledger while the batch was on its way; retry with the same Idempotency-Key');
  }
  if (pgError.code === clockAheadOfDatabaseCode) return clockAheadRefusal(pgError);
  // 23P01: an exclusion constraint that holds a uniqueness (products_model_key, migration 026).
  if (pgError.code === '23505' || pgError.code === '23P01') return duplicateRefusal(pgError);
  if (pgError.code?.startsWith('23')) return constraintRefusal(error, pgError);
  if (pgError.code?.startsWith('22')) {
    return new DomainError('invalid_input', `the database refused a value in the request: ${pgError.message ?? pgError.code}`, { rule: 'database-value' });
  }
  if (pgError.code === valueTooLargeCode) return valueTooLargeRefusal(pgError);
  if (pgError.code === undefined || isTransientDatabaseError(pgError.code) || networkErrorCodes.has(pgError.code)) {
    if (error instanceof Error && !('code' in error) && !/connect|terminat|timeout|ECONN/i.test(error.message)) throw error;
    return new DomainError('unavailable', unconfirmedChangeMessage);
  }
  throw error;
}

/**
 * Whether a failure of a transaction's text proves that it did not commit: the server
 * reported it, at ERROR level, in a session that lives on. Such an error ends the
 * statement and skips the rest of the text, COMMIT included (an error at COMMIT rolls
 * back), and nothing after a COMMIT that went through can raise one. Anything else leaves
 * the outcome open: the connection lost (FATAL, or a socket error), or the client giving up
 * on a reply the server may still send (node-postgres's query_timeout, a value it cannot
 * parse), after which even a ROLLBACK succeeds, committed or not. `sessionLives`: a ROLLBACK
 * in the same session succeeded, which also covers a server whose messages are translated
 * (pg reports the severity as the server words it).
 */
export function provesNoCommit(error: unknown, sessionLives: boolean): boolean {
  return error instanceof pg.DatabaseError && (error.severity === 'ERROR' || sessionLives);
}

/**
 * Whether a batch sent ahead failed because its guess was wrong or a row was refused (the
 * head moved, a key was stored before, a constraint or value our checks let through):
 * the classic way runs it again from the database's rows and answers each command. Other
 * failures that prove no commit (the database out of connections, say) are answered as they
 * are: running again would only wait for them a second time.
 */
export function isWorthRunningAgain(error: unknown): boolean {
  return (error as { code?: unknown }).code === headMovedCode || isRefusedWrite(error);
}
