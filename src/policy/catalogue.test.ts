import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Eccn, classifyAccelerator } from './classification.ts';
import { defaultCataloguePath, loadAcceleratorCatalogue, parseAcceleratorCsv, sharedCataloguePath } from './catalogue.ts';

const header =
  'model,vendor,dense_tops,bit_length,tpp,logic_die_area_mm2,performance_density,dram_bandwidth_gb_s,memory_gb,designed_for_datacenter,note,source';

/** What each row of accelerators.csv must classify as, worked out by hand from the thresholds. */
const expected: Record<string, { eccn: Eccn; paragraph: string; caseByCase: boolean }> = {
  'A100 SXM': { eccn: '3A090.a', paragraph: '3A090.a.1', caseByCase: true }, // TPP 4992 ≥ 4800 (and PD 6.04 ≥ 5.92)
  'H100 SXM': { eccn: '3A090.a', paragraph: '3A090.a.1', caseByCase: true },
  'H100 PCIe': { eccn: '3A090.a', paragraph: '3A090.a.1', caseByCase: true },
  'H800 SXM': { eccn: '3A090.a', paragraph: '3A090.a.1', caseByCase: true },
  H20: { eccn: 'not 3A090', paragraph: 'below 3A090 thresholds', caseByCase: false }, // TPP 2368 < 2400 (b.1), PD 2.91 < 3.2 (b.2)
  'H200 SXM': { eccn: '3A090.a', paragraph: '3A090.a.1', caseByCase: true }, // TPP 15832 < 21000, 4800 GB/s < 6500
  'H200 NVL': { eccn: '3A090.a', paragraph: '3A090.a.1', caseByCase: true },
  'B200 HGX': { eccn: '3A090.a', paragraph: '3A090.a.1', caseByCase: false }, // TPP 36000 ≥ 21000, 8000 GB/s ≥ 6500
  'AMD MI300X': { eccn: '3A090.a', paragraph: '3A090.a.1', caseByCase: true }, // TPP 20919.2 < 21000
  'AMD MI325X': { eccn: '3A090.a', paragraph: '3A090.a.1', caseByCase: true }, // 6000 GB/s < 6500
  'Ascend 910B': { eccn: '3A090.a', paragraph: '3A090.a.1', caseByCase: true },
  'Ascend 910C': { eccn: '3A090.a', paragraph: '3A090.a.1', caseByCase: true },
};

/**
 * The SHA-256 of shared/data/accelerators.csv when src/policy/accelerators.csv was last copied
 * from it. Recorded here because only a checkout beside ../shared has that file (CI checks
 * out the repository alone): the copy is checked against it everywhere, and the reference
 * file against it wherever it is present.
 */
const referenceCatalogueSha256 = 'dc558b72314d56ea29343d0bbbbb0269279a2c7105df31b3faa1913cd80509b2';
const sha256Of = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** Half a unit in the last published decimal place: 20.6 -> 0.05, 19.45 -> 0.005, 15832 -> 0.5. */
function publishedRounding(published: number): number {
  const decimals = String(published).split('.')[1]?.length ?? 0;
  return 0.5 * 10 ** -decimals;
}

describe('the accelerator catalogue (accelerators.csv)', () => {
  it('loads the copy in this folder by default', async () => {
    const products = await loadAcceleratorCatalogue();
    expect(products.map((product) => product.model)).toEqual(Object.keys(expected));
    expect(products[5]).toEqual({
      model: 'H200 SXM',
      vendor: 'NVIDIA',
      datasheet: { model: 'H200 SXM', denseTops: 1979, bitLength: 8, logicDieAreaMm2: 814, dramBandwidthGbS: 4800, designedForDatacenter: true },
      publishedTpp: 15832,
      publishedPerformanceDensity: 19.45,
      memoryGb: 141,
      note: 'FP8 dense; the chip of the seed',
      source: 'H200 datasheet (hpc-datasheet-sc23-h200)',
      line: 7,
    });
  });

  it('the copy is shared/data/accelerators.csv as last copied (its recorded SHA-256)', () => {
    expect(sha256Of(defaultCataloguePath), 'src/policy/accelerators.csv changed: change shared/data/accelerators.csv, the reference, with it, copy it here, and record its SHA-256 in referenceCatalogueSha256').toBe(referenceCatalogueSha256);
  });

  it('shared/data/accelerators.csv is still the file last copied (its recorded SHA-256)', ({ skip }) => {
    skip(!existsSync(sharedCataloguePath), `no reference file at ${sharedCataloguePath}: the repository is not checked out beside ../shared (as in CI); the copy was checked against its recorded SHA-256`);
    expect(sha256Of(sharedCataloguePath), 'shared/data/accelerators.csv changed: copy it to src/policy/accelerators.csv and record its SHA-256 in referenceCatalogueSha256').toBe(referenceCatalogueSha256);
  });

  it("classifies every row consistently with the file's own TPP and PD columns", async () => {
    for (const product of await loadAcceleratorCatalogue()) {
      const result = classifyAccelerator(product.datasheet);
      const want = expected[product.model];
      expect(want, `no expectation for ${product.model}`).toBeDefined();
      expect(Math.abs(result.tpp - product.publishedTpp), `${product.model} TPP ${result.tpp}`).toBeLessThanOrEqual(publishedRounding(product.publishedTpp) + 1e-9);
      expect(
        Math.abs(result.performanceDensity - product.publishedPerformanceDensity),
        `${product.model} PD ${result.performanceDensity}`,
      ).toBeLessThanOrEqual(publishedRounding(product.publishedPerformanceDensity) + 1e-9);
      expect({ model: product.model, eccn: result.eccn, paragraph: result.paragraph, caseByCase: result.chinaPolicy.caseByCase }).toEqual({
        model: product.model,
        ...want,
      });
    }
  });

  it('says which file could not be read', async () => {
    await expect(loadAcceleratorCatalogue('/nonexistent/accelerators.csv')).rejects.toThrow(/couldn't read the accelerator catalogue at \/nonexistent\/accelerators.csv/);
  });

  it('names the file and line of a bad row', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'catalogue-'));
    try {
      const path = join(folder, 'bad.csv');
      writeFileSync(path, `${header}\nX1,V,abc,8,1,1,1,1,1,true,,s\n`);
      await expect(loadAcceleratorCatalogue(path)).rejects.toThrow(`${path}: couldn't parse the accelerator catalogue: line 2: column dense_tops: "abc" is not a decimal number`);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});

describe('parseAcceleratorCsv', () => {
  const row = (cells: Partial<Record<string, string>> = {}) => {
    const defaults: Record<string, string> = {
      model: 'X1',
      vendor: 'V',
      dense_tops: '100',
      bit_length: '8',
      tpp: '800',
      logic_die_area_mm2: '400',
      performance_density: '2',
      dram_bandwidth_gb_s: '1000',
      memory_gb: '16',
      designed_for_datacenter: 'true',
      note: '',
      source: 'test',
    };
    return header
      .split(',')
      .map((name) => cells[name] ?? defaults[name])
      .join(',');
  };

  it('reads quoted fields with commas, quotes and line breaks, CRLF line ends and a BOM', () => {
    const text = `\uFEFF${header}\r\n${row({ model: '"H200, ""SXM"""', note: '"two\r\nlines"' })}\r\n\r\n${row({ model: 'X2' })}`;
    const products = parseAcceleratorCsv(text);
    expect(products.map((product) => [product.model, product.note, product.line])).toEqual([
      ['H200, "SXM"', 'two\nlines', 2],
      ['X2', '', 5], // the quoted line break moved it down one line, the blank line another
    ]);
  });

  it('reports the line of a malformed row', () => {
    const text = [header, row(), row({ designed_for_datacenter: 'yes' })].join('\n');
    expect(() => parseAcceleratorCsv(text)).toThrow("couldn't parse the accelerator catalogue: line 3: column designed_for_datacenter: expected true or false, got \"yes\"");
    expect(() => parseAcceleratorCsv(`${header}\n${row()},extra`)).toThrow('line 2: expected 12 fields, got 13');
    expect(() => parseAcceleratorCsv(`${header}\n${row({ model: '' })}`)).toThrow('line 2: column model is empty');
    expect(() => parseAcceleratorCsv(`${header}\n${row({ model: 'A\u0007' })}`)).toThrow('line 2: column model: control character U+0007 at position 1');
    expect(() => parseAcceleratorCsv(`${header}\n${row({ dense_tops: '-5' })}`)).toThrow('"-5" is not a decimal number');
    // Values that parse as numbers but classify nothing are refused at their line.
    expect(() => parseAcceleratorCsv(`${header}\n${row({ memory_gb: '9'.repeat(400) })}`)).toThrow('line 2: column memory_gb: 99999999999999999999… is too large');
    expect(() => parseAcceleratorCsv(`${header}\n${row({ logic_die_area_mm2: '0' })}`)).toThrow('line 2: column logic_die_area_mm2: must be at least 1 (logicDieAreaMm2Min), got 0');
    expect(() => parseAcceleratorCsv(`${header}\n${row({ bit_length: '08.0' })}`)).toThrow('line 2: column bit_length: "08.0" is not a bit length from 1 to 64');
    expect(() => parseAcceleratorCsv(`${header}\n${row()}\n"unclosed,${row()}`)).toThrow(
      "couldn't parse the accelerator catalogue: line 3: a quoted field is not closed before the end of the file",
    );
  });

  it('refuses DRAM bandwidth 0 and a die area below 1 mm² at their named bounds', () => {
    expect(() => parseAcceleratorCsv(`${header}\n${row({ dram_bandwidth_gb_s: '0' })}`)).toThrow('line 2: column dram_bandwidth_gb_s: must be at least 1 (dramBandwidthGbSMin), got 0');
    const denormal = `0.${'0'.repeat(323)}5`; // 5e-324 mm², the smallest double above 0
    expect(() => parseAcceleratorCsv(`${header}\n${row({ logic_die_area_mm2: denormal, performance_density: '1' })}`)).toThrow(
      `line 2: column logic_die_area_mm2: must be at least 1 (logicDieAreaMm2Min), got ${denormal}`,
    );
  });

  it('refuses a model listed twice, naming both lines', () => {
    const text = [header, row(), row({ model: 'X2' }), row()].join('\n');
    expect(() => parseAcceleratorCsv(text)).toThrow('couldn\'t parse the accelerator catalogue: line 4: model "X1" is already listed on line 2');
  });

  it("refuses a row whose published TPP or PD contradicts the row's own figures, within half a unit of the last digit", () => {
    expect(() => parseAcceleratorCsv(`${header}\n${row({ tpp: '9999' })}`)).toThrow(
      'line 2: column tpp: published 9999, but dense_tops × bit_length gives 800 (more than half a unit of the last published digit apart)',
    );
    expect(() => parseAcceleratorCsv(`${header}\n${row({ performance_density: '2.1' })}`)).toThrow(
      'line 2: column performance_density: published 2.1, but tpp / logic_die_area_mm2 gives 2 (more than half a unit of the last published digit apart)',
    );
    // 100.0625 × 8 = 800.5: 800 and 801 are both that rounded; 799 is not. PD 800.5 / 400 = 2.00125.
    const at = (tpp: string, performanceDensity: string) => `${header}\n${row({ dense_tops: '100.0625', tpp, performance_density: performanceDensity })}`;
    expect(parseAcceleratorCsv(at('800', '2'))[0]?.publishedTpp).toBe(800);
    expect(parseAcceleratorCsv(at('801', '2.001'))[0]?.publishedTpp).toBe(801);
    expect(() => parseAcceleratorCsv(at('799', '2'))).toThrow('line 2: column tpp: published 799, but dense_tops × bit_length gives 800.5');
    expect(() => parseAcceleratorCsv(at('800', '2.000'))).toThrow('line 2: column performance_density: published 2.000, but tpp / logic_die_area_mm2 gives 2.00125');
  });

  it('checks the header: missing, unknown and repeated columns', () => {
    expect(() => parseAcceleratorCsv('')).toThrow('line 1: the file is empty');
    expect(() => parseAcceleratorCsv(header.replace('tpp,', 'tpps,'))).toThrow('line 1: header columns: missing tpp; unknown tpps');
    expect(() => parseAcceleratorCsv(header.replace('vendor', 'model'))).toThrow('column "model" appears twice');
  });

  it('accepts the columns in any order', () => {
    const names = header.split(',').reverse();
    const values = row().split(',').reverse();
    expect(parseAcceleratorCsv(`${names.join(',')}\n${values.join(',')}`)[0]?.datasheet.denseTops).toBe(100);
  });
});
