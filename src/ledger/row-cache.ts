/**
 * Rows of the ledger's small, hot tables, kept across batches together with the log head
 * they belong to. A batch that finds, under the ledger's lock, the head our last batch
 * committed knows nobody else wrote since; if every row it needs is here, it reads
 * nothing (batch-commit.ts). Any other head, or a batch that failed, clears the cache.
 *
 * What makes this safe is that every change to these tables goes through a batch, and
 * every batch that changes a row appends an event and so moves the head: a cache that
 * matches the head matches the tables. Tokens too: they are made and revoked only by
 * token.create and token.revoke, ledger commands like any other (the admin CLI runs them
 * through the ledger as the system actor), and the API only reads them. So a token row
 * cached at the head is the row the lock would read, and a revocation through another
 * process moves the head, which no batch of ours then trusts the cache at. Rows here are
 * never changed in place (BatchState makes new rows, and the cache freezes what it keeps),
 * so sharing them with batches is safe.
 *
 * Tables left out on purpose: units, which are the manifests (a shipment may have 100,000 of
 * them, and handlers also change them set-based in SQL). Batches that need those, or the
 * sweep (which queries by time), load classically; so do batches that give a GPU UUID (any
 * unit may hold it, and manifests.ts refuses a clash from the units the loader finds by it,
 * keys.gpuUuids), that look products up by
 * model, organisations by identifier or licences by reference (product.register,
 * organisation.register, licence.create: a model, an identifier or a reference not cached may
 * still be stored), and those that read every allocation of a licence (an amendment of its
 * validity: the cache cannot tell that it holds them all). Tokens are kept because every batch
 * names its actors' tokens (batch-apply.ts checks each is still valid): left out, no batch
 * would be served from here.
 */
import { limits } from '../core/limits.ts';
import type { BatchKeys } from '../store/batch-keys.ts';
import type { LoadedState } from '../store/batch-state.ts';
import type { LogHead } from '../store/head-lock.ts';
import type { BatchState, LicenceWithParties } from './state.ts';
import type { AllocationRow, OrganisationRow, ProductRow, ShipmentRow, SiteRow, TokenRow } from './rows.ts';

interface Cached {
  organisations: OrganisationRow;
  products: ProductRow;
  tokens: TokenRow;
  licences: LicenceWithParties;
  allocations: AllocationRow;
  sites: SiteRow;
  shipments: ShipmentRow;
}
type CachedName = keyof Cached;
const cachedTables: CachedName[] = ['organisations', 'products', 'tokens', 'licences', 'allocations', 'sites', 'shipments'];

export class RowCache {
  /** The head the rows are current at: after our last committed batch. */
  private current: LogHead | null = null;
  private readonly rows: { [T in CachedName]: Map<string, Cached[T]> } = {
    organisations: new Map(), products: new Map(), tokens: new Map(), licences: new Map(), allocations: new Map(), sites: new Map(), shipments: new Map(),
  };

  /** rowsMax 0 keeps nothing: every lookup misses. */
  constructor(private readonly rowsMax: number = limits.rowCacheRowsPerTableMax) {}

  get head(): LogHead | null {
    return this.current;
  }

  /** Forgets everything: after a failed batch, or when another writer moved the head. */
  clear(): void {
    this.current = null;
    for (const table of cachedTables) this.rows[table].clear();
  }

  /**
   * The rows a batch with these keys would load, taken from here, expanded the way
   * loadBatchState expands them (shipments bring their allocations and organisations,
   * allocations their licences and recipients, tokens their organisations); null if any is
   * missing or the keys ask for something this cache does not keep. A token the database
   * does not hold is a miss too: the loader then finds that out under the lock.
   */
  lookup(keys: BatchKeys): LoadedState | null {
    if (this.current === null || this.rowsMax === 0 || keys.dueAt !== null || keys.serials.size > 0 || keys.gpuUuids.size > 0 || keys.productModels.size > 0
      || keys.organisationIdentifiers.size > 0 || keys.licenceReferences.size > 0 || keys.allocationsOfLicences.size > 0) return null;
    const shipments: ShipmentRow[] = [];
    const allocationIds = new Set(keys.allocations);
    const organisationIds = new Set(keys.organisations);
    for (const id of keys.shipments) {
      const shipment = this.rows.shipments.get(id);
      if (!shipment) return null;
      shipments.push(shipment);
      allocationIds.add(shipment.export_allocation_id).add(shipment.import_allocation_id);
      organisationIds.add(shipment.recipient_org_id).add(shipment.exporter_org_id);
    }
    const allocations: AllocationRow[] = [];
    const licenceIds = new Set(keys.licences);
    for (const id of allocationIds) {
      const allocation = this.rows.allocations.get(id);
      if (!allocation) return null;
      allocations.push(allocation);
      licenceIds.add(allocation.licence_id);
      organisationIds.add(allocation.recipient_org_id);
    }
    const tokens = this.pick('tokens', keys.tokens);
    if (!tokens) return null;
    for (const token of tokens) organisationIds.add(token.org_id);
    const licences = this.pick('licences', licenceIds);
    const organisations = this.pick('organisations', organisationIds);
    const products = this.pick('products', keys.products);
    const sites = this.pick('sites', keys.sites);
    if (!licences || !organisations || !products || !sites) return null;
    return { organisations, products, tokens, licences, allocations, sites, shipments, units: [] };
  }

  /** Rows a classic batch loaded under the lock at `head`, before it changed anything. */
  remember(loaded: LoadedState, head: LogHead): void {
    if (this.current === null || this.current.size !== head.size || !this.current.root.equals(head.root)) this.clear();
    for (const table of cachedTables) {
      for (const row of loaded[table] as Array<Cached[CachedName]>) this.put(table, row);
    }
    this.current = head;
  }

  /** A committed batch's changes: `head` is the head after it. */
  advance(state: BatchState, head: LogHead): void {
    for (const table of cachedTables) {
      for (const row of state.dirtyRows(table) as Array<Cached[CachedName]>) this.put(table, row);
    }
    this.current = head;
  }

  private pick<T extends CachedName>(table: T, ids: Iterable<string>): Array<Cached[T]> | null {
    const found: Array<Cached[T]> = [];
    for (const id of ids) {
      const row = this.rows[table].get(id);
      if (!row) return null;
      found.push(row);
    }
    return found;
  }

  private put<T extends CachedName>(table: T, row: Cached[T]): void {
    // Frozen, nested values too: a handler that changed a row in place instead of through
    // BatchState.update would otherwise change it for every later batch (and its undo
    // could not restore it). Frozen, that is a TypeError at the line that tried.
    deepFreeze(row);
    const rows = this.rows[table];
    // Re-inserting moves the row to the end: the first key is the least recently written.
    rows.delete(row.id);
    rows.set(row.id, row);
    if (rows.size > this.rowsMax) rows.delete(rows.keys().next().value!);
  }
}

function deepFreeze(value: unknown): void {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const inner of Object.values(value)) deepFreeze(inner);
}
