/**
 * What a ledger batch asks to read (BatchKeys), and how a key by organisation identifier or by
 * licence reference is spelt. batch-state.ts loads what they name.
 */
/** What a batch asks to read; every list may be empty. */
export interface BatchKeys {
  organisations: Set<string>;
  /**
   * Organisations by identifier, each `kind=value` (organisationIdentifierKey): a
   * registration looks for the organisation that already holds its USCC, LEI or any other
   * identifier, in any spelling that folds to the same (migrations 039 and 050:
   * organisation_identifier_spelling, ledger/schemas.ts identifierSpelling). Loaded with the
   * organisations by id; a row cache cannot answer it (an organisation not cached may still
   * hold the value).
   */
  organisationIdentifiers: Set<string>;
  products: Set<string>;
  /**
   * Products by the reading of their model (policy/catalogue.ts modelReading, migration 050's
   * product_model_reading): a registration looks for the product that already holds its model,
   * in any spelling that reads the same. Loaded with the products by id; a row cache cannot
   * answer it (a model not cached may still be stored).
   */
  productModels: Set<string>;
  tokens: Set<string>;
  licences: Set<string>;
  /**
   * Licences by reference, each `authority=reference` (licenceReferenceKey): a licence's
   * creation looks for the licences its authority already gave that reference (migrations 043
   * and 050: compared as licence_reference_key spells them, ledger/handlers/licences.ts referenceSpelling).
   * Loaded with the licences by id; a row cache cannot answer it (a licence not cached may
   * hold the reference).
   */
  licenceReferences: Set<string>;
  /**
   * Licences whose every allocation the batch reads: an amendment that shortens a validity
   * checks each tranche under it (ledger/handlers/licences.ts). Through allocations_licence;
   * a row cache cannot answer it (it does not know that it holds all of them).
   */
  allocationsOfLicences: Set<string>;
  allocations: Set<string>;
  sites: Set<string>;
  shipments: Set<string>;
  serials: SerialKeys;
  /**
   * GPU UUIDs a manifest gives, in their one spelling (ledger/schemas.ts canonicalGpuUuid):
   * the batch loads every unit that holds one, by the unique index units_gpu_uuid_key
   * (migration 027), so that a GPU UUID another unit holds is refused in code, as one
   * command's refusal, and not by the index, which fails the whole batch (the sequencer then
   * runs it again in halves, and every other command in it waits for that). A row cache cannot
   * answer it (it keeps no units, and a unit not cached may hold the GPU UUID).
   */
  gpuUuids: Set<string>;
  /** Sweeps: what is due by this instant (loadDue): bookings past their deadline or under a lapsed licence, licences past their validity. */
  dueAt: string | null;
}

/**
 * The serials a batch names, kept as the lists its commands gave (a manifest's 100,000): made
 * into a set of 100,000, they cost a manifest 80 ms before its look-up could start (s38). The
 * look-up takes them as one array, a serial given twice in it twice: `serial = ANY` finds its
 * unit once all the same.
 */
export class SerialKeys {
  private readonly lists: Array<readonly string[]> = [];
  private count = 0;

  add(serial: string): void {
    this.addAll([serial]);
  }

  addAll(serials: readonly string[]): void {
    if (serials.length === 0) return;
    this.lists.push(serials);
    this.count += serials.length;
  }

  /** How many were given, a repeat counted each time. */
  get size(): number {
    return this.count;
  }

  /** Every serial given, in the order given. */
  all(): readonly string[] {
    return this.lists.length === 1 ? this.lists[0]! : this.lists.flat();
  }
}

export function emptyKeys(): BatchKeys {
  return {
    organisations: new Set(), organisationIdentifiers: new Set(), products: new Set(), productModels: new Set(), tokens: new Set(), licences: new Set(),
    licenceReferences: new Set(), allocationsOfLicences: new Set(), allocations: new Set(), sites: new Set(), shipments: new Set(), serials: new SerialKeys(), gpuUuids: new Set(), dueAt: null,
  };
}

/**
 * An identifier as keys.organisationIdentifiers holds it. A kind has no '=' (ledger/schemas.ts:
 * lower-case letters and '_'), so the first '=' ends it; the value may hold any.
 */
export function organisationIdentifierKey(kind: string, value: string): string {
  return `${kind}=${value}`;
}

/**
 * A reference as keys.licenceReferences holds it. An organisation id has no '=' (ledger/schemas.ts:
 * letters, digits, - and _), so the first '=' ends it; the reference may hold any.
 */
export function licenceReferenceKey(authorityId: string, reference: string): string {
  return `${authorityId}=${reference}`;
}
