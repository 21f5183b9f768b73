/**
 * Export classification of an AI accelerator under ECCN 3A090, from its datasheet.
 *
 * Source: BIS interim final rule "Implementation of Additional Export Controls: Certain Advanced
 * Computing Items; Supercomputer and Semiconductor End Use", 88 FR 73458 (25 October 2023), which
 * rewrote 3A090 in terms of two numbers:
 *
 *   TPP (total processing performance) = 2 × MacTOPS × bit length of the operation, taking the
 *     highest value over the precisions the chip supports, dense (no sparsity). A datasheet's
 *     "dense TOPS" already counts a multiply-accumulate as two operations, so TPP = dense TOPS ×
 *     bit length.
 *   PD (performance density) = TPP / applicable die area in mm² (logic dies only, not memory).
 *
 * And the January 2026 licence review policy for China (91 FR 1684): applications are reviewed
 * case by case when TPP < 21,000 and total DRAM bandwidth < 6,500 GB/s; otherwise a presumption
 * of denial applies.
 *
 * Every comparison is exact. Datasheet numbers are decimals ("1670.5 TFLOPS"); we take each as
 * the decimal it is written as and compare rationals by cross-multiplying bigints, so a chip at
 * exactly PD 3.2 is never pushed below the threshold by binary floating point (102.8 × 16 / 514
 * is 3.1999999999999997 in doubles, exactly 3.2 in fact). Nothing is rounded before comparing;
 * rounding happens only when a number is shown or returned, and never across a threshold: a
 * TPP just below 1,600 is shown "1,599.9999999999998 < 1,600" and returned as that double.
 *
 * The datasheet's shapes, bounds and checks (precision labels, figures) are in datasheet.ts.
 */
import { DomainError, assert } from '../core/errors.ts';
import { type AcceleratorDatasheet, type DenseRate, datasheetProblems, datasheetRates } from './datasheet.ts';
import { adjacentDouble, compare, divide, exactDecimal, formatDecisive, formatExact, formatRounded, formatThreshold, multiply, nearestDouble, roundTo, subtract, type Rational } from './rational.ts';

/* 3A090 thresholds, 88 FR 73458 (Oct. 25, 2023), Supplement No. 1 to part 774, ECCN 3A090. */

/** 3A090.a.1: TPP of 4800 or more. */
export const tppA1Min = 4800;
/** 3A090.a.2: TPP of 1600 or more and PD of 5.92 or more. */
export const tppA2Min = 1600;
export const performanceDensityA2Min = 5.92;
/** 3A090.b.1: TPP of 2400 or more and less than 4800, and PD of 1.6 or more and less than 5.92. */
export const tppB1Min = 2400;
export const tppB1Below = 4800;
export const performanceDensityB1Min = 1.6;
export const performanceDensityB1Below = 5.92;
/** 3A090.b.2: TPP of 1600 or more and PD of 3.2 or more and less than 5.92. */
export const tppB2Min = 1600;
export const performanceDensityB2Min = 3.2;
export const performanceDensityB2Below = 5.92;
/** Note 2 to 3A090: items not designed or marketed for data centres with TPP below 4800 are outside 3A090. */
export const tppNonDatacenterBelow = 4800;

/* January 2026 licence review policy for China, 91 FR 1684. */

/** Case-by-case review only below both of these; at or above either, presumption of denial. */
export const chinaCaseByCaseTppBelow = 21_000;
export const chinaCaseByCaseDramBandwidthBelowGbS = 6_500;

/** Every threshold TPP is compared with; a stored TPP reads on the same side of each as the exact one. */
const tppThresholds = [tppA1Min, tppA2Min, tppB1Min, tppB1Below, tppB2Min, tppNonDatacenterBelow, chinaCaseByCaseTppBelow];
/** Every threshold performance density is compared with. */
const performanceDensityThresholds = [performanceDensityA2Min, performanceDensityB1Min, performanceDensityB1Below, performanceDensityB2Min, performanceDensityB2Below];

export type Eccn = '3A090.a' | '3A090.b' | 'not 3A090';
export type Paragraph = '3A090.a.1' | '3A090.a.2' | '3A090.b.1' | '3A090.b.2' | 'Note 2 to 3A090' | 'below 3A090 thresholds';

export interface ChinaLicencePolicy {
  review: 'case-by-case' | 'presumption of denial' | 'not applicable';
  caseByCase: boolean;
  reason: string;
}

export interface Classification {
  eccn: Eccn;
  /** The paragraph that decided it; for items outside 3A090, why they are outside. */
  paragraph: Paragraph;
  tpp: number;
  performanceDensity: number;
  /** The rate that gave the highest TPP. */
  tppRate: DenseRate;
  /** The numbers and thresholds behind the decision, one statement each. */
  reasons: string[];
  chinaPolicy: ChinaLicencePolicy;
}

/**
 * Classifies a datasheet. Throws DomainError('invalid_input') listing every bad field when the
 * datasheet is not usable (a rate of zero, a negative area, ...).
 */
export function classifyAccelerator(datasheet: AcceleratorDatasheet): Classification {
  const rates = datasheetRates(datasheet);
  const problems = datasheetProblems(datasheet, rates);
  if (problems.length > 0) {
    const subject = datasheet.model === undefined ? 'accelerator' : JSON.stringify(datasheet.model);
    throw new DomainError('invalid_input', `couldn't classify ${subject}: ${problems.join('; ')}`, {
      rule: 'classification-input',
      details: { problems },
    });
  }
  const { rate, tpp } = highestTpp(rates);
  const area = exactDecimal(datasheet.logicDieAreaMm2);
  const density = divide(tpp, area);
  const derivation = [
    `TPP ${formatExact(tpp)} = ${formatExact(exactDecimal(rate.denseTops))} dense TOPS${rate.precision === undefined ? '' : ` (${rate.precision})`} × bit length ${rate.bitLength}` +
      (rates.length > 1 ? `, the highest of ${rates.length} precisions` : ''),
    // '=' only where the two decimals shown are the whole value (5.919 shown as 5.92 is '≈').
    `performance density = TPP ${formatExact(tpp)} / logic die area ${formatExact(area)} mm² ${compare(roundTo(density, 2), density) === 0 ? '=' : '≈'} ${formatRounded(density, 2)}`,
  ];
  const decision = decideParagraph(tpp, density, datasheet.designedForDatacenter);
  return {
    eccn: decision.eccn,
    paragraph: decision.paragraph,
    tpp: toNumber(tpp, tppThresholds),
    performanceDensity: toNumber(density, performanceDensityThresholds),
    tppRate: rate,
    reasons: [...derivation, ...decision.reasons],
    chinaPolicy: chinaLicencePolicy(decision.eccn, tpp, exactDecimal(datasheet.dramBandwidthGbS)),
  };
}

/** Whether one of the rates gives exactly this TPP (bit length × dense TOPS, compared exactly). */
export function ratesGiveTpp(rates: readonly DenseRate[], tpp: number): boolean {
  return rates.some((rate) => compare(multiply(exactDecimal(rate.denseTops), exactDecimal(rate.bitLength)), exactDecimal(tpp)) === 0);
}

function highestTpp(rates: readonly DenseRate[]): { rate: DenseRate; tpp: Rational } {
  let best: { rate: DenseRate; tpp: Rational } | undefined;
  for (const rate of rates) {
    const tpp = multiply(exactDecimal(rate.denseTops), exactDecimal(rate.bitLength));
    if (best === undefined || compare(tpp, best.tpp) > 0) best = { rate, tpp };
  }
  assert(best !== undefined, 'highestTpp needs at least one rate (checked by datasheetProblems)');
  return best;
}

interface Decision {
  eccn: Eccn;
  paragraph: Paragraph;
  reasons: string[];
}

/** The 3A090 decision tree: Note 2 first, then .a before .b, as the list reads. */
function decideParagraph(tpp: Rational, density: Rational, designedForDatacenter: boolean): Decision {
  const tppIs = (relation: Relation, threshold: number) => statement('TPP', tpp, relation, threshold);
  const densityIs = (relation: Relation, threshold: number) => statement('performance density', density, relation, threshold);
  if (!designedForDatacenter && below(tpp, tppNonDatacenterBelow)) {
    return {
      eccn: 'not 3A090',
      paragraph: 'Note 2 to 3A090',
      reasons: [`not designed or marketed for data centres and ${tppIs('<', tppNonDatacenterBelow)}: outside 3A090 (Note 2 to 3A090)`],
    };
  }
  if (atLeast(tpp, tppA1Min)) {
    // Note 2 needs both "not for data centres" and TPP < 4800: say why it does not help this part.
    const note2 = designedForDatacenter ? [] : [`not designed or marketed for data centres, but ${tppIs('≥', tppNonDatacenterBelow)}: Note 2 to 3A090 does not apply`];
    return { eccn: '3A090.a', paragraph: '3A090.a.1', reasons: [...note2, `${tppIs('≥', tppA1Min)}: 3A090.a.1`] };
  }
  // From here TPP < 4800, so only the data-centre design keeps the part out of Note 2.
  assert(designedForDatacenter, 'a part not for data centres with TPP < 4800 was decided by Note 2 above');
  const note2 = 'designed or marketed for data centres: Note 2 to 3A090 does not apply';
  if (atLeast(tpp, tppA2Min) && atLeast(density, performanceDensityA2Min)) {
    return {
      eccn: '3A090.a',
      paragraph: '3A090.a.2',
      reasons: [note2, `${tppIs('≥', tppA2Min)} and ${densityIs('≥', performanceDensityA2Min)}: 3A090.a.2`],
    };
  }
  const b1 = atLeast(tpp, tppB1Min) && below(tpp, tppB1Below) && atLeast(density, performanceDensityB1Min) && below(density, performanceDensityB1Below);
  if (b1) {
    return {
      eccn: '3A090.b',
      paragraph: '3A090.b.1',
      reasons: [note2, `${rangeStatement('TPP', tpp, tppB1Min, tppB1Below)}, ${rangeStatement('performance density', density, performanceDensityB1Min, performanceDensityB1Below)}: 3A090.b.1`],
    };
  }
  if (atLeast(tpp, tppB2Min) && atLeast(density, performanceDensityB2Min) && below(density, performanceDensityB2Below)) {
    return {
      eccn: '3A090.b',
      paragraph: '3A090.b.2',
      reasons: [note2, `${tppIs('≥', tppB2Min)} and ${rangeStatement('performance density', density, performanceDensityB2Min, performanceDensityB2Below)}: 3A090.b.2`],
    };
  }
  return { eccn: 'not 3A090', paragraph: 'below 3A090 thresholds', reasons: reasonsBelowThresholds(tpp, density) };
}

/** For an item outside every paragraph: the first condition of each paragraph that fails. */
function reasonsBelowThresholds(tpp: Rational, density: Rational): string[] {
  const failedTpp = (threshold: number) => statement('TPP', tpp, '<', threshold);
  const failedDensity = (threshold: number) => statement('performance density', density, '<', threshold);
  const a2 = below(tpp, tppA2Min) ? failedTpp(tppA2Min) : failedDensity(performanceDensityA2Min);
  // .b.1 can only fail on its lower bounds here: TPP ≥ 4800 or PD ≥ 5.92 would have been .a.
  const b1 = below(tpp, tppB1Min) ? failedTpp(tppB1Min) : failedDensity(performanceDensityB1Min);
  const b2 = below(tpp, tppB2Min) ? failedTpp(tppB2Min) : failedDensity(performanceDensityB2Min);
  return [`3A090.a.1: ${failedTpp(tppA1Min)}`, `3A090.a.2: ${a2}`, `3A090.b.1: ${b1}`, `3A090.b.2: ${b2}`, 'not 3A090: below the thresholds of every paragraph'];
}

/** January 2026 China policy (91 FR 1684); applies only to items that 3A090 controls. */
function chinaLicencePolicy(eccn: Eccn, tpp: Rational, dramBandwidthGbS: Rational): ChinaLicencePolicy {
  if (eccn === 'not 3A090') {
    return { review: 'not applicable', caseByCase: false, reason: 'not 3A090: the January 2026 China licence policy for 3A090 items does not apply' };
  }
  const tppStatement = statement('TPP', tpp, below(tpp, chinaCaseByCaseTppBelow) ? '<' : '≥', chinaCaseByCaseTppBelow);
  const bandwidthIsBelow = below(dramBandwidthGbS, chinaCaseByCaseDramBandwidthBelowGbS);
  const bandwidthStatement = `DRAM bandwidth ${formatExact(dramBandwidthGbS)} GB/s ${bandwidthIsBelow ? '<' : '≥'} ${formatThreshold(chinaCaseByCaseDramBandwidthBelowGbS)} GB/s`;
  if (below(tpp, chinaCaseByCaseTppBelow) && bandwidthIsBelow) {
    return { review: 'case-by-case', caseByCase: true, reason: `${tppStatement} and ${bandwidthStatement}: case-by-case review (91 FR 1684)` };
  }
  const failing = [below(tpp, chinaCaseByCaseTppBelow) ? undefined : tppStatement, bandwidthIsBelow ? undefined : bandwidthStatement].filter((part) => part !== undefined);
  return { review: 'presumption of denial', caseByCase: false, reason: `${failing.join(' and ')}: presumption of denial (91 FR 1684)` };
}

type Relation = '≥' | '<';

type Quantity = 'TPP' | 'performance density';
const thresholdsOf: Record<Quantity, readonly number[]> = { TPP: tppThresholds, 'performance density': performanceDensityThresholds };

/** "TPP 2,368 < 2,400", with enough digits that the shown number agrees with the relation. */
function statement(name: Quantity, value: Rational, relation: Relation, threshold: number): string {
  return `${name} ${formatQuantity(name, value)} ${relation} ${formatThreshold(threshold)}`;
}

/** "performance density 5.9198 ≥ 1.6 and < 5.92", shown with enough digits for both bounds. */
function rangeStatement(name: Quantity, value: Rational, min: number, below: number): string {
  return `${name} ${formatQuantity(name, value)} ≥ ${formatThreshold(min)} and < ${formatThreshold(below)}`;
}

/**
 * A TPP or density as the reasons show it: with enough digits to be on its side of every
 * threshold of that quantity, not only the one in the statement, so that every reason shows
 * the same figure (not "TPP 1,600 < 2,400" beside "TPP 1,599.999999 < 1,600").
 */
function formatQuantity(name: Quantity, value: Rational): string {
  return formatDecisive(value, thresholdsOf[name].map(exactDecimal));
}

function atLeast(value: Rational, threshold: number): boolean {
  return compare(value, exactDecimal(threshold)) >= 0;
}

function below(value: Rational, threshold: number): boolean {
  return compare(value, exactDecimal(threshold)) < 0;
}

/**
 * Whether `published`, a figure as a table writes it ("20.6", "15832"), is `value` rounded to
 * the published number of decimals: at most half a unit of its last digit away, compared
 * exactly. `value` is a figure classifyAccelerator returned (TPP or performance density).
 */
export function agreesWithPublished(value: number, published: string): boolean {
  const match = /^(\d+)(?:\.(\d+))?$/.exec(published);
  assert(match !== null, `agreesWithPublished needs a plain decimal, got ${JSON.stringify(published)}`);
  const decimals = match[2]?.length ?? 0;
  const exact = exactDecimal(value);
  const shown = exactDecimal(Number(published));
  const distance = compare(exact, shown) >= 0 ? subtract(exact, shown) : subtract(shown, exact);
  return compare(multiply(distance, { numerator: 2n * 10n ** BigInt(decimals), denominator: 1n }), { numerator: 1n, denominator: 1n }) <= 0;
}

/**
 * The number stored and returned for an exact TPP or density: the double nearest it, moved
 * one double towards it where that double is written as a threshold the value is not (a
 * density of 5.91999999999999999 is nearest the double written 5.92). So a stored figure
 * reads on the same side of every threshold as the decision taken on the exact value: one
 * just below 1,600 is stored 1599.9999999999998, never 1600.
 */
function toNumber(value: Rational, thresholds: readonly number[]): number {
  let number = nearestDouble(value);
  for (const threshold of thresholds) {
    const side = compare(value, exactDecimal(threshold));
    if (compare(exactDecimal(number), exactDecimal(threshold)) !== side) {
      // Only a value next to a threshold rounds onto it; a value equal to one is stored as it.
      assert(side !== 0 && number === threshold, 'the double nearest a value is on its side of a threshold, or on it');
      number = adjacentDouble(number, side);
    }
  }
  // datasheetProblems bounds TPP to a finite double and the area from below, so PD ≤ TPP is finite too.
  assert(Number.isFinite(number), 'a classified TPP or density is a finite number');
  assert(thresholds.every((threshold) => compare(exactDecimal(number), exactDecimal(threshold)) === compare(value, exactDecimal(threshold))), 'a stored figure is on the side of each threshold that decided');
  return number;
}
