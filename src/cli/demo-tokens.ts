/**
 * What `serve --demo` and `chipledger demo` print so that every party of the demo can act: its
 * tokens, or, once their secrets are gone, how to make new ones. Secrets go to stdout only
 * (Output.out), never to stderr or the server's log: they are shown once.
 */
import type { DemoParty, DemoToken } from '../demo/load.ts';
import { chipledgerCommand } from './http.ts';
import { printable, type Output } from './output.ts';
import { renderTable } from './table.ts';

/** One row per token: the organisation (id and name), its part in the demo, the role, the secret. */
export function printDemoTokens(heading: string, tokens: readonly DemoToken[], output: Output): void {
  output.out(heading);
  output.out(renderTable(tokens.map((token) => ({ organisation: `${token.organisationId} ${token.organisation}`, part: token.part, role: token.role, token: token.secret })), ['organisation', 'part', 'role', 'token']));
}

/**
 * The log's verifier key, which an auditor of the demo gives `log verify` and `log prove`
 * (--key); without this line the demo showed no way to get it but curl. Undefined: no server
 * has signed this log yet (serve records its key at its first start).
 */
export function printLogVerifierKey(verifierKey: string | undefined, output: Output): void {
  if (verifierKey === undefined) {
    output.out(`The log's verifier key is made when ${chipledgerCommand()} serve first starts on this database; then: ${chipledgerCommand()} api GET /v1/log/key`);
    return;
  }
  // From the database or the key file: made printable like everything else read back (keygen refuses such names now).
  output.out(`The log's verifier key (for log verify --key and log prove --key): ${printable(verifierKey)}`);
}

/**
 * For a demo loaded earlier: the commands that make tokens for its organisations. They reach the
 * database directly and use a running server's embedded PostgreSQL (database.ts), so they work
 * while `serve` runs, given the same CHIPLEDGER_DATA_DIR or DATABASE_URL. For a load that was
 * interrupted (`partial`), no tokens were shown and `chipledger demo` refuses the database: only
 * the token commands, for the organisations it holds.
 */
export function printTokenCommands(parties: readonly DemoParty[], output: Output, partial = false): void {
  // Said as this process was started, so the lines run as typed (no chipledger on PATH under npm start).
  const chipledger = chipledgerCommand();
  if (partial) {
    output.out('The demo load here was interrupted, so its tokens were not shown; for a full demo, start again with an empty CHIPLEDGER_DATA_DIR (or DATABASE_URL naming an empty database).');
    output.out('Meanwhile, make tokens for the organisations it holds while this server runs, with its CHIPLEDGER_DATA_DIR or DATABASE_URL:');
  } else {
    output.out('The demo was loaded at an earlier start, and its other tokens were shown then (a secret is shown once).');
    output.out('Make new ones while this server runs, with its CHIPLEDGER_DATA_DIR or DATABASE_URL:');
    output.out(`  ${chipledger} demo   (a new token for every demo organisation)`);
    output.out('or one at a time:');
  }
  const commands = parties.map((party) => `${chipledger} token create --org ${party.organisationId} --role ${party.role} --label "demo ${party.role}"`);
  const width = Math.max(0, ...commands.map((command) => command.length));
  parties.forEach((party, index) => output.out(`  ${commands[index]!.padEnd(width)}   # ${party.part}: ${party.organisation}`));
}
