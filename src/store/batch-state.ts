/**
 * Loads the rows a ledger batch needs (loadBatchState): what its keys name, then what those
 * rows point to, one statement a table, in a fixed order. Runs inside the batch's transaction,
 * under the head lock (head-lock.ts), so it reads every batch committed before this one.
 */
import { prepared, type PoolClient } from './pool.ts';
import type { BatchKeys } from './batch-keys.ts';
import { loadDue } from './sweep-due.ts';
import type {
  AllocationRow, LicencePartyRow, LicenceRow, OrganisationRow, ProductRow,
  ShipmentRow, SiteRow, TokenRow, UnitRow,
} from '../ledger/rows.ts';

export interface LoadedState {
  organisations: OrganisationRow[];
  products: ProductRow[];
  tokens: TokenRow[];
  licences: Array<LicenceRow & { parties: LicencePartyRow[]; allocation_recipients: string[] }>;
  allocations: AllocationRow[];
  sites: SiteRow[];
  shipments: ShipmentRow[];
  units: UnitRow[];
}

/**
 * A text[] parameter written once and sent to several queries: node-postgres escapes every
 * element of an array parameter again for each query it is sent with (33 ms for a manifest's
 * 100,000 serials, against 16 ms to write the literal once). Serials (ledger/schemas.ts) hold
 * no quote or backslash, so each goes between quotes as it is; a list holding either is
 * left to node-postgres.
 */
class TextArrayParameter {
  constructor(readonly value: string | readonly string[], readonly length: number) {}
}

function textArrayParameter(values: readonly string[]): TextArrayParameter {
  const plain = values.every((value) => !value.includes('"') && !value.includes('\\'));
  return new TextArrayParameter(plain && values.length > 0 ? `{"${values.join('","')}"}` : values, values.length);
}

/** The keys as organisationsByIdentifierSql takes them: each identifier's kind and value apart. */
function identifierPairs(keys: Iterable<string>): Array<{ kind: string; value: string }> {
  return [...keys].map((key) => {
    const at = key.indexOf('=');
    return { kind: key.slice(0, at), value: key.slice(at + 1) };
  });
}

/**
 * Every organisation that holds one of the identifiers, in any spelling that
 * organisation_identifier_spelling (migration 050, ledger/schemas.ts identifierSpelling) folds
 * to the same: one bitmap scan of the organisations_identifier_keys GIN index per identifier,
 * the look-up the database's trigger makes. So a row stored before the schema spelt
 * identifiers so ("15-048-3782", "de 123456789") is found for 150483782, and the handler
 * refuses the code naming its holder (rule organisation-identifier), where the trigger would
 * fail the whole batch (s21 ledger review, finding 2). LATERAL with OFFSET 0, as
 * licencesByReferenceSql. An organisation holding two of them comes twice. Exported for the
 * test of its plan (store/batch-state-identifiers.test.ts).
 */
export const organisationsByIdentifierSql = `SELECT o.* FROM json_to_recordset($1::json) AS k(kind text, value text),
  LATERAL (SELECT * FROM organisations WHERE organisation_identifier_keys(identifiers) @> ARRAY[k.kind || '=' || organisation_identifier_spelling(k.value)] OFFSET 0) o`;

/**
 * The ids of the licences each authority gave each reference (keys.licenceReferences), in any
 * spelling that licence_reference_key (migration 043) folds to the same: one index scan of
 * licences_authority_reference per key, the look-up the database's trigger makes. LATERAL
 * with OFFSET 0, so that each key probes the index: joined plainly, the planner may hash every
 * licence's reference instead (it guesses 100 keys; a batch has a few). Exported for the test
 * of its plan (store/constraints-043.test.ts).
 */
export const licencesByReferenceSql = `SELECT l.id FROM json_to_recordset($1::json) AS k(authority text, reference text),
  LATERAL (SELECT id FROM licences WHERE authority_org_id = k.authority AND licence_reference_key(reference) = licence_reference_key(k.reference) OFFSET 0) l`;

function referencePairs(keys: Iterable<string>): Array<{ authority: string; reference: string }> {
  return [...keys].map((key) => {
    const at = key.indexOf('=');
    return { authority: key.slice(0, at), reference: key.slice(at + 1) };
  });
}

/**
 * Loads what the keys name, then what those rows point to: units bring the shipment that
 * last held them, shipments their allocations, allocations their licences. Fixed order, at
 * most sixteen statements, each skipped when it has nothing to look up (most batches run a few). For a sweep (keys.dueAt) it first runs loadDue, which also
 * deletes spent lapse marks: this load writes, and the write commits or rolls back with the
 * batch.
 */
export async function loadBatchState(client: PoolClient, keys: BatchKeys): Promise<LoadedState> {
  if (keys.dueAt !== null) await loadDue(client, keys, keys.dueAt);
  // One client runs one query at a time: these go in sequence, each step after those whose
  // rows add to its keys.
  const { units, shipments } = await loadUnitsAndShipments(client, keys);
  const allocations = await loadAllocations(client, keys);
  const licences = await loadLicences(client, keys);
  const { tokens, organisations } = await loadTokensAndOrganisations(client, keys);
  const products = await loadProducts(client, keys);
  const sites = await loadSites(client, keys, units);
  const holders = await loadGpuUuidHolders(client, keys, units);
  return { organisations, products, tokens, licences, allocations, sites, shipments, units: holders.length === 0 ? units : [...units, ...holders] };
}

/**
 * A text[] parameter ($1) that the planner does not read. Given `= ANY($1::text[])`, it weighs
 * each element against the column's statistics, and a manifest's 100,000 serials took 66 ms to
 * plan for a 58 ms probe of the primary key; taken from a sub-select, the array is a value of
 * the plan's start (an InitPlan), the plan the same index probes, made in 0.5 ms, and the
 * look-up 184 ms against 232 (medians of 7 at 400,000 units, 2-core host; s38).
 */
const planLessArray = 'ARRAY(SELECT unnest($1::text[]))';

/** The units of the serials in $1: one probe of the primary key each. Exported for the test of its plan. */
export const unitsBySerialSql = `SELECT u.* FROM units u WHERE u.serial = ANY(${planLessArray})`;

/** The rows `sql` selects for the ids, by its named statement; with no ids, none and no round trip. */
async function selectByIds<T>(client: PoolClient, sql: string, ids: Iterable<string> | TextArrayParameter): Promise<T[]> {
  const list = ids instanceof TextArrayParameter ? ids : [...ids];
  if (list.length === 0) return [];
  return (await client.query(prepared(sql, [list instanceof TextArrayParameter ? list.value : list]))).rows as T[];
}

/** The units of keys.serials, then the shipments of keys.shipments and of those units; adds the shipments' allocations and organisations to the keys. */
async function loadUnitsAndShipments(client: PoolClient, keys: BatchKeys): Promise<{ units: UnitRow[]; shipments: ShipmentRow[] }> {
  // 100,000 serials, as the tables grow (bench/experiments/serial-lookups.ts): by = ANY the
  // planner probes the primary key for each serial, 207–441 ms from 400,000 to 4,000,000
  // units. Joined to unnest, it read every unit instead (hash or merge join): 302, 689 and
  // 2,015 ms. The array comes through planLessArray: 66 ms less planning at 100,000 serials.
  const serials = textArrayParameter(keys.serials.all());
  const units = await selectByIds<UnitRow>(client, unitsBySerialSql, serials);
  // A unit belongs to the exporter of the shipment that last held it: listing it again is
  // that exporter's alone (ledger/handlers/manifests.ts), so that shipment comes with it,
  // and with its allocations like any other (a sweep in the batch may expire it). Units
  // before shipments for that; the distinct ids are few, and new serials bring none.
  for (const unit of units) keys.shipments.add(unit.shipment_id);
  const shipments = await selectByIds<ShipmentRow>(client, 'SELECT * FROM shipments WHERE id = ANY($1)', keys.shipments);
  for (const shipment of shipments) {
    keys.allocations.add(shipment.export_allocation_id).add(shipment.import_allocation_id);
    keys.organisations.add(shipment.recipient_org_id).add(shipment.exporter_org_id);
  }
  return { units, shipments };
}

/** The allocations of keys.allocations and keys.allocationsOfLicences; adds their licences and recipients to the keys. */
async function loadAllocations(client: PoolClient, keys: BatchKeys): Promise<AllocationRow[]> {
  // Every allocation of a licence an amendment shortens (allocations_licence), by id below with the rest.
  for (const row of await selectByIds<{ id: string }>(client, 'SELECT id FROM allocations WHERE licence_id = ANY($1)', keys.allocationsOfLicences)) keys.allocations.add(row.id);
  const allocations = await selectByIds<AllocationRow>(client, 'SELECT * FROM allocations WHERE id = ANY($1)', keys.allocations);
  for (const allocation of allocations) {
    keys.licences.add(allocation.licence_id);
    keys.organisations.add(allocation.recipient_org_id);
  }
  return allocations;
}

/** The licences of keys.licences and keys.licenceReferences, each with its parties and its allocations' recipients. */
async function loadLicences(client: PoolClient, keys: BatchKeys): Promise<LoadedState['licences']> {
  // The licences that hold a reference a creation asks for, then loaded by id with the rest.
  if (keys.licenceReferences.size > 0) {
    const holders = await client.query<{ id: string }>(prepared(licencesByReferenceSql, [JSON.stringify(referencePairs(keys.licenceReferences))]));
    for (const holder of holders.rows) keys.licences.add(holder.id);
  }
  // With each licence, the recipients of its allocations (by allocations_licence): readers
  // of its events beside its parties (ledger/state.ts LicenceWithParties).
  return selectByIds<LicenceRow & { parties: LicencePartyRow[]; allocation_recipients: string[] }>(
    client,
    `SELECT l.*, coalesce((SELECT json_agg(json_build_object('licence_id', p.licence_id, 'org_id', p.org_id, 'role', p.role))
                           FROM licence_parties p WHERE p.licence_id = l.id), '[]'::json) AS parties,
            coalesce((SELECT json_agg(DISTINCT a.recipient_org_id) FROM allocations a WHERE a.licence_id = l.id), '[]'::json) AS allocation_recipients
     FROM licences l WHERE l.id = ANY($1)`,
    keys.licences,
  );
}

/** The tokens of keys.tokens, then the organisations of keys.organisations (the tokens' with them) and keys.organisationIdentifiers, each once. */
async function loadTokensAndOrganisations(client: PoolClient, keys: BatchKeys): Promise<{ tokens: TokenRow[]; organisations: OrganisationRow[] }> {
  // A token's organisation comes with it: revoking a token is checked against that
  // organisation's jurisdiction.
  // The \x before the hex written as an escape string (E''), which reads the same whatever
  // the session's standard_conforming_strings: a plain '\x' reads as 'x' with it off.
  const tokens = await selectByIds<TokenRow>(client, `SELECT id, org_id, role, label, E'\\\\x' || encode(secret_hash, 'hex') AS secret_hash, created_at, revoked_at FROM tokens WHERE id = ANY($1)`, keys.tokens);
  for (const token of tokens) keys.organisations.add(token.org_id);
  const organisations = await selectByIds<OrganisationRow>(client, 'SELECT * FROM organisations WHERE id = ANY($1)', keys.organisations);
  if (keys.organisationIdentifiers.size > 0) {
    const loadedIds = new Set(organisations.map((organisation) => organisation.id));
    const holders = await client.query<OrganisationRow>(prepared(organisationsByIdentifierSql, [JSON.stringify(identifierPairs(keys.organisationIdentifiers))]));
    for (const holder of holders.rows) {
      if (loadedIds.has(holder.id)) continue;
      loadedIds.add(holder.id);
      organisations.push(holder);
    }
  }
  return { tokens, organisations };
}

/**
 * Every product whose model reads as one of keys.productModels (policy/catalogue.ts
 * modelReading, migration 050's product_model_reading): one probe of the products_model_reading
 * hash index per model, the look-up the database's trigger makes. So "GAUDI 3" finds Gaudi 3,
 * and the handler refuses it naming that product (rule product-model), where the trigger would
 * fail the whole batch. LATERAL with OFFSET 0, as licencesByReferenceSql. Exported for the
 * test of its plan (store/batch-state-model-readings.test.ts).
 */
export const productsByModelReadingSql = `SELECT p.* FROM unnest($1::text[]) AS k(model),
  LATERAL (SELECT * FROM products WHERE product_model_reading(products.model) = product_model_reading(k.model) OFFSET 0) p`;

/** The products of keys.products and keys.productModels, each once. */
async function loadProducts(client: PoolClient, keys: BatchKeys): Promise<ProductRow[]> {
  const products = await selectByIds<ProductRow>(client, 'SELECT * FROM products WHERE id = ANY($1)', keys.products);
  // By reading (above), which finds the exact model too; a product named both ways, or by two
  // models of the batch, comes once.
  const byId = new Set(products.map((product) => product.id));
  for (const product of await selectByIds<ProductRow>(client, productsByModelReadingSql, keys.productModels)) {
    if (byId.has(product.id)) continue;
    byId.add(product.id);
    products.push(product);
  }
  return products;
}

/**
 * Every unit that holds one of the GPU UUIDs: one probe of units_gpu_uuid_key per UUID, by its
 * own expression and predicate (migration 027: the lower-case form, so a unit listed with an
 * upper-case one before 025 is found too); 40–65 ms for 19,000 UUIDs none holds, on a busy
 * 2-core machine. Exported for the test of its plan (store/batch-state-gpu-uuids.test.ts).
 */
export const unitsByGpuUuidSql = `SELECT u.* FROM units u WHERE ('GPU-' || lower(substr(u.gpu_uuid, 5))) = ANY(${planLessArray}) AND u.gpu_uuid IS NOT NULL`;

/**
 * The units holding keys.gpuUuids that the batch did not load by serial; none, and no round
 * trip, when no manifest gives a GPU UUID (most do not). They are there to be compared
 * (ledger/handlers/manifests.ts refuses a GPU UUID another unit holds), and to follow a
 * release this batch makes (a booking of theirs cancelled or expired lets their GPU UUID go,
 * ledger/handlers/shipments.ts releaseClaims, for a shipment the batch loaded for that
 * command). So they come without their shipments or sites: no command of
 * the batch names them, or they would have come by serial with all of those, and a sweep in
 * the batch expires the shipments it found due, not those a unit here happens to be in.
 */
async function loadGpuUuidHolders(client: PoolClient, keys: BatchKeys, units: UnitRow[]): Promise<UnitRow[]> {
  // A GPU UUID a unit loaded by serial holds is held by no other (the index is unique): units
  // listed again with their own GPU UUIDs, returned ones say, are not read a second time. (One
  // stored in upper case before 025 is, and comes once all the same.)
  const wanted = new Set(keys.gpuUuids);
  for (const unit of units) if (unit.gpu_uuid !== null) wanted.delete(unit.gpu_uuid);
  const holders = await selectByIds<UnitRow>(client, unitsByGpuUuidSql, textArrayParameter([...wanted]));
  if (holders.length === 0) return holders;
  const loaded = new Set(units.map((unit) => unit.serial));
  return holders.filter((unit) => !loaded.has(unit.serial));
}

/** The sites of keys.sites and of the loaded units. */
async function loadSites(client: PoolClient, keys: BatchKeys, units: UnitRow[]): Promise<SiteRow[]> {
  // A unit's current site comes with it: moving or retiring it changes that site's count.
  for (const unit of units) if (unit.site_id !== null) keys.sites.add(unit.site_id);
  return selectByIds<SiteRow>(client, 'SELECT * FROM sites WHERE id = ANY($1)', keys.sites);
}
