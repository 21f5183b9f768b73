/**
 * The accelerator catalogue: datasheet figures of real accelerators, from accelerators.csv
 * (columns and sources described in shared/data/README.md). The demo seeds its products from
 * it, product.register holds a model it lists to its figures (listedAccelerator,
 * catalogueMismatch), and the parser checks every row's published TPP and PD columns against
 * its own figures.
 *
 * The file is kept in two places: shared/data/accelerators.csv (the reference data, beside the
 * repository) and a copy in this folder, which is what we load by default because shared/ is
 * not present in every deployment. catalogue.test.ts fails when the two differ.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { DomainError } from '../core/errors.ts';
import { limits } from '../core/limits.ts';
import { asciiLowerCase, dashCharacters, invisibleCharacters, normaliseText, textProblem, whiteSpaceCharacters } from '../core/text.ts';
import { parseCsv, type CsvRecord } from './csv.ts';
import { type Classification, agreesWithPublished, classifyAccelerator, ratesGiveTpp } from './classification.ts';
import { type DenseRate, type SingleRateDatasheet, bitLengthMax, dramBandwidthGbSMin, logicDieAreaMm2Min } from './datasheet.ts';

/** The copy shipped with the code. */
export const defaultCataloguePath = fileURLToPath(new URL('./accelerators.csv', import.meta.url));
/** The reference file in shared/data, beside the repository (`../shared` from its root); may be absent. */
export const sharedCataloguePath = fileURLToPath(new URL('../../../shared/data/accelerators.csv', import.meta.url));

/** Longest cell (notes and sources are a sentence or two). */
export const catalogueCellLengthMax = limits.textLengthMax;

export interface AcceleratorProduct {
  model: string;
  vendor: string;
  /** What classifyAccelerator takes. */
  datasheet: SingleRateDatasheet;
  /** TPP as the file publishes it (rounded), for cross-checking the computed value. */
  publishedTpp: number;
  /** Performance density as the file publishes it (rounded to 1 or 2 decimals). */
  publishedPerformanceDensity: number;
  memoryGb: number;
  note: string;
  source: string;
  /** Line of the file where the row starts, for messages. */
  line: number;
}

const columns = [
  'model',
  'vendor',
  'dense_tops',
  'bit_length',
  'tpp',
  'logic_die_area_mm2',
  'performance_density',
  'dram_bandwidth_gb_s',
  'memory_gb',
  'designed_for_datacenter',
  'note',
  'source',
] as const;

type Column = (typeof columns)[number];

/** Reads and parses a catalogue file; the in-repo copy unless told otherwise. */
export async function loadAcceleratorCatalogue(path: string = defaultCataloguePath): Promise<AcceleratorProduct[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new Error(`couldn't read the accelerator catalogue at ${path}: ${(error as Error).message}`, { cause: error });
  }
  try {
    return parseAcceleratorCsv(text);
  } catch (error) {
    if (error instanceof DomainError) {
      throw new DomainError(error.code, `${path}: ${error.message}`, { rule: error.rule ?? 'catalogue', details: { ...error.details, path }, cause: error });
    }
    throw error;
  }
}

/**
 * Parses the catalogue CSV. Throws DomainError('invalid_input') naming the line of the first
 * problem: a malformed cell, a model listed twice (registration would refuse the second), or
 * published TPP and PD columns that the row's own figures contradict.
 */
export function parseAcceleratorCsv(text: string): AcceleratorProduct[] {
  const records = parseCatalogueRecords(text);
  const header = records[0];
  if (header === undefined) throw catalogueError(1, 'the file is empty; expected a header line');
  const indexOf = headerIndex(header.fields.map((name) => name.trim()));
  const lineOfModel = new Map<string, number>();
  return records.slice(1).map((record) => {
    const product = productFromRecord(record, indexOf);
    const first = lineOfModel.get(product.model);
    if (first !== undefined) throw catalogueError(product.line, `model ${JSON.stringify(product.model)} is already listed on line ${first}`);
    lineOfModel.set(product.model, product.line);
    checkPublishedFigures(product, record, indexOf);
    return product;
  });
}

/**
 * The row's tpp and performance_density columns must be what its own figures give, rounded to
 * the decimals published (within half a unit of the last digit): a row that contradicts itself
 * has a wrong figure somewhere, and the catalogue would show auditors numbers it does not use.
 */
function checkPublishedFigures(product: AcceleratorProduct, record: CsvRecord, indexOf: Record<Column, number>): void {
  let classification: ReturnType<typeof classifyAccelerator>;
  try {
    classification = classifyAccelerator(product.datasheet);
  } catch (error) {
    if (error instanceof DomainError) throw catalogueError(product.line, error.message);
    throw error;
  }
  const published = (column: Column) => normaliseText(record.fields[indexOf[column]] as string);
  const figures: Array<[Column, number, string]> = [
    ['tpp', classification.tpp, 'dense_tops × bit_length'],
    ['performance_density', classification.performanceDensity, 'tpp / logic_die_area_mm2'],
  ];
  for (const [column, computed, formula] of figures) {
    if (!agreesWithPublished(computed, published(column))) {
      throw catalogueError(product.line, `column ${column}: published ${published(column)}, but ${formula} gives ${computed} (more than half a unit of the last published digit apart)`);
    }
  }
}

/** parseCsv, with its errors reworded as catalogue errors (same line, same reason). */
function parseCatalogueRecords(text: string): CsvRecord[] {
  try {
    return parseCsv(text, { recordsMax: limits.catalogueRowsMax + 1 });
  } catch (error) {
    if (error instanceof DomainError && error.rule === 'csv') {
      const { line, reason } = error.details as { line: number; reason: string };
      throw catalogueError(line, reason);
    }
    throw error;
  }
}

function headerIndex(header: readonly string[]): Record<Column, number> {
  const seen = new Map<string, number>();
  header.forEach((name, index) => {
    if (seen.has(name)) throw catalogueError(1, `column ${JSON.stringify(name)} appears twice in the header`);
    seen.set(name, index);
  });
  const unknown = header.filter((name) => !(columns as readonly string[]).includes(name));
  const missing = columns.filter((name) => !seen.has(name));
  if (unknown.length > 0 || missing.length > 0) {
    const parts = [missing.length > 0 ? `missing ${missing.join(', ')}` : '', unknown.length > 0 ? `unknown ${unknown.join(', ')}` : ''];
    throw catalogueError(1, `header columns: ${parts.filter((part) => part !== '').join('; ')}`);
  }
  return Object.fromEntries(columns.map((name) => [name, seen.get(name) as number])) as Record<Column, number>;
}

function productFromRecord(record: CsvRecord, indexOf: Record<Column, number>): AcceleratorProduct {
  if (record.fields.length !== columns.length) {
    throw catalogueError(record.line, `expected ${columns.length} fields, got ${record.fields.length}`);
  }
  const cell = (column: Column): string => {
    const value = normaliseText(record.fields[indexOf[column]] as string);
    const problem = textProblem(value);
    if (problem !== undefined) throw catalogueError(record.line, `column ${column}: ${problem}`);
    if (value.length > catalogueCellLengthMax) throw catalogueError(record.line, `column ${column}: longer than ${catalogueCellLengthMax} characters`);
    return value;
  };
  const text = (column: Column): string => {
    const value = cell(column);
    if (value === '') throw catalogueError(record.line, `column ${column} is empty`);
    return value;
  };
  const decimal = (column: Column): number => {
    const value = cell(column);
    if (!/^[0-9]+(\.[0-9]+)?$/.test(value)) throw catalogueError(record.line, `column ${column}: ${JSON.stringify(value)} is not a decimal number`);
    const number = Number(value);
    // Hundreds of digits read as Infinity: refused here, where the line is known.
    if (!Number.isFinite(number)) throw catalogueError(record.line, `column ${column}: ${value.slice(0, 20)}… is too large`);
    return number;
  };
  /** A datasheet figure: above zero (a die of no area, a chip of no rate, classify nothing). */
  const positive = (column: Column): number => {
    const number = decimal(column);
    if (number <= 0) throw catalogueError(record.line, `column ${column}: must be above 0`);
    return number;
  };
  /** A datasheet figure with a named lower bound (classification.ts says why each is there). */
  const atLeast = (column: Column, min: number, name: string): number => {
    const number = decimal(column);
    if (number < min) throw catalogueError(record.line, `column ${column}: must be at least ${min} (${name}), got ${cell(column)}`);
    return number;
  };
  const bits = (column: Column): number => {
    const value = cell(column);
    if (!/^[1-9][0-9]?$/.test(value) || Number(value) > bitLengthMax) throw catalogueError(record.line, `column ${column}: ${JSON.stringify(value)} is not a bit length from 1 to ${bitLengthMax}`);
    return Number(value);
  };
  const flag = (column: Column): boolean => {
    const value = cell(column);
    if (value !== 'true' && value !== 'false') throw catalogueError(record.line, `column ${column}: expected true or false, got ${JSON.stringify(value)}`);
    return value === 'true';
  };
  const model = text('model');
  return {
    model,
    vendor: text('vendor'),
    datasheet: {
      model,
      denseTops: positive('dense_tops'),
      bitLength: bits('bit_length'),
      logicDieAreaMm2: atLeast('logic_die_area_mm2', logicDieAreaMm2Min, 'logicDieAreaMm2Min'),
      dramBandwidthGbS: atLeast('dram_bandwidth_gb_s', dramBandwidthGbSMin, 'dramBandwidthGbSMin'),
      designedForDatacenter: flag('designed_for_datacenter'),
    },
    publishedTpp: decimal('tpp'),
    publishedPerformanceDensity: decimal('performance_density'),
    memoryGb: decimal('memory_gb'),
    note: cell('note'),
    source: text('source'),
    line: record.line,
  };
}

function catalogueError(line: number, message: string): DomainError {
  return new DomainError('invalid_input', `couldn't parse the accelerator catalogue: line ${line}: ${message}`, { rule: 'catalogue', details: { line } });
}

// ---------------------------------------------------------------------------------------------
// Registration against the catalogue: the product catalogue of the ledger is shared by every
// authority, and a model is registered once (store/migrations/026, 036). A model this file
// lists is registered with its datasheet figures, so that no authority can take a known part's
// name with figures of its own (ledger/handlers/organisations.ts, product.register).

/** A listed accelerator with the TPP and the decision its datasheet gives (classifyAccelerator), worked out once. */
export interface ListedAccelerator {
  product: AcceleratorProduct;
  tpp: number;
  decision: Decision;
}

/** What a classification decides: the ECCN and its paragraph, and China's licence review. */
export interface Decision {
  eccn: string;
  paragraph: string;
  chinaReview: string;
}

export function decisionOf(classification: Pick<Classification, 'eccn' | 'paragraph' | 'chinaPolicy'>): Decision {
  return { eccn: classification.eccn, paragraph: classification.paragraph, chinaReview: classification.chinaPolicy.review };
}

/**
 * How far above the catalogue's TPP a registration's highest rate may give, with the
 * catalogue's rate among those given: a datasheet rounds each precision's figure on its own
 * (H200 NVL's FP16 gives 0.03% more than its FP8), and nothing more than that rounding.
 */
export const catalogueTppRoundingMax = 0.001;

/** What a registration gives, as the catalogue's figures are compared with it. */
export interface RegisteredFigures {
  vendor: string;
  /** The single rate as given (denseTops with bitLength); undefined when denseRates were given. */
  rate: { denseTops: number; bitLength: number } | undefined;
  /** Every rate given, in either form. */
  rates: readonly DenseRate[];
  /** The TPP classifyAccelerator derived from the registration's rate or rates, and what it decided. */
  tpp: number;
  decision: Decision;
  logicDieAreaMm2: number;
  dramBandwidthGbS: number;
  memoryGb: number | undefined;
  designedForDatacenter: boolean;
}

/** The first figure of a registration that differs from the datasheet: its field, and both values. */
export interface CatalogueMismatch {
  field: string;
  /** E.g. "logicDieAreaMm2 is 600; the datasheet gives 814". */
  statement: string;
}

const modelSeparators = new RegExp(`[${invisibleCharacters}${whiteSpaceCharacters}${dashCharacters}_]+`, 'gu');

/**
 * A model as a reader takes it: compatibility forms folded (full-width Ｈ２００ is H200), the
 * case of ASCII letters ignored, white space, dashes, underscores and invisible characters
 * (U+200B, the soft hyphen, U+2060, U+FEFF: core/text.ts) dropped. An exact comparison takes
 * "h200-sxm" for a model other than H200 SXM; a reader of a licence would not, so a
 * registration that reads as a listed model must be that model, and one that reads as a
 * registered product is that product (ledger/handlers/organisations.ts). The database holds
 * the same reading, character for character (migration 050, product_model_reading): only
 * ASCII letters are folded, as lower() under the "C" collation folds them, since JavaScript
 * and a database's locale fold other letters by different tables. Models in the catalogue
 * are ASCII, and NFKC makes full-width letters ASCII first.
 */
export function modelReading(model: string): string {
  return asciiLowerCase(model.normalize('NFKC').replace(modelSeparators, ''));
}

let shipped: { byModel: Map<string, ListedAccelerator>; byReading: Map<string, ListedAccelerator> } | undefined;

/**
 * The shipped catalogue (defaultCataloguePath), read once, at first use, and synchronously:
 * a handler runs inside a batch and does not wait. The file ships with the code and
 * catalogue.test.ts parses it, so a file that cannot be read or parsed, or two models that read
 * the same, is a broken installation: a plain Error (a bug, logged), not a refusal.
 */
function shippedCatalogue(): NonNullable<typeof shipped> {
  if (shipped !== undefined) return shipped;
  let products: AcceleratorProduct[];
  try {
    products = parseAcceleratorCsv(readFileSync(defaultCataloguePath, 'utf8'));
  } catch (error) {
    throw new Error(`couldn't load the accelerator catalogue at ${defaultCataloguePath}: ${(error as Error).message}`, { cause: error });
  }
  const byModel = new Map<string, ListedAccelerator>();
  const byReading = new Map<string, ListedAccelerator>();
  for (const product of products) {
    const classification = classifyAccelerator(product.datasheet);
    const listed = { product, tpp: classification.tpp, decision: decisionOf(classification) };
    const reading = modelReading(product.model);
    const same = byReading.get(reading);
    if (same !== undefined) throw new Error(`the accelerator catalogue at ${defaultCataloguePath} lists ${JSON.stringify(same.product.model)} and ${JSON.stringify(product.model)}, which read as one model`);
    byModel.set(product.model, listed);
    byReading.set(reading, listed);
  }
  return (shipped = { byModel, byReading });
}

/**
 * The catalogue's entry for a model being registered: `exact` when it is the listed model as
 * written, otherwise one it reads as (modelReading); undefined for a model the catalogue does
 * not list.
 */
export function listedAccelerator(model: string): { listed: ListedAccelerator; exact: boolean } | undefined {
  const catalogue = shippedCatalogue();
  const exact = catalogue.byModel.get(model);
  if (exact !== undefined) return { listed: exact, exact: true };
  const reading = catalogue.byReading.get(modelReading(model));
  return reading === undefined ? undefined : { listed: reading, exact: false };
}

/**
 * The first figure of a registration that is not the datasheet's, in the order a datasheet
 * gives them: vendor, rate, logic die area, DRAM bandwidth, memory (when given), data-centre
 * flag. The rate is the datasheet's own, or any rate or rates giving the same TPP, which is
 * all classification takes from it (A100: FP16 312 × 16 and INT8 624 × 8 both give 4,992).
 */
export function catalogueMismatch(listed: ListedAccelerator, given: RegisteredFigures): CatalogueMismatch | undefined {
  const { product } = listed;
  const sheet = product.datasheet;
  if (given.vendor !== product.vendor) return { field: 'vendor', statement: `vendor is not the catalogue's ${JSON.stringify(product.vendor)}` };
  // The registered TPP is the catalogue's. A datasheet rounds each precision's rate on its own,
  // though, so its rates need not give one TPP (H200 NVL: FP8 1,670.5 × 8 = 13,364, FP16
  // 835.5 × 16 = 13,368), and a registrant that gives them all is taken at the highest, as TPP
  // is: one above the catalogue's is taken when the catalogue's rate is among those given, it
  // is above by no more than such rounding (catalogueTppRoundingMax), and it decides the same
  // (ECCN, paragraph, China's review). Anything else would give a known part figures of the
  // registrant's own: lower ones to classify it out of control, higher ones to put it under more.
  const sameDecision = given.decision.eccn === listed.decision.eccn && given.decision.paragraph === listed.decision.paragraph && given.decision.chinaReview === listed.decision.chinaReview;
  const rounding = given.tpp > listed.tpp && ratesGiveTpp(given.rates, listed.tpp) && given.tpp - listed.tpp <= listed.tpp * catalogueTppRoundingMax;
  if (given.tpp !== listed.tpp && !(rounding && sameDecision)) {
    const datasheetRate = `${sheet.denseTops} × ${sheet.bitLength}, TPP ${listed.tpp}`;
    const why = given.tpp < listed.tpp ? ''
      : !rounding ? `, above the datasheet's by more than its rounding (a higher TPP is taken only with the datasheet's rate among the rates given, and by at most ${catalogueTppRoundingMax * 100}% more)`
      : `, which decides ${given.decision.eccn} ${given.decision.paragraph} (China: ${given.decision.chinaReview}) where the datasheet decides ${listed.decision.eccn} ${listed.decision.paragraph} (China: ${listed.decision.chinaReview})`;
    return given.rate === undefined
      ? { field: 'denseRates', statement: `denseRates give TPP ${given.tpp} at most${why}; the datasheet gives ${datasheetRate}` }
      : { field: 'denseTops', statement: `denseTops × bitLength is ${given.rate.denseTops} × ${given.rate.bitLength}, TPP ${given.tpp}${why}; the datasheet gives ${datasheetRate}` };
  }
  const figures: Array<[keyof RegisteredFigures, number | boolean | undefined, number | boolean]> = [
    ['logicDieAreaMm2', given.logicDieAreaMm2, sheet.logicDieAreaMm2],
    ['dramBandwidthGbS', given.dramBandwidthGbS, sheet.dramBandwidthGbS],
    ['memoryGb', given.memoryGb, product.memoryGb],
    ['designedForDatacenter', given.designedForDatacenter, sheet.designedForDatacenter],
  ];
  for (const [field, value, datasheet] of figures) {
    // Memory is the one figure a registration may leave out; nothing is classified by it.
    if (value === undefined || value === datasheet) continue;
    return { field, statement: `${field} is ${String(value)}; the datasheet gives ${String(datasheet)}` };
  }
  return undefined;
}
