/**
 * A unit's serial number: its rule, and why a serial breaks it, in the words both the API's
 * schema (ledger/schemas.ts) and the CLI's CSV check (cli/serials-csv.ts) give, so a file
 * checked before it is sent is refused for what the server would refuse it for, said alike.
 * The database holds the capitals, not the rest of the form (migration 049,
 * units_serial_capitals and shipment_serials_serial_capitals, says why).
 *
 * Serials are written in capitals. A serial is compared exactly, byte for byte (the units'
 * key, invariant 4's index of live manifest rows), and recorded in the log as sent (its list's
 * digest is the exporter's own); ABC1654X01 and abc1654x01 were two units, live in two
 * shipments at once. Rather than fold case in every comparison (an index on upper(serial) on
 * two tables: 100–200 ms more a 100,000-serial manifest), a lower-case letter is refused,
 * naming the spelling to send, and nothing is ever rewritten.
 */
import { limits } from './limits.ts';

export const serialLengthMax = limits.serialLengthMax;
/** Capital ASCII letters, digits and . _ : / -, starting with a letter or digit. */
export const serialPattern = /^[A-Z0-9][A-Z0-9._:/-]*$/;
/** What a serial may hold in either case: the first character that is not one is named. */
const serialCharacterInAnyCase = /[A-Za-z0-9._:/-]/;
/** Characters of an over-long serial quoted in its refusal. */
const longSerialQuotedMax = 20;

/** Why a serial is not acceptable, or undefined: the first problem, with the offending character or the spelling to send. */
export function problemOfSerial(serial: string): string | undefined {
  if (serial === '') return 'the serial is empty';
  if (serial.length > serialLengthMax) {
    return `serial ${quotedSerial(serial.slice(0, longSerialQuotedMax))}… is ${serial.length} characters long; at most ${serialLengthMax} (serialLengthMax)`;
  }
  if (serialPattern.test(serial)) return undefined;
  const bad = [...serial].find((character) => !serialCharacterInAnyCase.test(character));
  if (bad !== undefined) return `serial ${quotedSerial(serial)} has the character ${describeCharacter(bad)}; only capital ASCII letters, digits and . _ : / - are allowed`;
  if (!/^[A-Za-z0-9]/.test(serial)) return `serial ${quotedSerial(serial)} must start with a letter or digit`;
  // Only ASCII is left, so the capitals are as long as the serial and pass the pattern.
  return `serial ${quotedSerial(serial)} has lower-case letters; serials are written in capitals: write it as ${serial.toUpperCase()}`;
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
