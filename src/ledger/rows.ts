/**
 * The ledger's state rows, spelled exactly as the database columns so that a batch can
 * write them with one json_populate_recordset per table. The API presents them in
 * camelCase (src/server/presenters.ts); nothing else sees these names.
 */
import type { Eccn } from '../policy/classification.ts';

export type Role = 'authority_admin' | 'authority_officer' | 'exporter' | 'recipient' | 'auditor';
export type OrgRole = 'authority' | 'exporter' | 'recipient' | 'auditor';
export type LicenceStatus = 'draft' | 'issued' | 'suspended' | 'revoked' | 'surrendered' | 'expired' | 'exhausted';
export type ShipmentStatus = 'booked' | 'shipped' | 'cleared' | 'delivered' | 'cancelled' | 'expired' | 'returned';
export type Custody = 'licensed' | 'in_transit' | 'delivered' | 'deployed' | 'decommissioned' | 'returned' | 'lost';
export type PartyRole = 'consignee' | 'end_user' | 'supplier';

export interface OrganisationRow {
  id: string;
  name: string;
  name_romanised: string | null;
  country: string;
  roles: OrgRole[];
  identifiers: Record<string, string>;
  address: string | null;
  /** The authority organisations that have verified this organisation's KYC, each for its own licences. */
  kyc_verified_by: string[];
  demo: boolean;
  created_seq: number;
}

export interface ProductRow {
  id: string;
  model: string;
  vendor: string;
  parameters: Record<string, unknown>;
  /** As classified when the product was registered (policy/classification.ts). */
  eccn: Eccn;
  /**
   * The authority organisation that registered it, and answers for its figures (the actor's
   * organisation in its product.register event). Null for products registered before
   * migration 036, which did not record it here; their event's actor does.
   */
  registered_by: string | null;
  demo: boolean;
  created_seq: number;
}

/** A licence condition that binds; `kind` selects how the ledger enforces it. */
export interface LicenceCondition {
  id: string;
  text: string;
  kind: 'obligation' | 'max_units_per_shipment' | 'end_user_kyc_required';
  value?: number;
}

export interface LicenceRow {
  id: string;
  version: number;
  reference: string;
  authority_org_id: string;
  direction: 'export' | 'import';
  holder_org_id: string;
  product_ids: string[];
  origin: string;
  destination: string;
  authorised_units: number;
  value_minor: number | null;
  currency: string | null;
  valid_from: string;
  valid_to: string;
  conditions: LicenceCondition[];
  riders: string[];
  status: LicenceStatus;
  allocated_units: number;
  shipped_units: number;
  demo: boolean;
  created_seq: number;
  updated_seq: number;
}

export interface AllocationRow {
  id: string;
  licence_id: string;
  recipient_org_id: string;
  units: number;
  period_start: string | null;
  period_end: string | null;
  reserved_units: number;
  shipped_units: number;
  demo: boolean;
  created_seq: number;
}

export interface SiteRow {
  id: string;
  org_id: string;
  name: string;
  province: string;
  city: string;
  /** ISO 3166-1 alpha-2: units are deployed here only if they were imported into it (migration 072). */
  country: string;
  latitude: number;
  longitude: number;
  capacity_units: number;
  deployed_units: number;
  demo: boolean;
  created_seq: number;
}

export interface ShipmentRow {
  id: string;
  exporter_org_id: string;
  recipient_org_id: string;
  product_id: string;
  origin: string;
  destination: string;
  export_allocation_id: string;
  import_allocation_id: string;
  units: number;
  status: ShipmentStatus;
  booked_at: string;
  deadline: string;
  reference: string | null;
  serial_count: number;
  demo: boolean;
  created_seq: number;
  updated_seq: number;
}

export interface UnitRow {
  serial: string;
  gpu_uuid: string | null;
  product_id: string;
  recipient_org_id: string;
  custody: Custody;
  shipment_id: string;
  site_id: string | null;
  updated_seq: number;
  /**
   * Whether the unit has shipped (custody left 'licensed' under some shipment; never unset,
   * migration 033). Until it has, a booking that lists it only claims it: when that booking
   * is cancelled or expires, the unit is free to be listed afresh by anyone.
   */
  ever_shipped: boolean;
  /**
   * Whether its GPU UUID went out with it, in a shipment that shipped (migration 037): from
   * then on the GPU UUID never changes. Until then a GPU UUID is a booking's claim, as a
   * listing is: let go when that booking is cancelled or expires, on any unit.
   */
  gpu_uuid_shipped: boolean;
}

export interface TokenRow {
  id: string;
  org_id: string;
  role: Role;
  label: string;
  secret_hash: string; // '\x' + hex, as bytea travels through JSON
  created_at: string;
  revoked_at: string | null;
}

export interface LicenceVersionRow {
  licence_id: string;
  version: number;
  snapshot: unknown;
  seq: number;
}

export interface LicencePartyRow {
  licence_id: string;
  org_id: string;
  role: PartyRole;
}

export const liveShipmentStatuses: readonly ShipmentStatus[] = ['booked', 'shipped', 'cleared'];
/** A booking that ended without shipping: it only claimed the units it listed (migration 033). */
export const unshippedEndStatuses: readonly ShipmentStatus[] = ['cancelled', 'expired'];
