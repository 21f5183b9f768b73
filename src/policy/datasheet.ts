/**
 * An accelerator's datasheet as classification takes it: its shapes, the bounds on its figures,
 * and the checks that it is usable, listing every problem at once: each rate's precision label
 * read for its bit length and for sparsity (TPP counts dense rates only), each figure given
 * with no more digits than a datasheet writes, and the die area and DRAM bandwidth within
 * their bounds. classification.ts decides 3A090 from a datasheet that passes.
 */

import { limits } from '../core/limits.ts';

/** The widest arithmetic format a rate is given in (FP64): the datasheet check's bound, the product schema's and the catalogue's. */
export const bitLengthMax = 64;
/**
 * Smallest logic die area taken, in mm². No die that computes at these rates is smaller; a
 * figure below it is a unit slip (m² for mm²) or an unknown entered as a tiny number, and a
 * denormal area would make the density astronomically high (or Infinity once stored).
 */
export const logicDieAreaMm2Min = 1;
/**
 * Smallest total DRAM bandwidth taken, in GB/s. One DRAM channel gives more; 0 usually means
 * "not known", and would put the chip on the permissive side of the China policy (< 6,500 GB/s).
 */
export const dramBandwidthGbSMin = 1;

/**
 * Most significant digits a datasheet figure is taken with. Datasheets give three to five
 * ("1670.5 TFLOPS", "665.61 mm²"); a figure with more is the output of a float computation
 * (1.4 PFLOPS / 7 chips is 199.99999999999997 TOPS), whose last digits would decide a
 * threshold (TPP 1,599.99… against 1,600) on an artefact rather than on the datasheet.
 */
export const datasheetSignificantDigitsMax = 10;

/** Significant digits of the decimal a number is written as: 1670.5 → 5, 8000 → 1, 0.0025 → 2. */
export function significantDigits(value: number): number {
  const mantissa = String(Math.abs(value)).replace(/e.*$/, '').replace('.', '');
  return mantissa.replace(/^0+/, '').replace(/0+$/, '').length;
}

/** The refusal of a figure with more significant digits than a datasheet gives, or undefined. */
export function significantDigitsProblem(value: number): string | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value)) return undefined;
  const digits = significantDigits(value);
  if (digits <= datasheetSignificantDigitsMax) return undefined;
  return `${String(value)} has ${digits} significant digits, more than the ${datasheetSignificantDigitsMax} a datasheet figure is taken with (datasheetSignificantDigitsMax); give the figure as the datasheet writes it`;
}

/**
 * Precision labels whose name states the bit length of the operands, spelled as datasheets
 * spell them: FP16, fp16, FP 16, FP-16, bfloat16, BF16, float16, half16, TF32, INT8, INT-8,
 * UINT8, and the same inside a longer label ("Half (FP16)", "FP8 E4M3", "FP8E5M2"); case is
 * ignored. TPP takes "the bit length of the operation" (88 FR 73458, Technical Note 1 to
 * 3A090): for a labelled format that is the number in its name. TF32 counts as 32, the width
 * its operands are read at (not the 19 bits it keeps), as the code has always taken it; the
 * higher figure is the conservative one for control. The prefix must start a word, so the
 * "FP4" in "MXFP4" is not read (an MX format also carries a shared scale per block).
 */
const formatInLabel = /(?<![a-z0-9])(?:bfloat|float|half|uint|int|fp|bf|tf)[ _-]?(\d+)/gi;
/** Exponent and mantissa widths ("E4M3", "E5M2"), which qualify a format and are not a bit length. */
const exponentMantissaInLabel = /e\d+m\d+/gi;
/**
 * Sparsity said not to apply: "without sparsity", "no sparsity", "w/o sparsity", "excluding
 * sparsity", "not sparse", "non-sparse", "nonsparse", "sparsity off". NVIDIA's datasheets give
 * dense rates in these words, so they are taken; only what is left is checked for a marker.
 */
const negatedSparsity = /(?<![a-z])(?:without|excluding|excl\.?|w\/o|not|non|no)[ _-]*(?:sparse|sparsity)(?![a-z])|(?<![a-z])spars(?:e|ity)[ :=_-]*(?:off|disabled|none)(?![a-z])/gi;
/** A sparse rate: "sparse", "sparsity", "with sparsity", or the 2:4 structured-sparsity ratio. */
const sparsityMarker = /spars(?:e|ity)|(?<!\d)2\s*:\s*4(?!\d)/i;

/** What a precision label says about its bit length. */
type PrecisionLabel =
  | { kind: 'named'; bitLength: number }
  /** No number in it ("tensor", "Half precision"): the rate's bitLength is taken as given. */
  | { kind: 'free' }
  /** Formats naming different bit lengths ("FP16 with FP32 accumulate"). */
  | { kind: 'conflicting'; bitLengths: number[] }
  /** A number outside any format spelling ("8-bit", "MXFP4", "FP16x2"). */
  | { kind: 'unreadable'; numbers: string[] };

function readPrecisionLabel(precision: string): PrecisionLabel {
  const bitLengths = [...new Set(Array.from(precision.matchAll(formatInLabel), (match) => Number(match[1])))];
  // Every digit in the label must belong to a format it can read: a bit length it cannot read
  // would otherwise leave the label as free text, and the rate's bitLength unchecked.
  const rest = precision.replace(formatInLabel, ' ').replace(exponentMantissaInLabel, ' ');
  const numbers = rest.match(/\d+/g) ?? [];
  if (numbers.length > 0) return { kind: 'unreadable', numbers };
  if (bitLengths.length > 1) return { kind: 'conflicting', bitLengths };
  const [bitLength] = bitLengths;
  return bitLength === undefined ? { kind: 'free' } : { kind: 'named', bitLength };
}

/** The bit length a precision label names ("FP16" → 16), or undefined for a label that names none or several. */
export function precisionBitLength(precision: string): number | undefined {
  const label = readPrecisionLabel(precision);
  return label.kind === 'named' ? label.bitLength : undefined;
}

/** Whether a precision label describes a sparse rate; "FP8 without sparsity" is a dense one. */
function isSparseLabel(precision: string): boolean {
  return sparsityMarker.test(precision.replace(negatedSparsity, ' '));
}

/**
 * What is wrong with a rate's precision label against its bit length, naming the field to
 * fix: a label that names another bit length (FP16 given 8 bits halves the TPP, and can drop
 * the chip a paragraph), a label with a bit length this cannot read or with two of them, or a
 * sparse rate (TPP counts dense rates only).
 */
export function precisionProblem(rate: { precision?: string | undefined; bitLength: number }): { field: 'precision' | 'bitLength'; message: string } | undefined {
  if (typeof rate.precision !== 'string') return undefined;
  const quoted = JSON.stringify(rate.precision);
  if (isSparseLabel(rate.precision)) {
    return { field: 'precision', message: `precision ${quoted} is a sparse rate; TPP counts dense rates only, so give the dense rate` };
  }
  const label = readPrecisionLabel(rate.precision);
  switch (label.kind) {
    case 'unreadable':
      return {
        field: 'precision',
        message: `precision ${quoted} has a number (${label.numbers.join(', ')}) that is not in a format this reads; write the format as FP16, BF16, bfloat16, TF32, INT8 or the like, or leave the number out`,
      };
    case 'conflicting':
      return { field: 'precision', message: `precision ${quoted} names ${label.bitLengths.length} bit lengths (${label.bitLengths.join(', ')}); give the format of the operands alone, e.g. "FP${label.bitLengths[0]}"` };
    case 'named':
      if (label.bitLength === rate.bitLength) return undefined;
      return { field: 'bitLength', message: `bit length must be ${label.bitLength} for precision ${quoted}, got ${String(rate.bitLength)}` };
    case 'free':
      return undefined;
  }
}

export interface DenseRate {
  /** For the reasons only, e.g. "FP8" or "INT8". */
  precision?: string;
  /** Dense (not sparse) tera-operations per second at this precision, as the datasheet gives it. */
  denseTops: number;
  bitLength: number;
}

interface DatasheetCommon {
  /** For error messages only. */
  model?: string;
  logicDieAreaMm2: number;
  dramBandwidthGbS: number;
  designedForDatacenter: boolean;
}

/** Datasheet with one dense rate per precision; TPP is the highest over them. */
export interface MultiRateDatasheet extends DatasheetCommon {
  denseRates: readonly DenseRate[];
}

/** Datasheet with the single rate that gives the highest TPP (as in data/accelerators.csv). */
export interface SingleRateDatasheet extends DatasheetCommon {
  denseTops: number;
  bitLength: number;
}

export type AcceleratorDatasheet = MultiRateDatasheet | SingleRateDatasheet;

export function datasheetRates(datasheet: AcceleratorDatasheet): readonly DenseRate[] {
  if ('denseRates' in datasheet) return datasheet.denseRates;
  return [{ denseTops: datasheet.denseTops, bitLength: datasheet.bitLength }];
}

export function datasheetProblems(datasheet: AcceleratorDatasheet, rates: readonly DenseRate[]): string[] {
  const problems: string[] = [];
  if (rates.length === 0) problems.push('at least one dense rate is needed');
  if (rates.length > limits.denseRatesMax) problems.push(`at most ${limits.denseRatesMax} dense rates, got ${rates.length}`);
  rates.slice(0, limits.denseRatesMax).forEach((rate, index) => {
    const label = rates.length === 1 ? '' : ` of rate ${index + 1}${rate.precision === undefined ? '' : ` (${rate.precision})`}`;
    if (!isPositiveFinite(rate.denseTops)) problems.push(`dense TOPS${label} must be a positive number, got ${String(rate.denseTops)}`);
    if (!Number.isInteger(rate.bitLength) || rate.bitLength < 1 || rate.bitLength > bitLengthMax) {
      problems.push(`bit length${label} must be a whole number from 1 to ${bitLengthMax}, got ${String(rate.bitLength)}`);
    } else if (isPositiveFinite(rate.denseTops) && !Number.isFinite(rate.denseTops * rate.bitLength)) {
      problems.push(`dense TOPS${label} × bit length is beyond the range of a number, got ${String(rate.denseTops)} × ${rate.bitLength}`);
    }
    const precision = precisionProblem(rate);
    if (precision !== undefined) problems.push(`${precision.message}${label === '' ? '' : ` (rate ${index + 1})`}`);
  });
  if (!atLeastFinite(datasheet.logicDieAreaMm2, logicDieAreaMm2Min)) {
    problems.push(`logic die area must be a number of mm², at least ${logicDieAreaMm2Min} (logicDieAreaMm2Min), got ${String(datasheet.logicDieAreaMm2)}`);
  }
  if (!atLeastFinite(datasheet.dramBandwidthGbS, dramBandwidthGbSMin)) {
    problems.push(`DRAM bandwidth must be a number of GB/s, at least ${dramBandwidthGbSMin} (dramBandwidthGbSMin), got ${String(datasheet.dramBandwidthGbS)}`);
  }
  if (typeof datasheet.designedForDatacenter !== 'boolean') problems.push('designedForDatacenter must be true or false');
  return problems;
}

function isPositiveFinite(value: number): boolean {
  return typeof value === 'number' && Number.isFinite(value) && value > 0;
}

function atLeastFinite(value: number, min: number): boolean {
  return typeof value === 'number' && Number.isFinite(value) && value >= min;
}
