/**
 * An option that takes one value, given twice, is a usage error (exit 2) before any command
 * runs, in every command of the CLI: commander on its own keeps the last value without a word
 * (`licences create --units 5 … --units 500000` drafted 500,000 units, exit 0). First the
 * guard on a small program of its own, every form an option is given in; then the chipledger
 * program itself, through its entry function, against a small HTTP server that records what
 * it is asked, so "nothing was sent" is seen, not assumed.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startStandInApi, type StandInApi } from '../../test/support/stand-in-api.ts';
import { recordingOutput } from '../../test/support/recording-output.ts';
import { repeated } from './client-values.ts';
import { Failure } from './output.ts';
import { main } from './program.ts';
import { refuseRepeatedOptions } from './single-value-options.ts';

/** A program with one option of each kind the guard tells apart, and what its action was given. */
function small(): { program: Command; given: Array<Record<string, unknown>> } {
  const given: Array<Record<string, unknown>> = [];
  const program = new Command('small').exitOverride().configureOutput({ writeErr: () => {} })
    .option('-u, --units <n>', 'one value')
    .option('--deadline <time>', 'one value, with a default', '30d')
    .addOption(new Option('--role <role>', 'one of a few').choices(['exporter', 'auditor']))
    .option('--product <id>', 'repeatable', repeated)
    .option('--serials <serial...>', 'variadic')
    .option('--json', 'a flag')
    .action((options: Record<string, unknown>) => void given.push(options));
  refuseRepeatedOptions(program);
  return { program, given };
}

/** Parses `args` as the small program's command line: its options, or the Failure it threw. */
function parse(args: string[]): Record<string, unknown> | Failure {
  const { program, given } = small();
  try {
    program.parse(args, { from: 'user' });
  } catch (error) {
    if (error instanceof Failure) return error;
    throw error;
  }
  return given[0]!;
}

describe('the guard', () => {
  it('refuses a single-value option given twice, in every form commander reads, as a usage error', () => {
    for (const args of [['--units', '5', '--units', '500000'], ['--units=5', '--units=500000'], ['--units', '5', '--units=500000'], ['-u', '5', '-u500000'], ['--units=5', '-u', '500000']]) {
      const refused = parse(args);
      expect(refused, args.join(' ')).toBeInstanceOf(Failure);
      expect((refused as Failure).exitCode).toBe(2);
      expect((refused as Failure).message).toBe('--units is given twice (5 and 500000); give it once; nothing was done');
    }
    // The same value twice too: the rule is once.
    expect(parse(['--units', '5', '--units', '5'])).toBeInstanceOf(Failure);
    // Not only the second: a third is never reached, the second already stopped the parse.
    expect((parse(['--units', '1', '--units', '2', '--units', '3']) as Failure).message).toBe('--units is given twice (1 and 2); give it once; nothing was done');
  });

  it('takes an option with a default once, in either form, and refuses it twice naming what was typed, not the default', () => {
    expect(parse([])).toMatchObject({ deadline: '30d' });
    expect(parse(['--deadline', '12h'])).toMatchObject({ deadline: '12h' });
    expect(parse(['--deadline=12h'])).toMatchObject({ deadline: '12h' });
    expect((parse(['--deadline=12h', '--deadline', '30d']) as Failure).message).toBe('--deadline is given twice (12h and 30d); give it once; nothing was done');
  });

  it('keeps the check an option had (choices), and quotes a value that is not a plain word', () => {
    expect(parse(['--role', 'auditor'])).toMatchObject({ role: 'auditor' });
    expect(() => parse(['--role', 'admin'])).toThrow(/Allowed choices are exporter, auditor/);
    expect((parse(['--role', 'exporter', '--role', 'auditor']) as Failure).message).toBe('--role is given twice (exporter and auditor); give it once; nothing was done');
    expect((parse(['--units', 'five units', '--units', 'a\u202eb']) as Failure).message).toBe('--units is given twice ("five units" and "a\\u202eb"); give it once; nothing was done');
  });

  it('leaves repeatable options (a collecting parser, variadic) and boolean flags repeatable', () => {
    expect(parse(['--product', 'PRD-1', '--product=PRD-2', '--serials', 'SN1', 'SN2', '--serials', 'SN3', '--json', '--json'])).toEqual({
      deadline: '30d', product: ['PRD-1', 'PRD-2'], serials: ['SN1', 'SN2', 'SN3'], json: true,
    });
  });

  it('refuses to guard an option whose value may be left out, which it could not see repeated (a programmer error)', () => {
    expect(() => refuseRepeatedOptions(new Command('odd').option('--colour [when]', 'optional value'))).toThrow(/--colour \[when\] takes an optional value/);
  });
});

const folder = mkdtempSync(join(tmpdir(), 'chipledger-single-value-options-'));
/** Every request the server received: METHOD /path and its JSON body. */
const requests: Array<{ route: string; body: Record<string, unknown> }> = [];
let api: StandInApi;
let url: string;

beforeAll(async () => {
  // Answers every change as the API would enough for the CLI to print its sentence.
  api = await startStandInApi((request, response) => {
    let text = '';
    request.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    request.on('end', () => {
      requests.push({ route: `${request.method} ${request.url}`, body: text === '' ? {} : JSON.parse(text) as Record<string, unknown> });
      response.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ licenceId: 'L-1', shipmentId: 'S-1', units: 5, status: 'draft' }));
    });
  });
  url = api.url;
});
afterAll(async () => {
  await api?.close();
  rmSync(folder, { recursive: true, force: true });
});
beforeEach(() => {
  requests.length = 0;
});

let runs = 0;
/** `chipledger ARGS` in this process, with a data dir of its own (so a refusal can be seen to leave none behind). */
async function chipledger(args: string[]): Promise<{ code: number; stdout: string; stderr: string; dataDir: string }> {
  runs += 1;
  const dataDir = join(folder, `data-${runs}`);
  const { output, out, err } = recordingOutput();
  const code = await main(args, { CHIPLEDGER_DATA_DIR: dataDir, CHIPLEDGER_URL: url, CHIPLEDGER_TOKEN: 'clt_test' }, output);
  return { code, stdout: out.join('\n'), stderr: err.join('\n'), dataDir };
}

/** The options of a whole licences create, but for `more`. */
const draft = (...more: string[]) => ['licences', 'create', '--reference', 'BIS-1', '--direction', 'export', '--holder', 'ORG-2', '--product', 'PRD-9',
  '--origin', 'US', '--destination', 'CN', '--units', '1000', '--valid-from', '2026-01-01T00:00:00Z', ...more];
const book = (...more: string[]) => ['shipments', 'book', '--export-allocation', 'A-1', '--import-allocation', 'A-2', '--product', 'PRD-9', '--units', '5', ...more];

describe('chipledger', () => {
  it('refuses an option given twice in client, admin, log and serve commands: one line, exit 2, nothing sent or made', async () => {
    const keyFile = join(folder, 'log.key');
    const cases: Array<[string[], string]> = [
      [draft('--valid-to', '2027-01-01T00:00:00Z', '--units', '500000'), '--units is given twice (1000 and 500000)'],
      [['licences', 'create', '--holder', 'ORG-2', '--units', '5', '--holder=ORG-9'], '--holder is given twice (ORG-2 and ORG-9)'],
      [['allocations', 'resize', 'A-1', '--units', '3', '--units', '0'], '--units is given twice (3 and 0)'],
      [['sites', 'register', '--name', 'DC 1', '--latitude', '41.0347', '--latitude=-41.0347'], '--latitude is given twice (41.0347 and -41.0347)'],
      [book('--deadline', '12h', '--deadline', '30d'), '--deadline is given twice (12h and 30d)'],
      [['shipments', 'list', '--status', 'booked', '--status', 'shipped'], '--status is given twice (booked and shipped)'],
      [['api', 'POST', '/v1/products', '--body', 'a.json', '--body', 'b.json'], '--body is given twice (a.json and b.json)'],
      [['organisation', 'register', '--name', 'Bureau', '--country', 'US', '--roles', 'authority', '--country', 'CN'], '--country is given twice (US and CN)'],
      [['token', 'create', '--org', 'ORG-1', '--role', 'exporter', '--label', 'x', '--role', 'authority_admin'], '--role is given twice (exporter and authority_admin)'],
      [['log', 'keygen', '--origin', 'a.example/log', '--out', keyFile, '--origin=b.example/log'], '--origin is given twice (a.example/log and b.example/log)'],
      [['log', 'verify', '--url', url, '--url', 'http://other.example', '--key', 'k'], `--url is given twice (${url} and http://other.example)`],
      [['serve', '--port', '8080', '--port', '9090'], '--port is given twice (8080 and 9090)'],
      // A secret is never quoted back: a wrapper's --token beside the user's would put both in a log.
      [['log', 'verify', '--url', url, '--key', 'k', '--token', 'clt_TOK-1_firstSECRET', '--token', 'clt_TOK-1_secondSECRET'], '--token is given twice'],
      [['log', 'verify', '--url', url, '--key', 'k', '--token', 'plain', '--token', 'other'], '--token is given twice'],
      [['shipments', 'ship', 'S-1', '--idempotency-key', 'abc', '--idempotency-key', 'clt_TOK-2_keySECRET'], "--idempotency-key is given twice (abc and (a token's secret, not shown))"],
    ];
    for (const [args, said] of cases) {
      const result = await chipledger(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toBe(`chipledger: ${said}; give it once; nothing was done`);
      expect(result.stdout).toBe('');
      // Refused before any command ran: the data dir, which admin commands and serve make first, is not there.
      expect(existsSync(result.dataDir), args.join(' ')).toBe(false);
    }
    expect(requests).toEqual([]);
    expect(existsSync(keyFile)).toBe(false);
  });

  it('still takes a repeatable option many times: --identifier, --product, --end-user', async () => {
    // organisation register collects every --identifier and says of two of one kind itself,
    // before the database is opened (a guarded --identifier would say "--identifier is given twice (…)").
    const twoLeis = await chipledger(['organisation', 'register', '--name', 'Bureau', '--country', 'US', '--roles', 'authority', '--identifier', 'lei=A', '--identifier=lei=B']);
    expect(twoLeis.code).toBe(2);
    expect(twoLeis.stderr).toBe('chipledger: --identifier lei is given twice');

    const drafted = await chipledger(draft('--valid-to', '2027-01-01T00:00:00Z', '--product', 'PRD-10', '--end-user', 'ORG-5', '--end-user=ORG-6'));
    expect(drafted.code, drafted.stderr).toBe(0);
    expect(requests.map(({ route }) => route)).toEqual(['POST /v1/licences']);
    expect(requests[0]!.body).toMatchObject({
      productIds: ['PRD-9', 'PRD-10'],
      parties: [{ organisationId: 'ORG-5', role: 'end_user' }, { organisationId: 'ORG-6', role: 'end_user' }],
    });
  });

  it('takes an option with a default given once, and its default when it is left out', async () => {
    const before = Date.now();
    for (const args of [book('--deadline', '12h'), book('--deadline=12h'), book()]) expect((await chipledger(args)).code, args.join(' ')).toBe(0);
    const deadlines = requests.map(({ body }) => Date.parse(String(body.deadline)) - before);
    const hourMs = 3_600_000;
    expect(deadlines.map((ms) => Math.round(ms / hourMs))).toEqual([12, 12, 30 * 24]);
  });

  it('refuses hour 24 in a time, which the API refuses, instead of sending the next day: exit 2, nothing sent', async () => {
    const result = await chipledger(draft('--valid-to', '2027-01-01T24:00:00Z'));
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('chipledger: --valid-to must be a date and time with its offset, such as 2027-01-01T00:00:00Z or 2027-01-01T08:00:00+08:00; got "2027-01-01T24:00:00Z"');
    const deadline = await chipledger(book('--deadline', '2027-01-01T24:00:00+08:00'));
    expect(deadline.code).toBe(2);
    expect(deadline.stderr).toMatch(/^chipledger: --deadline must be a time such as 2026-12-31T18:00:00Z, or a span from now such as 30d, 12h or 90m; got "2027-01-01T24:00:00\+08:00"$/);
    expect(requests).toEqual([]);
  });
});
