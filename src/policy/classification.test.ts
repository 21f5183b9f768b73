import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isDomainError } from '../core/errors.ts';
import { type Eccn, agreesWithPublished, classifyAccelerator } from './classification.ts';
import { type AcceleratorDatasheet, precisionBitLength } from './datasheet.ts';

/** A data-centre chip with one rate; area 1000 mm² makes PD = TPP / 1000 easy to read. */
function chip(denseTops: number, bitLength: number, logicDieAreaMm2: number, extra: Partial<AcceleratorDatasheet> = {}): AcceleratorDatasheet {
  return { denseTops, bitLength, logicDieAreaMm2, dramBandwidthGbS: 3000, designedForDatacenter: true, ...extra } as AcceleratorDatasheet;
}

describe('classifyAccelerator: 3A090 paragraphs (88 FR 73458)', () => {
  it('H200 SXM: TPP 15,832 ≥ 4,800 is 3A090.a.1, and case-by-case for China', () => {
    const result = classifyAccelerator({ model: 'H200 SXM', denseTops: 1979, bitLength: 8, logicDieAreaMm2: 814, dramBandwidthGbS: 4800, designedForDatacenter: true });
    expect(result).toMatchObject({ eccn: '3A090.a', paragraph: '3A090.a.1', tpp: 15832 });
    expect(result.performanceDensity).toBeCloseTo(19.4496, 4);
    expect(result.reasons).toEqual([
      'TPP 15,832 = 1,979 dense TOPS × bit length 8',
      'performance density = TPP 15,832 / logic die area 814 mm² ≈ 19.45',
      'TPP 15,832 ≥ 4,800: 3A090.a.1',
    ]);
    expect(result.chinaPolicy).toEqual({
      review: 'case-by-case',
      caseByCase: true,
      reason: 'TPP 15,832 < 21,000 and DRAM bandwidth 4,800 GB/s < 6,500 GB/s: case-by-case review (91 FR 1684)',
    });
  });

  it('H20: TPP 2,368 and PD 2.91 fall below every paragraph, and each reason says which number failed', () => {
    const result = classifyAccelerator({ denseTops: 296, bitLength: 8, logicDieAreaMm2: 814, dramBandwidthGbS: 4000, designedForDatacenter: true });
    expect(result.eccn).toBe('not 3A090');
    expect(result.paragraph).toBe('below 3A090 thresholds');
    expect(result.reasons.slice(2)).toEqual([
      '3A090.a.1: TPP 2,368 < 4,800',
      '3A090.a.2: performance density 2.91 < 5.92',
      '3A090.b.1: TPP 2,368 < 2,400',
      '3A090.b.2: performance density 2.91 < 3.2',
      'not 3A090: below the thresholds of every paragraph',
    ]);
    expect(result.chinaPolicy).toMatchObject({ review: 'not applicable', caseByCase: false });
  });

  it('takes the highest TPP over precisions, dense', () => {
    const result = classifyAccelerator({
      model: 'A100',
      denseRates: [
        { precision: 'FP64', denseTops: 19.5, bitLength: 64 },
        { precision: 'TF32', denseTops: 156, bitLength: 32 },
        { precision: 'FP16', denseTops: 312, bitLength: 16 },
        { precision: 'INT8', denseTops: 624, bitLength: 8 },
        { precision: 'INT4', denseTops: 1248, bitLength: 4 },
      ],
      logicDieAreaMm2: 826,
      dramBandwidthGbS: 2039,
      designedForDatacenter: true,
    });
    expect(result.tpp).toBe(4992);
    expect(result.tppRate.precision).toBe('TF32'); // 156 × 32 = 4992 ties FP16/INT8/INT4; the first is kept
    expect(result.reasons[0]).toBe('TPP 4,992 = 156 dense TOPS (TF32) × bit length 32, the highest of 5 precisions');
    expect(result.eccn).toBe('3A090.a');
  });

  it('meets each threshold at exactly its value (≥) and misses it just below (<)', () => {
    const cases: Array<[AcceleratorDatasheet, Eccn, string]> = [
      [chip(600, 8, 10_000), '3A090.a', '3A090.a.1'], // TPP 4800 exactly
      [chip(599.99, 8, 10_000), 'not 3A090', 'below 3A090 thresholds'], // TPP 4799.92, PD 0.48
      [chip(200, 8, 270.27), '3A090.a', '3A090.a.2'], // TPP 1600, PD 5.92000592…
      [chip(370, 8, 500), '3A090.a', '3A090.a.2'], // TPP 2960, PD 5.92 exactly
      [chip(369.99, 8, 500), '3A090.b', '3A090.b.1'], // PD 5.91984 < 5.92
      [chip(300, 8, 1500), '3A090.b', '3A090.b.1'], // TPP 2400 exactly, PD 1.6 exactly
      [chip(300, 8, 1500.01), 'not 3A090', 'below 3A090 thresholds'], // PD just under 1.6, below 3.2
      [chip(299.99, 8, 1000), 'not 3A090', 'below 3A090 thresholds'], // TPP 2399.92 < 2400, PD 2.4 < 3.2
      [chip(200, 8, 500), '3A090.b', '3A090.b.2'], // TPP 1600 exactly, PD 3.2 exactly
      [chip(199.99, 8, 100), 'not 3A090', 'below 3A090 thresholds'], // TPP 1599.92 < 1600 even with PD 16
    ];
    for (const [datasheet, eccn, paragraph] of cases) {
      expect(classifyAccelerator(datasheet), JSON.stringify(datasheet)).toMatchObject({ eccn, paragraph });
    }
  });

  it('compares exactly where binary floating point would round the wrong way', () => {
    // 102.8 × 16 = 1644.8 exactly and 1644.8 / 514 = 3.2 exactly, but in doubles it is 3.1999999999999997.
    expect((102.8 * 16) / 514).toBeLessThan(3.2);
    const result = classifyAccelerator(chip(102.8, 16, 514));
    expect(result).toMatchObject({ eccn: '3A090.b', paragraph: '3A090.b.2' });
    expect(result.reasons).toContain('TPP 1,644.8 ≥ 1,600 and performance density 3.2 ≥ 3.2 and < 5.92: 3A090.b.2');
  });

  it('shows enough digits that a number just below a threshold does not look equal to it', () => {
    const result = classifyAccelerator(chip(369.99, 8, 500)); // PD 5.91984
    expect(result.reasons).toContain('TPP 2,959.92 ≥ 2,400 and < 4,800, performance density 5.9198 ≥ 1.6 and < 5.92: 3A090.b.1');
  });

  it('stores and shows a figure just below a threshold below it, never at it', () => {
    // 1.4 PFLOPS over 7 chips is 199.99999999999997 TOPS: TPP 1,599.99999999999976, below 1,600.
    const justBelowA2 = classifyAccelerator(chip(199.99999999999997, 8, 250));
    expect(justBelowA2).toMatchObject({ eccn: 'not 3A090', paragraph: 'below 3A090 thresholds', tpp: 1599.9999999999998 });
    expect(justBelowA2.tpp).toBeLessThan(1600);
    expect(justBelowA2.reasons).toContain('3A090.a.2: TPP 1,599.9999999999998 < 1,600');
    // Every reason shows the same figure, on its side of every TPP threshold.
    expect(justBelowA2.reasons).toContain('3A090.b.1: TPP 1,599.9999999999998 < 2,400');
    expect(justBelowA2.reasons.join('\n')).not.toMatch(/TPP 1,600\b/);

    const justBelowB1 = classifyAccelerator(chip(299.99999999999994, 8, 1000));
    expect(justBelowB1.tpp).toBeLessThan(2400);
    expect(justBelowB1.reasons).toContain('3A090.b.1: TPP 2,399.9999999999995 < 2,400');

    const densityJustBelow = classifyAccelerator(chip(591.99999999999, 8, 800)); // PD 5.9199999999999
    expect(densityJustBelow).toMatchObject({ paragraph: '3A090.b.1', performanceDensity: 5.9199999999999 });
    expect(densityJustBelow.reasons.at(-1)).toBe('TPP 4,736 ≥ 2,400 and < 4,800, performance density 5.9199999999999 ≥ 1.6 and < 5.92: 3A090.b.1');

    // 1,600 / 270.2702702702703 is 5.92 − 6.5e-17: the double nearest it is 5.92 itself, so the one
    // below is stored, and the figure still reads below the threshold that decided .b.2, not .a.2.
    const nearestIsThreshold = classifyAccelerator(chip(200, 8, 270.2702702702703));
    expect(nearestIsThreshold.paragraph).toBe('3A090.b.2');
    expect(nearestIsThreshold.performanceDensity).toBe(5.919999999999999);
    expect(nearestIsThreshold.performanceDensity).toBeLessThan(5.92);
    expect(nearestIsThreshold.reasons.at(-1)).toMatch(/^TPP 1,600 ≥ 1,600 and performance density 5\.91999+\d* ≥ 3\.2 and < 5\.92: 3A090\.b\.2$/);
  });

  it('stores the double nearest the exact TPP and density', () => {
    // Whole numbers are exact doubles, and a double division of two of them is correctly rounded.
    const whole = fc.integer({ min: 1, max: 2_000_000 });
    fc.assert(
      fc.property(whole, fc.constantFrom(4, 8, 16), fc.integer({ min: 1, max: 100_000 }), (denseTops, bitLength, area) => {
        const result = classifyAccelerator(chip(denseTops, bitLength, area));
        expect(result.tpp).toBe(denseTops * bitLength);
        expect(result.performanceDensity).toBe((denseTops * bitLength) / area);
      }),
      { seed: 2026, numRuns: 1_000 },
    );
    expect(classifyAccelerator(chip(1670.5, 8, 814)).performanceDensity).toBe(13_364 / 814); // not 16.41769041769
    expect(classifyAccelerator(chip(0.0001234567891, 8, 1)).tpp).toBe(0.0009876543128); // 13 decimals
  });

  it('writes "=" for a density only where the two decimals shown are all of it', () => {
    // 4,735.2 / 800 = 5.919 exactly: a terminating decimal, but not 5.92.
    expect(classifyAccelerator(chip(591.9, 8, 800)).reasons[1]).toBe('performance density = TPP 4,735.2 / logic die area 800 mm² ≈ 5.92');
    expect(classifyAccelerator(chip(400, 8, 1000)).reasons[1]).toBe('performance density = TPP 3,200 / logic die area 1,000 mm² = 3.2');
  });

  it('Note 2: not designed for data centres and TPP < 4,800 is outside 3A090, even at a high PD', () => {
    const gaming = classifyAccelerator(chip(400, 8, 300, { designedForDatacenter: false })); // TPP 3200, PD 10.67
    expect(gaming).toMatchObject({ eccn: 'not 3A090', paragraph: 'Note 2 to 3A090' });
    expect(gaming.reasons[2]).toBe('not designed or marketed for data centres and TPP 3,200 < 4,800: outside 3A090 (Note 2 to 3A090)');
    // At TPP ≥ 4,800 the note no longer helps (an RTX 4090-class part is 3A090.a.1).
    expect(classifyAccelerator(chip(660.6, 8, 609, { designedForDatacenter: false }))).toMatchObject({ eccn: '3A090.a', paragraph: '3A090.a.1' });
  });

  it('Note 2 ends at exactly TPP 4,800: a part not for data centres at 4,800 is 3A090.a.1, and the reasons say why the note does not apply', () => {
    const atBoundary = classifyAccelerator(chip(600, 8, 10_000, { designedForDatacenter: false })); // TPP 4800 exactly, PD 0.48
    expect(atBoundary).toMatchObject({ eccn: '3A090.a', paragraph: '3A090.a.1' });
    expect(atBoundary.reasons.slice(2)).toEqual([
      'not designed or marketed for data centres, but TPP 4,800 ≥ 4,800: Note 2 to 3A090 does not apply',
      'TPP 4,800 ≥ 4,800: 3A090.a.1',
    ]);
    expect(classifyAccelerator(chip(599.99, 8, 10_000, { designedForDatacenter: false }))).toMatchObject({ eccn: 'not 3A090', paragraph: 'Note 2 to 3A090' });
  });

  it('states for .a.2, .b.1 and .b.2 that the part is designed for data centres, which is what keeps Note 2 out', () => {
    const note2 = 'designed or marketed for data centres: Note 2 to 3A090 does not apply';
    for (const [datasheet, paragraph] of [[chip(370, 8, 500), '3A090.a.2'], [chip(300, 8, 1500), '3A090.b.1'], [chip(200, 8, 500), '3A090.b.2']] as const) {
      const result = classifyAccelerator(datasheet);
      expect(result.paragraph).toBe(paragraph);
      expect(result.reasons.slice(2)).toEqual([note2, expect.stringMatching(new RegExp(`: ${paragraph.replaceAll('.', '\\.')}$`))]);
    }
    // Neither where the data-centre flag decides nothing: .a.1 of a data-centre part, or below every threshold.
    expect(classifyAccelerator(chip(600, 8, 10_000)).reasons).not.toContain(note2);
    expect(classifyAccelerator(chip(100, 8, 1000)).reasons).not.toContain(note2);
  });
});

describe('classifyAccelerator: China licence policy of January 2026 (91 FR 1684)', () => {
  it('is case-by-case only below both TPP 21,000 and DRAM bandwidth 6,500 GB/s', () => {
    const policy = (denseTops: number, dramBandwidthGbS: number) => classifyAccelerator(chip(denseTops, 8, 800, { dramBandwidthGbS })).chinaPolicy;
    expect(policy(2624.99, 6499.99)).toMatchObject({ review: 'case-by-case', caseByCase: true });
    expect(policy(2625, 6000)).toEqual({
      review: 'presumption of denial',
      caseByCase: false,
      reason: 'TPP 21,000 ≥ 21,000: presumption of denial (91 FR 1684)',
    });
    expect(policy(2000, 6500)).toEqual({
      review: 'presumption of denial',
      caseByCase: false,
      reason: 'DRAM bandwidth 6,500 GB/s ≥ 6,500 GB/s: presumption of denial (91 FR 1684)',
    });
    expect(policy(4500, 8000).reason).toBe('TPP 36,000 ≥ 21,000 and DRAM bandwidth 8,000 GB/s ≥ 6,500 GB/s: presumption of denial (91 FR 1684)');
  });
});

describe('classifyAccelerator: input checks', () => {
  it('lists every bad field at once, naming the model', () => {
    let caught: unknown;
    try {
      classifyAccelerator({ model: 'X1', denseTops: 0, bitLength: 8.5, logicDieAreaMm2: -1, dramBandwidthGbS: Number.NaN, designedForDatacenter: true });
    } catch (error) {
      caught = error;
    }
    expect(isDomainError(caught)).toBe(true);
    expect(caught).toMatchObject({
      code: 'invalid_input',
      message:
        'couldn\'t classify "X1": dense TOPS must be a positive number, got 0; bit length must be a whole number from 1 to 64, got 8.5; ' +
        'logic die area must be a number of mm², at least 1 (logicDieAreaMm2Min), got -1; DRAM bandwidth must be a number of GB/s, at least 1 (dramBandwidthGbSMin), got NaN',
    });
  });

  it('refuses a precision label that names another bit length, and a sparse rate, naming the rate', () => {
    const base = { model: 'X2', logicDieAreaMm2: 600, dramBandwidthGbS: 3000, designedForDatacenter: true };
    // FP16 at 8 bits would give TPP 2,400 (3A090.b.1) where the real 16 bits give 4,800 (3A090.a.1).
    expect(() => classifyAccelerator({ ...base, denseRates: [{ precision: 'FP16', denseTops: 300, bitLength: 8 }] })).toThrow(
      'couldn\'t classify "X2": bit length must be 16 for precision "FP16", got 8',
    );
    expect(() => classifyAccelerator({ ...base, denseRates: [{ precision: 'FP8', denseTops: 600, bitLength: 8 }, { precision: 'bf16', denseTops: 300, bitLength: 8 }] })).toThrow(
      'bit length must be 16 for precision "bf16", got 8 (rate 2)',
    );
    expect(() => classifyAccelerator({ ...base, denseRates: [{ precision: 'TF32', denseTops: 150, bitLength: 19 }] })).toThrow('bit length must be 32 for precision "TF32", got 19');
    expect(() => classifyAccelerator({ ...base, denseRates: [{ precision: 'FP8 sparse', denseTops: 1200, bitLength: 8 }] })).toThrow(
      'precision "FP8 sparse" is a sparse rate; TPP counts dense rates only, so give the dense rate',
    );
    // The labels' own bit lengths, and free labels, are taken.
    const labels: Array<[string, number]> = [['FP64', 64], ['FP32', 32], ['TF32', 32], ['BF16', 16], ['FP16', 16], ['FP8 E4M3', 8], ['FP8E5M2', 8], ['INT8', 8], ['FP6', 6], ['FP4', 4], ['INT4', 4], ['UINT8', 8]];
    for (const [precision, bitLength] of labels) {
      expect(precisionBitLength(precision), precision).toBe(bitLength);
      expect(classifyAccelerator({ ...base, denseRates: [{ precision, denseTops: 10, bitLength }] }).tppRate.precision).toBe(precision);
    }
    expect(precisionBitLength('MXFP4')).toBeUndefined();
    expect(() => classifyAccelerator({ ...base, denseRates: [{ precision: 'INT8 with sparsity', denseTops: 1200, bitLength: 8 }] })).toThrow(/is a sparse rate/);
    for (const precision of ['FP8 non-sparse', 'FP8 (non sparse)']) {
      expect(classifyAccelerator({ ...base, denseRates: [{ precision, denseTops: 10, bitLength: 8 }] }).tppRate.precision, precision).toBe(precision);
    }
    expect(classifyAccelerator({ ...base, denseRates: [{ precision: 'tensor', denseTops: 600, bitLength: 8 }] }).tpp).toBe(4800);
  });

  it('reads the bit length in the spellings datasheets use, and refuses a label that contradicts it', () => {
    const base = { model: 'A100', logicDieAreaMm2: 826, dramBandwidthGbS: 2039, designedForDatacenter: true };
    const spellings: Array<[string, number]> = [
      ['bfloat16', 16], ['BFLOAT16 Tensor Core', 16], ['float16', 16], ['Float32', 32], ['half16', 16], ['FP 16', 16], ['FP-16', 16], ['fp_16', 16],
      ['INT-8', 8], ['int 4', 4], ['uint8', 8], ['TF 32', 32], ['Half (FP16)', 16], ['FP16 Tensor Core', 16], ['dense FP16', 16], ['FP8 (E4M3)', 8],
    ];
    for (const [precision, bitLength] of spellings) {
      expect(precisionBitLength(precision), precision).toBe(bitLength);
      expect(classifyAccelerator({ ...base, denseRates: [{ precision, denseTops: 10, bitLength }] }).tppRate.precision, precision).toBe(precision);
    }
    // bfloat16 at 8 bits would give the A100 TPP 2,496 (3A090.b.1) where its 16 bits give 4,992 (3A090.a.1).
    expect(() => classifyAccelerator({ ...base, denseRates: [{ precision: 'bfloat16', denseTops: 312, bitLength: 8 }] })).toThrow('bit length must be 16 for precision "bfloat16", got 8');
    expect(() => classifyAccelerator({ ...base, denseRates: [{ precision: 'Half (FP16)', denseTops: 312, bitLength: 8 }] })).toThrow('bit length must be 16 for precision "Half (FP16)", got 8');
    // A number the label does not spell as a format is refused, not taken as free text.
    for (const precision of ['8-bit integer', 'MXFP4', 'FP16x2', 'tensor (16)']) {
      expect(precisionBitLength(precision), precision).toBeUndefined();
      expect(() => classifyAccelerator({ ...base, denseRates: [{ precision, denseTops: 10, bitLength: 8 }] }), precision).toThrow(`precision ${JSON.stringify(precision)} has a number (`);
    }
    expect(() => classifyAccelerator({ ...base, denseRates: [{ precision: 'FP16 with FP32 accumulate', denseTops: 312, bitLength: 16 }] })).toThrow(
      'precision "FP16 with FP32 accumulate" names 2 bit lengths (16, 32); give the format of the operands alone, e.g. "FP16"',
    );
    // Labels with no number stay free text, the bit length taken as given.
    expect(classifyAccelerator({ ...base, denseRates: [{ precision: 'Half precision', denseTops: 312, bitLength: 16 }] }).tpp).toBe(4992);
  });

  it("takes NVIDIA's wording for a dense rate, and refuses only a sparse one", () => {
    const base = { logicDieAreaMm2: 814, dramBandwidthGbS: 3350, designedForDatacenter: true };
    const dense: Array<[string, number]> = [
      ['FP8 without sparsity', 8], ['FP16 (no sparsity)', 16], ['dense FP16, sparsity off', 16], ['FP8 w/o sparsity', 8], ['INT8 excluding sparsity', 8],
      ['FP16 not sparse', 16], ['FP16 nonsparse', 16], ['FP16 no-sparsity', 16], ['FP8, sparsity: disabled', 8],
    ];
    for (const [precision, bitLength] of dense) {
      expect(classifyAccelerator({ ...base, denseRates: [{ precision, denseTops: 1979, bitLength }] }).tppRate.precision, precision).toBe(precision);
    }
    for (const precision of ['FP8 sparse', 'FP8 with sparsity', 'FP8 (2:4 structured)', 'FP8 2 : 4', 'sparsity on', 'FP8, no sparsity; INT8 sparse']) {
      expect(() => classifyAccelerator({ ...base, denseRates: [{ precision, denseTops: 3958, bitLength: 8 }] }), precision).toThrow(`precision ${JSON.stringify(precision)} is a sparse rate`);
    }
  });

  it('refuses DRAM bandwidth 0 and a die area below 1 mm² (a denormal one too) at their named bounds', () => {
    expect(() => classifyAccelerator(chip(1979, 8, 814, { dramBandwidthGbS: 0 }))).toThrow('DRAM bandwidth must be a number of GB/s, at least 1 (dramBandwidthGbSMin), got 0');
    expect(() => classifyAccelerator(chip(1979, 8, 5e-324))).toThrow('logic die area must be a number of mm², at least 1 (logicDieAreaMm2Min), got 5e-324');
    expect(() => classifyAccelerator(chip(1979, 8, 0.999))).toThrow('logic die area must be a number of mm², at least 1 (logicDieAreaMm2Min), got 0.999');
    // At the bounds themselves: taken, and the area is shown as what it is.
    const smallest = classifyAccelerator(chip(1979, 8, 1, { dramBandwidthGbS: 1 }));
    expect(smallest.reasons[1]).toBe('performance density = TPP 15,832 / logic die area 1 mm² = 15,832');
    expect(smallest.performanceDensity).toBe(15_832);
  });

  it('refuses a rate whose TPP is beyond the range of a number, instead of returning Infinity', () => {
    expect(() => classifyAccelerator(chip(1e308, 64, 800))).toThrow('dense TOPS × bit length is beyond the range of a number, got 1e+308 × 64');
  });

  it('refuses an empty or oversized list of rates', () => {
    const base = { logicDieAreaMm2: 800, dramBandwidthGbS: 3000, designedForDatacenter: true };
    expect(() => classifyAccelerator({ ...base, denseRates: [] })).toThrow(/at least one dense rate/);
    const many = Array.from({ length: 17 }, () => ({ denseTops: 1, bitLength: 8 }));
    expect(() => classifyAccelerator({ ...base, denseRates: many })).toThrow(/at most 16 dense rates, got 17/);
  });

  it('handles very small and very large numbers exactly', () => {
    expect(classifyAccelerator(chip(1e-7, 8, 1e21)).eccn).toBe('not 3A090');
    expect(classifyAccelerator(chip(1e21, 8, 1e21)).tpp).toBe(8e21);
  });
});

describe('classifyAccelerator: monotone in the numbers (property)', () => {
  const level: Record<Eccn, number> = { 'not 3A090': 0, '3A090.b': 1, '3A090.a': 2 };
  const tops = fc.integer({ min: 1, max: 600_000 }).map((tenths) => tenths / 100);
  const area = fc.integer({ min: 100, max: 300_000 }).map((hundredths) => hundredths / 100); // from logicDieAreaMm2Min

  it('more TOPS on the same die never lowers the control level', () => {
    fc.assert(
      fc.property(tops, tops, area, fc.constantFrom(4, 8, 16), fc.boolean(), (first, second, dieArea, bits, datacenter) => {
        const [low, high] = first <= second ? [first, second] : [second, first];
        const classify = (denseTops: number) => classifyAccelerator(chip(denseTops, bits, dieArea, { designedForDatacenter: datacenter })).eccn;
        expect(level[classify(high)]).toBeGreaterThanOrEqual(level[classify(low)]);
      }),
      { seed: 73458, numRuns: 3_000 },
    );
  });

  it('the same TPP on a smaller die never lowers the control level', () => {
    fc.assert(
      fc.property(tops, area, area, fc.boolean(), (denseTops, first, second, datacenter) => {
        const [small, large] = first <= second ? [first, second] : [second, first];
        const classify = (dieArea: number) => classifyAccelerator(chip(denseTops, 8, dieArea, { designedForDatacenter: datacenter })).eccn;
        expect(level[classify(small)]).toBeGreaterThanOrEqual(level[classify(large)]);
      }),
      { seed: 1684, numRuns: 3_000 },
    );
  });
});

describe('agreesWithPublished', () => {
  it('takes a figure within half a unit of the last published digit, compared exactly', () => {
    expect(agreesWithPublished(20_919.2, '20919')).toBe(true);
    expect(agreesWithPublished(800.5, '800')).toBe(true); // exactly half a unit: either rounding is taken
    expect(agreesWithPublished(800.5, '801')).toBe(true);
    expect(agreesWithPublished(800.5000001, '800')).toBe(false);
    expect(agreesWithPublished(2.905, '2.91')).toBe(true); // 2.905 - 2.9 is 0.00500000000000034 in doubles
    expect(agreesWithPublished(2.905, '2.9')).toBe(true);
    expect(agreesWithPublished(2.9051, '2.9')).toBe(true);
    expect(agreesWithPublished(2.9051, '2.90')).toBe(false);
  });
});
