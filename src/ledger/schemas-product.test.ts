/**
 * The product registration schema (ledger/schemas.ts) on datasheet figures. It lives here, beside
 * the classification whose thresholds the bound protects.
 */
import { describe, expect, it } from 'vitest';
import { productRegister } from './schemas.ts';
import { datasheetSignificantDigitsMax, significantDigits } from '../policy/datasheet.ts';

const parameters = { denseTops: 1979, bitLength: 8, logicDieAreaMm2: 814, dramBandwidthGbS: 4800, memoryGb: 141, designedForDatacenter: true };
const register = (overrides: Record<string, unknown>) => productRegister.safeParse({ model: 'X1', vendor: 'V', parameters: { ...parameters, ...overrides } });
const issues = (result: ReturnType<typeof register>) => (result.success ? [] : result.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message })));

describe('product.register: datasheet figures', () => {
  it('counts significant digits of the decimal a number is written as', () => {
    expect([1670.5, 8000, 0.0025, 665.61, 1e21, 2.5e-7, 199.99999999999997].map(significantDigits)).toEqual([5, 1, 2, 5, 1, 2, 17]);
  });

  it(`refuses a figure with more than ${datasheetSignificantDigitsMax} significant digits, naming the field, the value and the bound`, () => {
    // 1.4 PFLOPS over 7 chips: TPP 1,599.99999999999976 would fall below 3A090.a.2 on a float artefact.
    const message = (value: string, digits: number) =>
      `${value} has ${digits} significant digits, more than the 10 a datasheet figure is taken with (datasheetSignificantDigitsMax); give the figure as the datasheet writes it`;
    expect(issues(register({ denseTops: 199.99999999999997 }))).toEqual([{ path: 'parameters.denseTops', message: message('199.99999999999997', 17) }]);
    expect(issues(register({ logicDieAreaMm2: 250.00000000001, dramBandwidthGbS: 1000.0000000001, memoryGb: 80.000000000001 }))).toEqual([
      { path: 'parameters.logicDieAreaMm2', message: message('250.00000000001', 14) },
      { path: 'parameters.dramBandwidthGbS', message: message('1000.0000000001', 14) },
      { path: 'parameters.memoryGb', message: message('80.000000000001', 14) },
    ]);
    const rates = { denseTops: undefined, bitLength: undefined, denseRates: [{ precision: 'FP8', denseTops: 591.99999999999, bitLength: 8 }] };
    expect(issues(register(rates))).toEqual([{ path: 'parameters.denseRates.0.denseTops', message: message('591.99999999999', 14) }]);
  });

  it('takes figures as datasheets give them, up to the bound', () => {
    expect(register({ denseTops: 2614.9, logicDieAreaMm2: 1017, dramBandwidthGbS: 5300, memoryGb: 192 }).success).toBe(true); // MI300X, TPP 20,919.2
    expect(register({ denseTops: 1234567.891, logicDieAreaMm2: 665.61 }).success).toBe(true); // 10 significant digits
    expect(register({ denseTops: 1234567.8912 }).success).toBe(false);
  });

  it('refuses a precision label whose bit length contradicts the rate, in the spellings datasheets use', () => {
    const rate = (precision: string, bitLength: number) => register({ denseTops: undefined, bitLength: undefined, denseRates: [{ precision, denseTops: 312, bitLength }] });
    expect(issues(rate('bfloat16', 8))).toEqual([{ path: 'parameters.denseRates.0.bitLength', message: 'bit length must be 16 for precision "bfloat16", got 8' }]);
    expect(rate('FP16 (no sparsity)', 16).success).toBe(true);
    expect(issues(rate('FP16 with sparsity', 16))[0]?.path).toBe('parameters.denseRates.0.precision');
  });
});
