/**
 * `chipledger report utilisation` stopped at its page bound (limits.reportPagesMax) with licences
 * left: what it gathered is printed, and it exits 1, so that `report utilisation --json >
 * report.json` in a script is not taken for every licence.
 */
import { describe, expect, it } from 'vitest';
import { limits } from '../core/limits.ts';
import { utilisationCommand } from './client-commands.ts';
import { ApiClient } from './http.ts';
import { recordingOutput } from '../../test/support/recording-output.ts';

/** A report whose every page says there is another (each with a cursor of its own), and one page of organisations. */
function endlessReport(): ApiClient {
  const fetch = (async (input: URL | string) => {
    const url = new URL(String(input));
    const page = Number(url.searchParams.get('cursor') ?? '0');
    const answer = url.pathname === '/v1/reports/utilisation'
      ? { items: [{ licenceId: `L-${page + 1}`, direction: 'export', reference: `BIS-${page + 1}`, status: 'issued', units: 10, allocations: [] }], nextCursor: String(page + 1) }
      : { items: [], nextCursor: null };
    return Response.json(answer);
  }) as typeof globalThis.fetch;
  return new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_test', fetch });
}

describe('report utilisation at its page bound', () => {
  it(`prints the ${limits.reportPagesMax} pages it read, says the report is incomplete, and exits 1, as a table or as JSON`, async () => {
    for (const json of [false, true]) {
      const { output, out, err } = recordingOutput();
      expect(await utilisationCommand(endlessReport(), { json }, output), json ? '--json' : 'table').toBe(1);
      expect(err).toEqual([`chipledger: stopped after ${limits.reportPagesMax} pages, before the end of the report, so it is incomplete (exit 1); use the API for the rest`]);
      expect(out.join('\n')).toContain(`L-${limits.reportPagesMax}`);
      expect(out.join('\n')).not.toContain(`L-${limits.reportPagesMax + 1}`);
    }
  });
});
