/**
 * A unit's serial number: its rules, and why a serial breaks them, in the words both the API's
 * schemas (ledger/schemas.ts) and the CLI's CSV check (cli/serials-csv.ts) give, so a file
 * checked before it is sent is refused for what the server would refuse it for, said alike.
 *
 * New serials are written in capitals. A serial is compared exactly, byte for byte (the units'
 * key, which holds invariant 4), and recorded in the log as sent (its list's
 * digest is the exporter's own); ABC1654X01 and abc1654x01 were two units, live in two
 * shipments at once. Rather than fold case in every comparison (an index on upper(serial) on
 * units and, before migration 075, manifest lines: 100–200 ms more a 100,000-serial manifest),
 * a serial that makes a unit (a manifest's entries) is refused with a lower-case letter, naming the
 * spelling to send, and nothing is ever rewritten. The database refuses one too, on rows
 * inserted only (migration 049 says why).
 *
 * A serial that names a unit already made (deploy, decommission, report lost, return, one unit
 * by its serial) is taken in either case: releases before capitals were required made units
 * in lower case, which must still be deployed, ended and looked up. Where no unit has such a
 * serial, the refusal names the capitals it may have meant (unitNotFoundMessage).
 */
import { limits } from './limits.ts';

export const serialLengthMax = limits.serialLengthMax;
/** A new serial (a manifest's entry): capital ASCII letters, digits and . _ : / -, starting with a letter or digit. */
export const newSerialPattern = /^[A-Z0-9][A-Z0-9._:/-]*$/;
/** A serial that names a unit: the same in either case, as releases before capitals were required took it. */
export const serialPattern = /^[A-Za-z0-9][A-Za-z0-9._:/-]*$/;
/** What a serial may hold in either case: the first character that is not one is named. */
const serialCharacterInAnyCase = /[A-Za-z0-9._:/-]/;
/** Characters of an over-long serial quoted in its refusal. */
const longSerialQuotedMax = 20;

/**
 * Why a serial that makes a unit or a manifest line is not acceptable, or undefined: the
 * first problem, with the offending character or the spelling to send.
 */
export function problemOfNewSerial(serial: string): string | undefined {
  if (serial.length <= serialLengthMax && newSerialPattern.test(serial)) return undefined;
  // Only ASCII is left past the form, so the capitals are as long as the serial and pass the pattern.
  return problemOfForm(serial, 'capital ASCII letters')
    ?? `serial ${quotedSerial(serial)} has lower-case letters; serials are written in capitals: write it as ${serial.toUpperCase()}`;
}

/** Why a serial that names a unit is not acceptable, in either case, or undefined: problemOfNewSerial's rules but the capitals. */
export function problemOfSerial(serial: string): string | undefined {
  if (serial.length <= serialLengthMax && serialPattern.test(serial)) return undefined;
  return problemOfForm(serial, 'ASCII letters');
}

/**
 * The length, the characters and the first one, said for serials whose letters are `letters`;
 * undefined where the serial has none of these problems (a new serial's lower case is left).
 */
function problemOfForm(serial: string, letters: string): string | undefined {
  if (serial === '') return 'the serial is empty';
  if (serial.length > serialLengthMax) {
    return `serial ${quotedSerial(serial.slice(0, longSerialQuotedMax))}… is ${serial.length} characters long; at most ${serialLengthMax} (serialLengthMax)`;
  }
  const bad = [...serial].find((character) => !serialCharacterInAnyCase.test(character));
  if (bad !== undefined) return `serial ${quotedSerial(serial)} has the character ${describeCharacter(bad)}; only ${letters}, digits and . _ : / - are allowed`;
  if (!/^[A-Za-z0-9]/.test(serial)) return `serial ${quotedSerial(serial)} must start with a letter or digit`;
  return undefined;
}

/**
 * The refusal of a serial no unit has (that the caller may act on): with a lower-case letter,
 * it names the capitals the caller may have meant, since new serials are written in capitals.
 * Said alike whether no unit has it or another organisation's unit does, so it tells nothing
 * of other tenants' units. `serial` has passed problemOfSerial (ASCII only).
 */
export function unitNotFoundMessage(serial: string): string {
  const found = `unit ${serial} was not found`;
  return /[a-z]/.test(serial) ? `${found}; serials are written in capitals: did you mean ${serial.toUpperCase()}?` : found;
}

/**
 * A serial in double quotes, as JSON, with every character that shows nothing or moves
 * what follows escaped too (controls, C1, format characters such as U+200B and the bidi
 * controls, spaces other than U+0020): the refusal of a serial with an invisible character
 * shows where it is, and reorders nothing on the terminal or page that prints it. Letters of
 * other scripts stay as they are, so a Cyrillic Ѕ is shown as one.
 */
export function quotedSerial(text: string): string {
  return JSON.stringify(text).replace(/[^\p{L}\p{M}\p{N}\p{P}\p{S} ]/gu, (character) =>
    // Each UTF-16 unit escaped: a character past U+FFFF is a pair of escapes, as JSON writes one.
    character.split('').map((unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''));
}

function describeCharacter(character: string): string {
  const code = `U+${(character.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
  return /^[\p{L}\p{N}\p{P}\p{S}]$/u.test(character) ? `${JSON.stringify(character)} (${code})` : code;
}
