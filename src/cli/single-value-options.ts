/**
 * An option that takes one value is given once: a second on the command line
 * (`licences create --units 5 … --units 500000`) is a usage error (exit 2) said before any
 * command runs, so nothing is sent, written or started. Commander keeps the last value without
 * a word, and a line edited in a hurry, or pasted over, would then draft a licence for 500,000
 * units, or resize an allocation to 0 (every unit handed back), with exit 0. Which value was
 * meant is not ours to guess, as with a field given both by an option and by --body
 * (client-values.ts, withFields). The same value twice is refused too: the rule is "once",
 * simple to state, and such a line was edited by hand anyway.
 *
 * Left as they are:
 *  - options that collect their values (the `repeated` parser, or declared variadic), shown
 *    with … in the README: given more than once is what they are for;
 *  - boolean flags (--json, --demo, --all): given twice they say the same thing twice, and no
 *    value is lost, so refusing `--json --json` would only be in the way.
 *
 * How a repeat is seen: each single-value option gets a parser (wrapping any it had, such as
 * the check of .choices()) that refuses a value when the option already has one from the
 * command line. Commander calls it for every form the option is given in (`--units 5`,
 * `--units=5`, a short flag), with the value so far as `previous`; a default (shipments book's
 * --deadline 30d) is a value so far too, so it is the value's source, 'cli' or 'default', that
 * tells a repeat from a first use.
 */
import type { Command, Option } from 'commander';
import { repeated } from './client-values.ts';
import { Failure, printableJson } from './output.ts';
import { tokenSecretPrefix } from '../ledger/schemas.ts';

/** Parsers that gather every value given into a list: options with one of these stay repeatable. */
const collectingParsers: ReadonlySet<unknown> = new Set([repeated]);

/**
 * Makes every single-value option of `command` and of all its subcommands refuse a second
 * value. Call it once, on the whole program, after every command and option is declared.
 */
export function refuseRepeatedOptions(command: Command): void {
  for (const option of command.options) {
    // A programmer error: an option whose value may be left out (`--opt [value]`) given bare
    // twice never reaches a parser, so this guard could not see it. None is declared; one
    // added must be given a rule of its own first.
    if (option.optional) throw new Error(`refuseRepeatedOptions: ${command.name()} ${option.flags} takes an optional value, which this guard cannot see repeated`);
    if (option.required && !option.variadic && !collectingParsers.has(option.parseArg)) onceOnly(command, option);
  }
  for (const subcommand of command.commands) refuseRepeatedOptions(subcommand);
}

function onceOnly(command: Command, option: Option): void {
  const attribute = option.attributeName();
  const parse = option.parseArg;
  option.argParser((value: string, previous: unknown) => {
    // 'cli': set by an earlier occurrence in this very command line (not a default, not the environment).
    if (command.getOptionValueSource(attribute) === 'cli') throw givenTwice(option.long ?? option.flags, previous, value);
    return parse === undefined ? value : parse.call(option, value, previous);
  });
}

/** The longest value the refusal shows bare; a longer one is quoted, so where it ends is plain. */
const bareValueCharactersMax = 64;
const bareValue = new RegExp(`^[A-Za-z0-9._:+\\-@/=,]{1,${bareValueCharactersMax}}$`);

/**
 * Options whose values are secrets: a refusal never quotes them (a wrapper that adds --token
 * beside the user's would put both secrets in a CI log).
 */
const secretOptions = new Set(['--token']);

/**
 * A value as the refusal shows it: bare if it is a plain word such as 500000, ORG-9 or
 * -41.0347, else as JSON (quotes, escapes); a token's secret, wherever it was given, never.
 */
function shown(value: unknown): string {
  if (typeof value === 'string' && value.startsWith(tokenSecretPrefix)) return "(a token's secret, not shown)";
  return typeof value === 'string' && bareValue.test(value) ? value : printableJson(value, 'one line');
}

function givenTwice(name: string, first: unknown, second: string): Failure {
  if (secretOptions.has(name)) return new Failure(`${name} is given twice; give it once; nothing was done`, 2);
  return new Failure(`${name} is given twice (${shown(first)} and ${shown(second)}); give it once; nothing was done`, 2);
}
