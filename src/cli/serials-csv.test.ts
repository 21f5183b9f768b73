import { describe, expect, it } from 'vitest';
import { manifest, unitsDeploy } from '../ledger/schemas.ts';
import { checkSerialCsv, formatCsvProblems, problemsShownMax, quotedCharactersMax, serialCsvBytesMax } from './serials-csv.ts';

const check = (text: string | Buffer, serialsMax = 100_000, acceptsGpuUuids = true) => checkSerialCsv(typeof text === 'string' ? Buffer.from(text, 'utf8') : text, { serialsMax, acceptsGpuUuids });

describe('checkSerialCsv', () => {
  it('reads serials with and without GPU UUIDs, CRLF, a BOM, quotes and blank lines', () => {
    const result = check('\uFEFFserial,gpu_uuid\r\nSN001,GPU-12345678-aaaa-bbbb-cccc-123456789012\r\n"SN002",\r\n\r\nSN/003:X.Y_Z-1,\n');
    expect(result.problems).toEqual([]);
    expect(result.entries).toEqual([{ serial: 'SN001', gpuUuid: 'GPU-12345678-aaaa-bbbb-cccc-123456789012' }, { serial: 'SN002' }, { serial: 'SN/003:X.Y_Z-1' }]);
  });

  it('reports every bad line by its number, and nothing else', () => {
    const bytes = Buffer.concat([
      Buffer.from('serial,gpu_uuid\n'), // 1
      Buffer.from('GOOD1,\n'), // 2
      Buffer.from('BAD SERIAL,\n'), // 3: a space
      Buffer.from(`${'A'.repeat(65)},\n`), // 4: too long
      Buffer.from([0x53, 0x4e, 0xc3, 0x28, 0x2c, 0x0a]), // 5: invalid UTF-8
      Buffer.from('GOOD1,\n'), // 6: duplicate of line 2
      Buffer.from('GOOD2,GPU-1,extra\n'), // 7: three fields
      Buffer.from('GOOD3,GPU-nothex\n'), // 8: bad UUID
      Buffer.from('-LEADING,\n'), // 9: must start with a letter or digit
      Buffer.from('SN\u0007BELL,\n'), // 10: control character
      Buffer.from('序列号1,\n'), // 11: not ASCII
      Buffer.from('GOOD4\n'), // 12: one field where the header has two
      Buffer.from('GOOD5,\n'), // 13: fine
    ]);
    const result = check(bytes);
    expect(result.problems.map((problem) => problem.line)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(result.problems.map((problem) => problem.message)).toEqual([
      'serial "BAD SERIAL" has the character U+0020; only capital ASCII letters, digits and . _ : / - are allowed',
      `serial "${'A'.repeat(20)}"… is 65 characters long; at most 64 (serialLengthMax)`,
      'is not valid UTF-8',
      'serial GOOD1 is listed twice (first on line 2)',
      'has 3 fields; the header has 2 (serial,gpu_uuid)',
      'GPU UUID "GPU-nothex" is not of the form GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)',
      'serial "-LEADING" must start with a letter or digit',
      'serial "SN\\u0007BELL" has the character U+0007; only capital ASCII letters, digits and . _ : / - are allowed',
      'serial "序列号1" has the character "序" (U+5E8F); only capital ASCII letters, digits and . _ : / - are allowed',
      'has 1 field; the header has 2 (serial,gpu_uuid)',
    ]);
  });

  it('refuses a missing or wrong header, and still checks the lines', () => {
    expect(check('').problems).toEqual([{ line: 1, message: 'the file is empty; expected the header "serial" or "serial,gpu_uuid"' }]);
    const result = check('SN001\nSN 002\n');
    expect(result.problems).toEqual([
      { line: 1, message: 'the header must be "serial" or "serial,gpu_uuid"; got "SN001"' },
      { line: 2, message: expect.stringContaining('U+0020') },
    ]);
    expect(check('serial\n\n').problems).toEqual([{ line: 1, message: 'the file lists no serials after its header' }]);
  });

  it('skips blank lines before the header too, and keeps counting them in line numbers', () => {
    expect(check('\r\n \nserial\nSN001\n')).toEqual({ entries: [{ serial: 'SN001' }], problems: [], problemCount: 0 });
    expect(check('\uFEFF\nserial\nSN 1\n').problems).toEqual([{ line: 3, message: expect.stringContaining('U+0020') }]);
    expect(check('\n\n').problems).toEqual([{ line: 1, message: 'the file is empty; expected the header "serial" or "serial,gpu_uuid"' }]);
  });

  it('reads a fully quoted file, header included (R write.csv, Python QUOTE_ALL)', () => {
    const result = check('"serial","gpu_uuid"\r\n"SN001","GPU-12345678-aaaa-bbbb-cccc-123456789012"\r\n"SN002",""\r\n');
    expect(result.problems).toEqual([]);
    expect(result.entries).toEqual([{ serial: 'SN001', gpuUuid: 'GPU-12345678-aaaa-bbbb-cccc-123456789012' }, { serial: 'SN002' }]);
    expect(check('\uFEFF "Serial" \nSN001\n')).toEqual({ entries: [{ serial: 'SN001' }], problems: [], problemCount: 0 });
  });

  it('refuses files joined together: a repeated header line, and a byte order mark past the start', () => {
    const joined = 'serial\nSN1\n\uFEFFserial\nSN2\n';
    expect(check(joined).problems).toEqual([{ line: 3, message: 'has a byte order mark (U+FEFF) that is not at the start of the file (were files joined together?); remove it' }]);
    const repeated = check('serial,gpu_uuid\nSN1,\n"serial","GPU_UUID"\nSN2,\nserial,gpu_uuid\n');
    expect(repeated.problems).toEqual([
      { line: 3, message: 'repeats the header "serial,gpu_uuid" (were files joined together?); a file has one header, on its first line' },
      { line: 5, message: 'repeats the header "serial,gpu_uuid" (were files joined together?); a file has one header, on its first line' },
    ]);
    expect(check('serial\nSN1\nSerial\n').problems.map((problem) => problem.line)).toEqual([3]);
    // A bare SERIAL is the header again (`cat a.csv b.csv`, b.csv's header in capitals), never
    // a unit; a unit whose serial is SERIAL is listed in quotes, where the header is not.
    expect(check('serial\nSN1\nSERIAL\nSN2\n').problems).toEqual([
      { line: 3, message: 'repeats the header "serial" (were files joined together?); a file has one header, on its first line; a unit whose serial is SERIAL is listed in quotes, "SERIAL", in a file whose header is not in quotes' },
    ]);
    expect(check('serial\nSN1\n "SERIAL" \n')).toEqual({ entries: [{ serial: 'SN1' }, { serial: 'SERIAL' }], problems: [], problemCount: 0 });
    // Where the header is in quotes (QUOTE_ALL), quotes tell nothing: the line is the header.
    expect(check('"serial"\n"SN1"\n"SERIAL"\n').problems.map((problem) => problem.line)).toEqual([3]);
    expect(check('SERIAL\nSN1\nSERIAL\n').problems.map((problem) => problem.line)).toEqual([3]);
    expect(check('serial\nSN1\n"Serial"\n').problems.map((problem) => problem.line)).toEqual([3]);
    expect(check('serial,gpu_uuid\nSN1,\nSERIAL,GPU_UUID\n').problems).toEqual([{ line: 3, message: 'repeats the header "serial,gpu_uuid" (were files joined together?); a file has one header, on its first line' }]);
    // A second mark on the first line, or one alone on a line, is no more a part of the data.
    expect(check('\uFEFF\uFEFFserial\nSN1\n').problems.map((problem) => problem.line)).toEqual([1]);
    expect(check('serial\nSN1\n\uFEFF\nSN2\n').problems.map((problem) => problem.line)).toEqual([3]);
    // Also where a bad byte elsewhere makes each line be decoded on its own.
    const withBadByte = Buffer.concat([Buffer.from('serial\nSN1\n\uFEFFserial\nSN2\n'), Buffer.from([0xc3, 0x28, 0x0a])]);
    expect(check(withBadByte).problems.map((problem) => problem.line)).toEqual([3, 5]);
  });

  it('takes GPU UUIDs only in nvidia-smi\'s form, hex digits in either case, as the API\'s schema does, naming each bad line', () => {
    const good = ['GPU-12345678-aaaa-bbbb-cccc-123456789012', 'GPU-ABCDEF12-AAAA-BBBB-CCCC-123456789012'];
    // The same 128-bit UUID hyphenated elsewhere, no hex digit at all, a group too long, a lower-case prefix, a MIG device.
    const bad = ['GPU-123456781234-1234-1234-123456789abc', 'GPU---------', 'GPU-12345678-1234-1234-1234-123456789abcd', 'gpu-12345678-1234-1234-1234-123456789abc', 'MIG-12345678-1234-1234-1234-123456789abc'];
    const lines = [...good, ...bad].map((uuid, index) => `U${index},${uuid}`);
    const result = check(`serial,gpu_uuid\n${lines.join('\n')}\n`);
    expect(result.entries).toEqual(good.map((gpuUuid, index) => ({ serial: `U${index}`, gpuUuid })));
    expect(result.problems).toEqual(bad.map((uuid, index) => ({ line: good.length + index + 2, message: `GPU UUID "${uuid}" is not of the form GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)` })));
    for (const uuid of good) expect(manifest.safeParse([{ serial: 'S1', gpuUuid: uuid }]).success, uuid).toBe(true);
    for (const uuid of bad) expect(manifest.safeParse([{ serial: 'S1', gpuUuid: uuid }]).success, uuid).toBe(false);
  });

  it('finds duplicate GPU UUIDs', () => {
    const uuid = 'GPU-12345678-aaaa-bbbb-cccc-123456789012';
    expect(check(`serial,gpu_uuid\nA1,${uuid}\nA2,${uuid}\n`).problems).toEqual([{ line: 3, message: `GPU UUID ${uuid} is listed twice (first on line 2)` }]);
  });

  it('finds duplicate GPU UUIDs whatever the case of their hex digits, and names both spellings', () => {
    const lower = 'GPU-abcdef12-aaaa-bbbb-cccc-123456789012';
    const upper = 'GPU-ABCDEF12-AAAA-BBBB-CCCC-123456789012';
    const result = check(`serial,gpu_uuid\nA1,${lower}\nA2,${upper}\nA3,gpu-abcdef12-aaaa-bbbb-cccc-123456789012\n`);
    expect(result.problems).toEqual([
      { line: 3, message: `GPU UUID ${upper} is listed twice (first on line 2, as ${lower})` },
      // The prefix is upper case in the API's pattern: a lower-case "gpu-" is a bad UUID, not a duplicate.
      { line: 4, message: expect.stringContaining('is not of the form GPU-') },
    ]);
  });

  it('counts the serials past the limit as one problem of the file, and still checks every line after it', () => {
    const result = check('serial\nA\nB\nC\nD\nE\n', 3);
    expect(result.problems).toEqual([{ line: 0, message: 'lists 5 serials; one upload holds at most 3 (serial 4 is on line 5)' }]);
    expect(result.problemCount).toBe(1);
    expect(result.entries).toHaveLength(3);
    // Bad lines and duplicates past the limit are reported too, each by its line.
    const later = check('serial\nA\nB\nC\nD\nE F\nA\nG\n', 3);
    expect(later.problems).toEqual([
      { line: 0, message: 'lists 5 serials; one upload holds at most 3 (serial 4 is on line 5)' },
      { line: 6, message: expect.stringContaining('U+0020') },
      { line: 7, message: 'serial A is listed twice (first on line 2)' },
    ]);
    expect(later.problemCount).toBe(3);
  });

  it('keeps the first problemsShownMax problems and counts the rest, the serial limit always first', () => {
    const bad = Array.from({ length: problemsShownMax * 2 }, (_, index) => `BAD ${index}`);
    const result = check(['serial', ...bad, 'A', 'B', 'A'].join('\n'), 1);
    expect(result.problemCount).toBe(1 + problemsShownMax * 2 + 1);
    expect(result.problems).toHaveLength(problemsShownMax);
    expect(result.problems[0]).toEqual({ line: 0, message: `lists 2 serials; one upload holds at most 1 (serial 2 is on line ${bad.length + 3})` });
    expect(result.problems[1]).toEqual({ line: 2, message: expect.stringContaining('"BAD 0"') });
    expect(result.problems.at(-1)).toEqual({ line: problemsShownMax, message: expect.stringContaining(`"BAD ${problemsShownMax - 2}"`) });
    const text = formatCsvProblems('m.csv', result).split('\n');
    expect(text[0]).toBe(`m.csv: ${1 + problemsShownMax * 2 + 1} bad lines; nothing was imported`);
    expect(text[1]).toBe(`  m.csv: lists 2 serials; one upload holds at most 1 (serial 2 is on line ${bad.length + 3})`);
    expect(text.at(-1)).toBe(`  … and ${problemsShownMax * 2 + 2 - problemsShownMax} more`);
  });

  it('strips only ASCII spaces and tabs around a field: a no-break or ideographic space is a bad character', () => {
    expect(check('serial \r\n \tA1\t \r\n\t\n "A2" \n')).toEqual({ entries: [{ serial: 'A1' }, { serial: 'A2' }], problems: [], problemCount: 0 });
    const result = check('serial\nA1\u00a0\n\u3000A2\nA3\n\u00a0\n');
    expect(result.problems).toEqual([
      { line: 2, message: 'serial "A1\\u00a0" has the character U+00A0; only capital ASCII letters, digits and . _ : / - are allowed' },
      { line: 3, message: 'serial "\\u3000A2" has the character U+3000; only capital ASCII letters, digits and . _ : / - are allowed' },
      // A line of a no-break space alone is not blank: it is a serial that is not one.
      { line: 5, message: expect.stringContaining('U+00A0') },
    ]);
    expect(check('serial\u00a0\nA1\n').problems).toEqual([{ line: 1, message: 'the header must be "serial" or "serial,gpu_uuid"; got "serial\u00a0"' }]);
    expect(check('serial,gpu_uuid\nA1,GPU-12345678-aaaa-bbbb-cccc-123456789012\u00a0\n').problems).toEqual([{ line: 2, message: expect.stringContaining('is not of the form') }]);
  });

  it('quotes at most quotedCharactersMax characters of a header or GPU UUID, and gives the length', () => {
    const header = `serial;${'x'.repeat(1_000_000)}`;
    const [problem] = check(`${header}\nA1\n`).problems;
    expect(problem).toEqual({ line: 1, message: `the header must be "serial" or "serial,gpu_uuid"; got "${header.slice(0, quotedCharactersMax)}"… (1,000,007 characters)` });
    const uuid = `GPU-${'0'.repeat(100_000)}`;
    const [uuidProblem] = check(`serial,gpu_uuid\nA1,${uuid}\n`).problems;
    expect(uuidProblem!.message).toBe(`GPU UUID "${uuid.slice(0, quotedCharactersMax)}"… (100,004 characters) is not of the form GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)`);
    // Cut before a surrogate pair, never through it.
    const emoji = check(`${'x'.repeat(quotedCharactersMax - 1)}🚀${'y'.repeat(10)}\nA1\n`).problems[0]!.message;
    expect(emoji).toContain(`got "${'x'.repeat(quotedCharactersMax - 1)}"… (`);
    expect(emoji).not.toMatch(/\\ud8/);
    // At the bound, quoted whole.
    expect(check(`${'x'.repeat(quotedCharactersMax)}\nA1\n`).problems[0]!.message).toMatch(new RegExp(`got "x{${quotedCharactersMax}}"$`));
  });

  it('escapes bidi controls and C1 in a quoted header, GPU UUID or serial, so the problem line reads as written (s21 sinks, finding 3)', () => {
    const result = check('serial,\u202eoops\nA1,GPU-\u202e12345678\nSN\u202e0002,\nSN\u009b2J,\n');
    expect(result.problems.map((problem) => problem.message)).toEqual([
      'the header must be "serial" or "serial,gpu_uuid"; got "serial,\\u202eoops"',
      'GPU UUID "GPU-\\u202e12345678" is not of the form GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)',
      'serial "SN\\u202e0002" has the character U+202E; only capital ASCII letters, digits and . _ : / - are allowed',
      'serial "SN\\u009b2J" has the character U+009B; only capital ASCII letters, digits and . _ : / - are allowed',
    ]);
    expect(formatCsvProblems('bidi.csv', result)).not.toMatch(/[\u0080-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/);
  });

  it('refuses a serial with lower-case letters, naming the spelling to send, so AB01 and ab01 are never two units (s21 identity, finding 5)', () => {
    const result = check('serial\nAB01\nab01\nSn/02:x\n');
    expect(result.problems).toEqual([
      { line: 3, message: 'serial "ab01" has lower-case letters; serials are written in capitals: write it as AB01' },
      { line: 4, message: 'serial "Sn/02:x" has lower-case letters; serials are written in capitals: write it as SN/02:X' },
    ]);
    // The API's schema refuses them in the same words.
    expect(manifest.safeParse(['AB01', 'ab01']).error?.issues.map((issue) => [issue.path, issue.message])).toEqual([[[1], result.problems[0]!.message]]);
  });

  it('takes serials in either case in a deployment report, which names units an earlier release may have made in lower case (s21 ledger review, F1)', () => {
    const report = check('serial\nAB01\nab01\nSn/02:x\nab 03\n', 100_000, false);
    expect(report.entries).toEqual([{ serial: 'AB01' }, { serial: 'ab01' }, { serial: 'Sn/02:x' }]);
    expect(report.problems).toEqual([{ line: 5, message: 'serial "ab 03" has the character U+0020; only ASCII letters, digits and . _ : / - are allowed' }]);
    // As the API's units.* commands take them; a manifest's lines make units, so they stay in capitals.
    expect(unitsDeploy.safeParse({ siteId: 'SITE-1', serials: report.entries.map((entry) => entry.serial) }).success).toBe(true);
    expect(checkSerialCsv(Buffer.from('serial\nab01\n'), { serialsMax: 10, acceptsGpuUuids: false, makesUnits: true }).problems).toEqual([
      { line: 2, message: 'serial "ab01" has lower-case letters; serials are written in capitals: write it as AB01' },
    ]);
  });

  it('refuses a gpu_uuid column where GPU UUIDs are not accepted (a deployment report), once, and checks the rest', () => {
    const result = check('serial,gpu_uuid\nA1,GPU-12345678-aaaa-bbbb-cccc-123456789012\nA2,\nA 3,\n', 100_000, false);
    expect(result.problems).toEqual([
      { line: 1, message: 'has a gpu_uuid column, but this command sends serials alone, so the GPU UUIDs would not be checked; remove the column (the header must be "serial")' },
      { line: 4, message: expect.stringContaining('U+0020') },
    ]);
    expect(check('serial\nA1\n', 100_000, false)).toEqual({ entries: [{ serial: 'A1' }], problems: [], problemCount: 0 });
    expect(check('', 100_000, false).problems).toEqual([{ line: 1, message: 'the file is empty; expected the header "serial"' }]);
    expect(check('sn\nA1\n', 100_000, false).problems).toEqual([{ line: 1, message: 'the header must be "serial"; got "sn"' }]);
  });

  it('says a UTF-16 file is UTF-16, once, instead of a problem on every line', () => {
    const text = 'serial\r\nA1\r\nA2\r\n';
    const utf16 = 'the file is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8 (in Excel: "CSV UTF-8")';
    // What iconv -t utf-16 and Excel's "Unicode text" write: little-endian with a mark; and big-endian.
    const little = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    const big = Buffer.from(little.subarray(2)).swap16();
    for (const bytes of [little, Buffer.concat([Buffer.from([0xfe, 0xff]), big]), Buffer.from([0xff, 0xfe, 0x41, 0x00])]) {
      const result = check(bytes);
      expect(result.problems).toEqual([{ line: 0, message: utf16 }]);
      expect(result.problemCount).toBe(1);
    }
    // Without a mark: the NULs beside every ASCII character say it.
    expect(check(Buffer.from(text, 'utf16le')).problems).toEqual([{ line: 0, message: 'the file has NUL bytes (the first at byte 2): it is UTF-16 or not text; save it as UTF-8 (in Excel: "CSV UTF-8")' }]);
    expect(formatCsvProblems('u16.csv', check(little)).split('\n')).toEqual(['u16.csv: 1 problem; nothing was imported', `  u16.csv: ${utf16}`]);
  });

  it('says lines that end with CR only are that, not one long header', () => {
    const message = 'the lines end with CR only (as old Mac editors save); save the file with LF or CRLF line ends';
    expect(check('serial\rA1\rA2\r').problems).toEqual([{ line: 0, message }]);
    expect(check('serial\rA1\nA2\n').problems).toEqual([{ line: 0, message }]);
    // A CR that ends a CRLF line, or a file of one CR-ended line, is no such file.
    expect(check('serial\r\nA1\rX\n').problems).toEqual([{ line: 2, message: expect.stringContaining('U+000D') }]);
    expect(check('serial\r').problems).toEqual([{ line: 1, message: 'the file lists no serials after its header' }]);
  });

  it('says a file past the byte limit is refused, not that part of it was read', () => {
    const result = check(Buffer.alloc(serialCsvBytesMax + 1, 0x41));
    expect(result.problems).toEqual([{ line: 0, message: `the file is ${(serialCsvBytesMax + 1).toLocaleString('en-US')} bytes; a serial file may have at most ${serialCsvBytesMax.toLocaleString('en-US')}` }]);
  });

  it('does not call a file empty when its lines were bad', () => {
    expect(check(Buffer.from([0xc3, 0x28, 0x0a])).problems).toEqual([{ line: 1, message: 'is not valid UTF-8' }]);
  });

  it('writes the line of the first serial past the limit with a thousands separator, as the counts', () => {
    const result = check(`serial\n${'\n'.repeat(1500)}A\nB\n`, 1);
    expect(result.problems).toEqual([{ line: 0, message: 'lists 2 serials; one upload holds at most 1 (serial 2 is on line 1,503)' }]);
  });

  // How fast is for bench/, not for a test: this one only checks a file at the manifest limit.
  it('checks a 100,000-serial file (the manifest limit) in full', () => {
    const lines = ['serial,gpu_uuid'];
    for (let index = 0; index < 100_000; index += 1) lines.push(`1654${String(index).padStart(9, '0')},GPU-${index.toString(16).padStart(8, '0')}-0000-0000-0000-000000000000`);
    const result = check(lines.join('\n'));
    expect(result.problems).toEqual([]);
    expect(result.entries).toHaveLength(100_000);
    expect(result.entries.at(-1)).toEqual({ serial: '1654000099999', gpuUuid: 'GPU-0001869f-0000-0000-0000-000000000000' });
  });
});

describe('formatCsvProblems', () => {
  it('shows the first problems with file:line and counts the rest', () => {
    const problems = Array.from({ length: problemsShownMax }, (_, index) => ({ line: index + 2, message: 'bad' }));
    const text = formatCsvProblems('m.csv', { problems, problemCount: problemsShownMax + 5 }).split('\n');
    expect(text[0]).toBe(`m.csv: ${problemsShownMax + 5} bad lines; nothing was imported`);
    expect(text[1]).toBe('  m.csv:2: bad');
    expect(text.at(-1)).toBe('  … and 5 more');
  });

  it('says what did not happen: a deployment report was not sent', () => {
    expect(formatCsvProblems('d.csv', { problems: [{ line: 2, message: 'bad' }], problemCount: 1 }, 'sent').split('\n')[0]).toBe('d.csv: 1 bad line; nothing was sent');
  });
});
