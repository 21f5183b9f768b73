import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isDomainError } from '../core/errors.ts';
import { type AcceleratorDatasheet, type Eccn, classifyAccelerator } from './classification.ts';

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
        'couldn\'t classify "X1": dense TOPS must be a positive number, got 0; bit length must be a whole number from 1 to 256, got 8.5; ' +
        'logic die area must be a positive number of mm², got -1; DRAM bandwidth must be a number of GB/s, zero or more, got NaN',
    });
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
  const area = fc.integer({ min: 1, max: 300_000 }).map((hundredths) => hundredths / 100);

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
