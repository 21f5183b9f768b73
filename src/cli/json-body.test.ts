/**
 * `--body FILE` refuses, before anything is sent, a number that JSON.parse would round to a
 * whole one (core/json-numbers.ts), by line and column, as the server would refuse it; the
 * numbers an honest serialiser writes go through.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStandInApi, type StandInApi } from '../../test/support/stand-in-api.ts';
import { recordingOutput } from '../../test/support/recording-output.ts';
import { jsonProblem } from './json-body.ts';
import { main } from './program.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-json-body-'));
/** Stands in for the API: any request reaching it is one that should not have been sent. */
let api: StandInApi;
let url: string;
const requests: string[] = [];

beforeAll(async () => {
  api = await startStandInApi((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    response.writeHead(500).end();
  });
  url = api.url;
});
afterAll(async () => {
  await api?.close();
  rmSync(folder, { recursive: true, force: true });
});

describe('jsonProblem on numbers', () => {
  it.each([
    ['{"units": 1e-400}', 1, 11, '1e-400', '0'],
    ['{\n  "allocationId": "A-1",\n  "units": -1e-400\n}', 3, 12, '-1e-400', '0'],
    ['[4.9999999999999999]', 1, 2, '4.9999999999999999', '5'],
    ['{"valueMinor": 9007199254740991.4}', 1, 16, '9007199254740991.4', '9007199254740991'],
    ['{"parameters": {"denseTops": 199.999999999999999}}', 1, 30, '199.999999999999999', '200'],
    ['{"units": 1000000000.00000001}', 1, 11, '1000000000.00000001', '1000000000'],
  ])('refuses %j at its line and column, saying what JSON would read', (text, line, column, number, readAs) => {
    const problem = jsonProblem(text);
    expect(problem).toEqual({ offset: expect.any(Number), reason: `the number ${number} is not a whole number, but JSON reads it as ${readAs}; the server refuses it rather than round it` });
    const before = text.slice(0, problem!.offset).split('\n');
    expect([before.length, before.at(-1)!.length + 1]).toEqual([line, column]);
  });

  it('lets through whole numbers as written and fractions JSON keeps as fractions', () => {
    expect(jsonProblem('[5, 5.0, 5.000, 1e3, 1.5e1, -0, 0.0, 30.3, 0.1, 1e-7, 0.10000000000000001, "1e-400"]')).toBeUndefined();
  });

  it('still says a number too large for a double is too large, cut to a bound', () => {
    expect(jsonProblem(`[${'9'.repeat(400)}]`)?.reason).toBe(`the number ${'9'.repeat(40)}… is too large to send`);
  });
});

describe('chipledger api --body', () => {
  it('refuses a body holding a rounded number with exit 2, by file, line and column, and sends nothing', async () => {
    const path = join(folder, 'resize.json');
    writeFileSync(path, '{\n  "units": 4.9999999999999999\n}\n');
    const { output, err } = recordingOutput();
    const code = await main(['api', 'POST', '/v1/allocations/A-1/resize', '--body', path], { CHIPLEDGER_DATA_DIR: join(folder, 'data'), CHIPLEDGER_URL: url, CHIPLEDGER_TOKEN: 'clt_TOK-1_x' }, output);
    expect(code).toBe(2);
    expect(err.join('\n')).toContain(`chipledger: ${path}:2:12: the number 4.9999999999999999 is not a whole number, but JSON reads it as 5; the server refuses it rather than round it; nothing was sent`);
    expect(requests).toEqual([]);
  });
});
