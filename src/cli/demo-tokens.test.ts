/**
 * What a start on a database that holds the demo prints for its tokens: after a whole load, the
 * ways to make new ones (`chipledger demo`, or one at a time); after an interrupted one, no
 * `chipledger demo` (it refuses such a database) and what to do for a full demo (the s25 crash
 * review: the start said the tokens "were shown then", and pointed to a command that refused).
 */
import { describe, expect, it } from 'vitest';
import type { DemoParty } from '../demo/parties.ts';
import { recordingOutput } from '../../test/support/recording-output.ts';
import { printTokenCommands } from './demo-tokens.ts';

const parties: DemoParty[] = [
  { key: 'exporter', organisationId: 'ORG-3', organisation: 'Example Accelerators Inc.', part: 'the exporter', role: 'exporter' },
];

describe('printTokenCommands', () => {
  it('after a whole load: chipledger demo, or a token at a time', () => {
    const { output, out } = recordingOutput();
    printTokenCommands(parties, output);
    expect(out[0]).toBe('The demo was loaded at an earlier start, and its other tokens were shown then (a secret is shown once).');
    expect(out.some((line) => / demo {3}\(a new token for every demo organisation\)$/.test(line))).toBe(true);
    expect(out.at(-1)).toMatch(/token create --org ORG-3 --role exporter --label "demo exporter" +# the exporter: Example Accelerators Inc\.$/);
  });

  it('after an interrupted load: the token commands alone, and how to get a full demo', () => {
    const { output, out } = recordingOutput();
    printTokenCommands(parties, output, true);
    expect(out[0]).toBe('The demo load here was interrupted, so its tokens were not shown; for a full demo, start again with an empty CHIPLEDGER_DATA_DIR (or DATABASE_URL naming an empty database).');
    expect(out.some((line) => /shown then|a new token for every demo organisation/.test(line))).toBe(false);
    expect(out.at(-1)).toMatch(/token create --org ORG-3 --role exporter --label "demo exporter" +# the exporter: Example Accelerators Inc\.$/);
  });
});
