import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { limits } from '../core/limits.ts';
import { bookCommand, columns, commandLine, deployCommand, listCommand, manifestImportCommand, readBounded, showCommand, transitionCommand, utilisationCommand, utilisationRows } from './client-commands.ts';
import { deadlineSpanClockMarginMs, parseDeadline } from './client-values.ts';
import { ApiClient, unknownOutcomeOf } from './http.ts';
import { Failure, printable, type Output } from './output.ts';
import { serialCsvBytesMax } from './serials-csv.ts';
import { recordingOutput } from '../../test/support/recording-output.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-cli-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

function client(answer: unknown): { client: ApiClient; requests: Array<{ url: string; body: unknown; key: string | undefined }> } {
  const requests: Array<{ url: string; body: unknown; key: string | undefined }> = [];
  const fetch = (async (input: URL | string, init?: RequestInit) => {
    const text = init?.body instanceof ReadableStream ? await new Response(init.body).text() : String(init?.body ?? '');
    requests.push({ url: String(input), body: text === '' ? undefined : JSON.parse(text) as unknown, key: (init?.headers as Record<string, string>)['idempotency-key'] });
    return new Response(JSON.stringify(answer), { status: 200, headers: { 'content-type': 'application/json' } });
  }) as typeof globalThis.fetch;
  return { client: new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_test', fetch }), requests };
}

describe('manifest import', () => {
  it('reports every bad line by number and sends nothing', async () => {
    const file = join(folder, 'bad.csv');
    writeFileSync(file, 'serial,gpu_uuid\nSN1,\nSN 2,\nSN1,\nSN3,GPU-x\n');
    const { client: api, requests } = client({});
    const { output, err } = recordingOutput();
    await expect(manifestImportCommand(api, 'S-7', file, output)).rejects.toThrow(new Failure(`${file} was not imported`));
    expect(requests).toEqual([]);
    expect(err.join('\n')).toContain(`${file}: 3 bad lines; nothing was imported`);
    expect(err.join('\n')).toContain(`${file}:3: serial "SN 2" has the character U+0020`);
    expect(err.join('\n')).toContain(`${file}:4: serial SN1 is listed twice (first on line 2)`);
    expect(err.join('\n')).toContain(`${file}:5: GPU UUID "GPU-x" is not of the form`);
  });

  it('uploads a good file in one POST with an idempotency key', async () => {
    const file = join(folder, 'good.csv');
    writeFileSync(file, 'serial,gpu_uuid\nSN1,GPU-12345678-aaaa-bbbb-cccc-123456789012\nSN2,\n');
    const { client: api, requests } = client({ shipmentId: 'S-7', added: 2, serialCount: 2 });
    const { output, out } = recordingOutput();
    expect(await manifestImportCommand(api, 'S-7', file, output)).toBe(0);
    expect(requests).toEqual([{ url: 'http://ledger.test/v1/shipments/S-7/manifest', body: { serials: [{ serial: 'SN1', gpuUuid: 'GPU-12345678-aaaa-bbbb-cccc-123456789012' }, 'SN2'] }, key: expect.any(String) }]);
    expect(out).toEqual(['Attached 2 serials to shipment S-7 (2 listed in all).']);
  });

  it('ends the upload bar on a terminal when the upload fails, so the error starts on its own line', async () => {
    const file = join(folder, 'big.csv');
    writeFileSync(file, `serial\n${Array.from({ length: 10_000 }, (_, index) => `SN${String(index).padStart(8, '0')}`).join('\n')}\n`);
    // Takes the first 64 KiB chunk of the body, then the connection breaks, twice.
    const fetch = (async (_input: URL | string, init?: RequestInit) => {
      await (init!.body as ReadableStream<Uint8Array>).getReader().read();
      throw Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } });
    }) as typeof globalThis.fetch;
    const api = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_test', fetch, retryDelayMs: 1 });
    const written: string[] = [];
    const output: Output = { out: () => {}, err: (line) => void written.push(`${line}\n`), errStream: { isTTY: true, write: (text) => written.push(text) > 0 } };
    await expect(manifestImportCommand(api, 'S-7', file, output)).rejects.toThrow(/couldn't reach http:\/\/ledger\.test .*ECONNRESET/);
    // The bar stops where the upload stopped (half of it sent), and its line is ended.
    const upload = written.join('').split('\n').filter((line) => line.includes('uploading'));
    expect(upload).toEqual([expect.stringMatching(/^\ruploading [█░]+  50% 65,536\/130,013 bytes$/)]);
    expect(written.at(-1)).toBe('\n');
  });

  it('reads a pipe up to the byte limit and stops there, saying so, instead of reading all of it', async () => {
    const fifo = join(folder, 'pipe.csv');
    execFileSync('mkfifo', [fifo]);
    // A writer with more to give than a serial file may hold: 4 MiB past the limit.
    const writer = createWriteStream(fifo);
    writer.on('error', () => {}); // EPIPE once the reader stops
    const chunk = Buffer.alloc(1024 * 1024, 'A');
    let written = 0;
    const pump = () => {
      while (written < serialCsvBytesMax + 4 * chunk.length) {
        written += chunk.length;
        if (!writer.write(chunk)) return void writer.once('drain', pump);
      }
      writer.end();
    };
    pump();
    const { client: api, requests } = client({});
    const max = serialCsvBytesMax.toLocaleString('en-US');
    await expect(deployCommand(api, 'SITE-1', fifo, recordingOutput().output)).rejects.toThrow(new Failure(`${fifo} holds more than ${max} bytes (reading stopped there); a serial file may have at most ${max}`));
    writer.destroy();
    expect(written).toBeLessThan(serialCsvBytesMax + 4 * chunk.length);
    expect(requests).toEqual([]);
  });

  it('gives a change whose outcome is unknown the command that reruns it with its key', async () => {
    const file = join(folder, 'rerun.csv');
    writeFileSync(file, 'serial\nSN1\n');
    const fetch = (async () => new Response('', { status: 503, headers: { 'retry-after': '0' } })) as typeof globalThis.fetch;
    const api = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_test', fetch, newKey: () => 'k-1' });
    const imported = await manifestImportCommand(api, 'S-7', file, recordingOutput().output).catch((error: unknown) => error);
    expect(unknownOutcomeOf(imported)?.rerun).toBe(`chipledger manifest import S-7 ${file} --idempotency-key k-1`);
    const deployed = await deployCommand(api, 'SITE-3', file, recordingOutput().output, { idempotencyKey: 'mine' }).catch((error: unknown) => error);
    expect(unknownOutcomeOf(deployed)?.rerun).toBe(`chipledger deploy SITE-3 ${file} --idempotency-key mine`);
    // A site id the API would refuse is refused before the file is read or anything is sent.
    const badSite = await deployCommand(api, 'SITE 3', file, recordingOutput().output).catch((error: unknown) => error);
    expect(badSite).toMatchObject({ exitCode: 2, message: expect.stringMatching(/^the site id \(siteId\): must be an id such as/) });
    const moved = await transitionCommand(api, 'cancel', 'S-7', { reason: 'wrong site' }, recordingOutput().output).catch((error: unknown) => error);
    expect(unknownOutcomeOf(moved)?.rerun).toBe("chipledger shipments cancel S-7 --reason 'wrong site' --idempotency-key k-1");
  });

  it('names a missing file', async () => {
    const { client: api } = client({});
    await expect(manifestImportCommand(api, 'S-7', join(folder, 'nope.csv'), recordingOutput().output)).rejects.toThrow(/couldn't read .*nope.csv: no such file/);
  });

  it('names a file it cannot read by its absolute path: under `npm run` a relative name is taken from the repository root, not where the user is', async () => {
    const { client: api } = client({});
    const relative = join('no-such-folder', 'm.csv');
    await expect(manifestImportCommand(api, 'S-7', relative, recordingOutput().output)).rejects.toThrow(new Failure(`couldn't read ${join(process.cwd(), relative)}: no such file`));
    await expect(deployCommand(api, 'SITE-1', relative, recordingOutput().output)).rejects.toThrow(new Failure(`couldn't read ${join(process.cwd(), relative)}: no such file`));
    // --body and --event-file are read the same way.
    await expect(readBounded(relative, 'a request body')).rejects.toThrow(new Failure(`couldn't read ${join(process.cwd(), relative)}: no such file`));
  });
});

/** The words bash reads from `line`, a command line that starts with `chipledger`, under the locale `locale`. */
function wordsBashReads(line: string, locale = 'C.UTF-8'): string[] {
  const script = `chipledger() { printf '%s\\0' "$@"; }\n${line}\n`;
  const printed = execFileSync('bash', ['--norc', '--noprofile', '-c', script], { env: { PATH: process.env.PATH, LC_ALL: locale } });
  return printed.toString('utf8').split('\0').slice(0, -1);
}

describe('the rerun line of a change', () => {
  /** Values the API keeps (a line break, a tab) and ones a shell or a terminal reads otherwise. */
  const values = [
    'Langfang DC\nHall B', 'line\r\nends', 'tab\there', "it's", 'back\\slash\n', '$HOME `id` "quoted" !$ !!', 'end\u202eof life', '\u001b[31mred\u001b[0m',
    'C1 \u009b2J', 'DEL\u007f', 'hex after escape \u001bFACE', 'bidi mark \u200f and isolate \u2066x\u2069', 'emoji 🛰 and 中文\n', "'\n'", '', ' ', '-',
  ];

  it('is read by a shell as the very words it was made from, whatever they hold, and holds nothing a terminal acts on', () => {
    for (const locale of ['C.UTF-8', 'C']) {
      for (const value of values) {
        const words = ['chipledger', 'sites', 'register', '--name', value, '--idempotency-key', 'k-1'];
        const line = commandLine(words);
        expect(wordsBashReads(line, locale), `${JSON.stringify(value)} as ${line} (${locale})`).toEqual(words.slice(1));
        expect(printable(line), line).toBe(line);
        expect(line).not.toContain('\n');
      }
    }
    expect(commandLine(['chipledger', 'licences', 'suspend', 'L-87', '--reason', 'Audit finding 7\nsee memo'])).toBe("chipledger licences suspend L-87 --reason $'Audit finding 7\\nsee memo'");
    // Plain words as before: single quotes where a shell would split or expand.
    expect(commandLine(['chipledger', 'deploy', 'SITE 3', "it's"])).toBe("chipledger deploy 'SITE 3' 'it'\\''s'");
  });

  it('of a reason with a line break sends that reason again, not one with a space in its place', async () => {
    const fetch = (async () => new Response('', { status: 503, headers: { 'retry-after': '0' } })) as typeof globalThis.fetch;
    const api = new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_test', fetch, newKey: () => 'k-1' });
    const reason = 'Audit finding 7\nsee memo';
    const cancelled = await transitionCommand(api, 'cancel', 'S-7', { reason }, recordingOutput().output).catch((error: unknown) => error);
    expect(wordsBashReads(unknownOutcomeOf(cancelled)!.rerun!)).toEqual(['shipments', 'cancel', 'S-7', '--reason', reason, '--idempotency-key', 'k-1']);
  });
});

describe('--idempotency-key', () => {
  it('refuses a token secret with exit 2 before anything is sent, naming the token to revoke, never quoting the key', async () => {
    const secret = 'clt_TOK-12_abcdefghijklmnopqrstuvwxyz012345';
    const { client: api, requests } = client({});
    for (const [key, revoke] of [[secret, 'chipledger token revoke TOK-12'], ['clt_anything', 'if it is one, treat it as leaked']] as const) {
      const failure = await transitionCommand(api, 'ship', 'S-7', { idempotencyKey: key }, recordingOutput().output).catch((error: unknown) => error);
      expect(failure, key).toBeInstanceOf(Failure);
      expect((failure as Failure).exitCode, key).toBe(2);
      expect((failure as Failure).message, key).toContain(revoke);
      expect((failure as Failure).message, key).not.toContain(key.slice('clt_'.length));
    }
    expect(requests).toEqual([]);
    // The prefix elsewhere, or in another case, is no secret.
    expect(await transitionCommand(api, 'ship', 'S-7', { idempotencyKey: 'CLT_1-ship' }, recordingOutput().output)).toBe(0);
    expect(requests.map((request) => request.key)).toEqual(['CLT_1-ship']);
  });
});

describe('shipments return', () => {
  it('posts the reason to the shipment\'s return and says its new status', async () => {
    const { client: api, requests } = client({ shipmentId: 'S-7', status: 'returned' });
    const output = recordingOutput();
    expect(await transitionCommand(api, 'return', 'S-7', { reason: 'entry refused' }, output.output)).toBe(0);
    expect(requests.map(({ url, body }) => ({ url, body }))).toEqual([{ url: 'http://ledger.test/v1/shipments/S-7/return', body: { reason: 'entry refused' } }]);
    expect(output.out).toEqual(['Shipment S-7 is now returned.']);
  });
});

describe('deploy', () => {
  it('sends the serials to the site', async () => {
    const file = join(folder, 'deploy.csv');
    writeFileSync(file, 'serial\nSN1\nSN2\n');
    const { client: api, requests } = client({ siteId: 'SITE-3', deployed: 2, moved: 0 });
    const { output, out } = recordingOutput();
    await deployCommand(api, 'SITE-3', file, output);
    expect(requests.map((request) => request.body)).toEqual([{ siteId: 'SITE-3', serials: ['SN1', 'SN2'] }]);
    expect(out).toEqual(['Reported 2 units at site SITE-3.']);
  });

  it('counts one serial as one serial', async () => {
    const file = join(folder, 'deploy-one.csv');
    writeFileSync(file, 'serial\nSN1\n');
    const { output, err } = recordingOutput();
    await deployCommand(client({ deployed: 1 }).client, 'SITE-3', file, output);
    expect(err[0]).toBe('checking: 11 bytes; 1 serial, no problems\n');
  });

  it('refuses a file with a gpu_uuid column, which the API would not check, and sends nothing', async () => {
    const file = join(folder, 'deploy-uuids.csv');
    writeFileSync(file, 'serial,gpu_uuid\nSN1,GPU-12345678-aaaa-bbbb-cccc-123456789012\nSN2,\n');
    const { client: api, requests } = client({ siteId: 'SITE-3', deployed: 2, moved: 0 });
    const { output, out, err } = recordingOutput();
    await expect(deployCommand(api, 'SITE-3', file, output)).rejects.toThrow(new Failure(`${file} was not sent`));
    expect(requests).toEqual([]);
    expect(out).toEqual([]);
    expect(err.join('\n')).toContain(`${file}: 1 bad line; nothing was sent`);
    expect(err.join('\n')).toContain(`${file}:1: has a gpu_uuid column, but this command sends serials alone, so the GPU UUIDs would not be checked; remove the column (the header must be "serial")`);
  });
});

describe('text a server sends', () => {
  // An escape sequence, and the one-byte CSI (U+009B) that JSON.stringify writes raw.
  const hostile = 'x\u001b[31my\u009b31mz\u007f';
  const expectNoControls = (lines: string[]) => {
    for (const line of lines) expect(line).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
  };

  it('reaches the terminal without control characters: a list\'s next cursor, a booking, a transition', async () => {
    const listed = recordingOutput();
    await listCommand(client({ items: [{ id: 'S-1', status: hostile }], nextCursor: hostile }).client, 'shipments', ['id', 'status'], {}, listed.output);
    expect(listed.err).toEqual(['(more: add --cursor x [31my 31mz )']);
    expectNoControls([...listed.out, ...listed.err]);

    const booked = recordingOutput();
    await bookCommand(client({ shipmentId: hostile, units: 5 }).client, { exportAllocation: 'A-1', importAllocation: 'A-2', product: 'P-1', units: '5', deadline: '30d' }, booked.output);
    expect(booked.out).toEqual(['Booked shipment x [31my 31mz : 5 units reserved on both licences.']);

    const moved = recordingOutput();
    await transitionCommand(client({ shipmentId: hostile, status: hostile }).client, 'ship', 'S-1', {}, moved.output);
    expect(moved.out).toEqual(['Shipment x [31my 31mz  is now x [31my 31mz .']);
  });

  it('reaches the terminal as JSON with C1 controls and DEL escaped, still the same JSON: --json lists, records and reports', async () => {
    const page = { items: [{ id: 'S-1', status: hostile, [`k${hostile}`]: { nested: hostile } }], nextCursor: hostile };
    const listed = recordingOutput();
    await listCommand(client(page).client, 'shipments', ['id'], { json: true }, listed.output);
    expectNoControls(listed.out);
    expect(listed.out.join('\n')).toContain('x\\u001b[31my\\u009b31mz\\u007f');
    expect(JSON.parse(listed.out.join('\n'))).toEqual(page);

    const shown = recordingOutput();
    await showCommand(client(page.items[0]).client, 'shipments', 'S-1', { json: true }, shown.output);
    expectNoControls(shown.out);
    expect(JSON.parse(shown.out.join('\n'))).toEqual(page.items[0]);

    // A record's nested values, as a table shows them, are escaped the same way.
    const record = recordingOutput();
    await showCommand(client(page.items[0]).client, 'shipments', 'S-1', {}, record.output);
    expectNoControls(record.out);
    expect(record.out.join('\n')).toContain('"nested": "x\\u001b[31my\\u009b31mz\\u007f"');

    const report = { items: [{ licenceId: 'L-1', reference: hostile, units: 1 }], nextCursor: null };
    const reported = recordingOutput();
    await utilisationCommand(client(report).client, { json: true }, reported.output);
    expectNoControls(reported.out);
    expect(JSON.parse(reported.out.join('\n'))).toEqual(report.items);
  });
});

describe('parseDeadline', () => {
  const now = new Date('2026-03-01T00:00:00Z');
  it('takes spans and ISO times', () => {
    expect(parseDeadline('30d', now)).toBe('2026-03-31T00:00:00.000Z');
    expect(parseDeadline('12h', now)).toBe('2026-03-01T12:00:00.000Z');
    expect(parseDeadline('2026-04-01T10:00:00+08:00', now)).toBe('2026-04-01T02:00:00.000Z');
    for (const bad of ['tomorrow', '0d', '2026-04-01', '30 d']) expect(() => parseDeadline(bad, now)).toThrow(Failure);
  });

  it('refuses a day its month does not have, instead of rolling it into the next month', () => {
    for (const bad of ['2026-02-29T18:00:00Z', '2026-02-30T18:00:00Z', '2026-04-31T00:00:00+08:00', '2026-00-10T00:00:00Z']) {
      expect(() => parseDeadline(bad, now), bad).toThrow(Failure);
    }
    expect(parseDeadline('2028-02-29T18:00:00Z', now)).toBe('2028-02-29T18:00:00.000Z'); // a leap year
    expect(parseDeadline('2026-12-31T23:00:00-05:00', now)).toBe('2027-01-01T04:00:00.000Z');
  });

  it('gives a span reaching the longest deadline (365 days) less a margin for this clock running ahead of the ledger\'s', () => {
    const longest = new Date(now.getTime() + limits.bookingDeadlineMaxMs - deadlineSpanClockMarginMs).toISOString();
    expect(deadlineSpanClockMarginMs).toBe(5 * 60_000);
    for (const span of ['365d', '8760h']) expect(parseDeadline(span, now), span).toBe(longest);
    expect(parseDeadline('8759h', now)).toBe(new Date(now.getTime() + 8759 * 3_600_000).toISOString());
    // Longer than the ledger takes: sent as typed, and refused there with the bound in its words.
    expect(parseDeadline('366d', now)).toBe('2027-03-02T00:00:00.000Z');
  });
});

describe('licences list', () => {
  const licence = { reference: 'BIS-7', direction: 'export', status: 'issued', authorisedUnits: 100_000, validTo: '2027-01-01T00:00:00.000Z', demo: false };

  it('marks the licences whose totals are over the caller\'s own allocations, and says what that means', async () => {
    const page = { items: [{ ...licence, id: 'L-7', allocatedUnits: 20_000, shippedUnits: 15_000, totalsScope: 'own_allocations' }, { ...licence, id: 'L-8', reference: 'BIS-8', allocatedUnits: 90_000, shippedUnits: 1_000, totalsScope: 'licence' }], nextCursor: null };
    const { output, out, err } = recordingOutput();
    await listCommand(client(page).client, 'licences', columns.licences, {}, output);
    const lines = out.join('\n').split('\n');
    expect(lines[0]).toMatch(/^id {21}reference {2}direction {2}status {2}authorisedUnits {2}allocatedUnits {2}shippedUnits/);
    expect(lines[2]).toMatch(/^L-7 \(own allocations\) {2}BIS-7 +export +issued +100,000 +20,000 +15,000 /);
    expect(lines[3]).toMatch(/^L-8 {20}BIS-8 /);
    expect(err).toEqual(["(own allocations: on a licence marked so, allocatedUnits and shippedUnits count only your own allocations, not the rest of the licence's authorisedUnits)"]);
  });

  it('adds nothing where the totals are the licence\'s', async () => {
    const { output, out, err } = recordingOutput();
    await listCommand(client({ items: [{ ...licence, id: 'L-8', allocatedUnits: 90_000, shippedUnits: 1_000, totalsScope: 'licence' }], nextCursor: null }).client, 'licences', columns.licences, {}, output);
    expect(out.join('\n').split('\n')[2]).toMatch(/^L-8  BIS-7 /);
    expect(err).toEqual([]);
  });
});

describe('report utilisation', () => {
  it('names recipients from every page of organisations, not only the first', async () => {
    const pages: Record<string, unknown> = {
      '/v1/reports/utilisation': { items: [{ licenceId: 'L-1', direction: 'import', reference: 'MOFCOM-1', status: 'issued', units: 10, allocations: [{ allocationId: 'A-2', recipientId: 'ORG-900', units: 4 }] }], nextCursor: null },
      '/v1/organisations': { items: [{ id: 'ORG-1', name: 'First' }], nextCursor: 'page-2' },
      '/v1/organisations?page-2': { items: [{ id: 'ORG-900', name: '第九百', nameRomanised: 'Nine Hundred Ltd' }], nextCursor: null },
    };
    const fetch = (async (input: URL | string) => {
      const url = new URL(String(input));
      const cursor = url.searchParams.get('cursor');
      const answer = pages[`${url.pathname}${cursor === null ? '' : `?${cursor}`}`];
      return new Response(JSON.stringify(answer), { status: answer === undefined ? 404 : 200, headers: { 'content-type': 'application/json' } });
    }) as typeof globalThis.fetch;
    const { output, out } = recordingOutput();
    expect(await utilisationCommand(new ApiClient({ baseUrl: 'http://ledger.test', token: 'clt_test', fetch }), {}, output)).toBe(0);
    expect(out.join('\n')).toContain('for ORG-900 Nine Hundred Ltd');
  });
});

describe('utilisationRows', () => {
  it('lists each licence, then its allocations with the recipient name', () => {
    const rows = utilisationRows([{ licenceId: 'L-1', direction: 'export', reference: 'BIS-1', status: 'issued', units: 1000, allocatedUnits: 600, reservedUnits: 100, shippedUnits: 150, availableUnits: 750,
      allocations: [{ allocationId: 'A-2', recipientId: 'ORG-4', units: 600, reservedUnits: 100, shippedUnits: 150, availableUnits: 350 }] }], new Map([['ORG-4', 'Yunchuan']]));
    expect(rows).toEqual([
      { licence: 'L-1 (export)', reference: 'BIS-1', status: 'issued', units: 1000, allocated: 600, reserved: 100, shipped: 150, available: 750, 'used %': 25 },
      { licence: '  └ A-2', reference: 'for ORG-4 Yunchuan', status: undefined, units: 600, allocated: undefined, reserved: 100, shipped: 150, available: 350, 'used %': 41.7 },
    ]);
  });

  it('says when a licence has more allocations than the report embeds', () => {
    const rows = utilisationRows([{ licenceId: 'L-9', direction: 'import', reference: 'MOFCOM-9', status: 'issued', units: 10, allocationsTruncated: true, allocations: [{ allocationId: 'A-1', recipientId: 'ORG-4', units: 1 }] }]);
    // A command of this CLI that lists them all (allocations list --licence).
    expect(rows.at(-1)).toEqual({ licence: '  └ …', reference: 'more allocations than shown: chipledger allocations list --licence L-9' });
  });

  it('never shows 100 % used while a unit is left, nor 0 % once one is used (the output review)', () => {
    const used = (units: number, shippedUnits: number) => utilisationRows([{ licenceId: 'L-1', direction: 'export', reference: 'BIS-1', status: 'issued', units, reservedUnits: 0, shippedUnits, allocations: [] }])[0]!['used %'];
    expect([used(1_000_000, 999_999), used(10_000, 9_996), used(10_000, 4), used(10_000, 0), used(10_000, 10_000), used(1_000, 250)]).toEqual([99.9, 99.9, 0.1, 0, 100, 25]);
  });

  it('shows a recipient its use as a share of its own allocations, and says so', () => {
    const [row] = utilisationRows([{ licenceId: 'L-7', direction: 'export', reference: 'BIS-7', status: 'issued', units: 100_000, totalsScope: 'own_allocations', allocatedUnits: 20_000, unallocatedUnits: null, reservedUnits: 5_000, shippedUnits: 15_000, availableUnits: 0, allocations: [] }]);
    expect(row).toMatchObject({ licence: 'L-7 (export; own allocations)', units: 100_000, allocated: 20_000, available: 0, 'used %': 100 });
  });
});
