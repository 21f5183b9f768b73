/**
 * Serial manifests: which physical units travel in a shipment (invariant 4: a serial is
 * in at most one live shipment). A manifest is all or nothing: one bad serial refuses
 * the whole list, naming it.
 */
import { refuse, formatUnits, type CommandContext, type Handler } from '../handler.ts';
import type { ShipmentRow } from '../rows.ts';
import type { BatchKeys } from '../../store/ledger-tables.ts';
import { checkDeadline, shipmentOrgIds, visibleShipment } from './shipments.ts';

export type ManifestEntry = string | { serial: string; gpuUuid?: string | undefined };

const serialOf = (entry: ManifestEntry): string => (typeof entry === 'string' ? entry : entry.serial);

export function manifestKeys(entries: ManifestEntry[], keys: BatchKeys): void {
  for (const entry of entries) keys.serials.add(serialOf(entry));
}

/** Units that may be listed again: never shipped, or shipped and returned. */
const reshippable = new Set(['licensed', 'returned']);

/**
 * Lists the serials in the shipment, checking each as it goes; a refusal undoes those
 * listed before it (the command's rollback). Each serial is looked up once: a serial this
 * command already listed is live in this shipment with a unit of this command's seq.
 */
export function attachSerials(context: CommandContext, shipment: ShipmentRow, entries: ManifestEntry[]): number {
  const { state, seq } = context;
  const room = shipment.units - shipment.serial_count;
  if (entries.length > room) {
    throw refuse.conflict('manifest-size', `shipment ${shipment.id} has room for ${formatUnits(room)} more serials; ${formatUnits(entries.length)} given`, { room, given: entries.length });
  }
  const uuids = new Set<string>();
  const listing = state.listing(shipment.id);
  entries.forEach((entry, index) => {
    const serial = serialOf(entry);
    const unit = state.get('units', serial);
    const live = state.liveShipmentOf(serial);
    if (live !== undefined) {
      if (live === shipment.id && unit?.shipment_id === shipment.id && unit.updated_seq === seq) {
        throw refuse.conflict('invariant-4', `serial ${serial} appears twice in the manifest (entry ${index + 1})`, { serial, entry: index + 1 });
      }
      throw refuse.conflict('invariant-4', `serial ${serial} is already in live shipment ${live}`, { serial, shipmentId: live });
    }
    if (unit && !reshippable.has(unit.custody)) {
      throw refuse.conflict('invariant-4', `serial ${serial} is ${unit.custody}${unit.site_id ? ` at site ${unit.site_id}` : ''}; it cannot be listed in a shipment`, { serial, custody: unit.custody });
    }
    const given = typeof entry === 'string' ? undefined : entry.gpuUuid;
    if (given !== undefined) {
      if (uuids.has(given)) throw refuse.conflict('invariant-4', `GPU UUID ${given} appears twice in the manifest`, { gpuUuid: given });
      uuids.add(given);
    }
    // A GPU UUID clash with another unit is left to the database's unique index: it is not
    // knowable without loading every unit.
    listing.add({
      serial,
      gpu_uuid: given ?? unit?.gpu_uuid ?? null,
      product_id: shipment.product_id,
      recipient_org_id: shipment.recipient_org_id,
      custody: 'licensed',
      shipment_id: shipment.id,
      site_id: null,
      updated_seq: seq,
    }, unit);
  });
  const current = state.get('shipments', shipment.id)!;
  state.update('shipments', current, { serial_count: current.serial_count + entries.length, updated_seq: seq });
  return entries.length;
}

export const manifestAttach: Handler<'manifest.attach'> = {
  kind: 'manifest.attach',
  keys(input, keys) {
    keys.shipments.add(input.shipmentId);
    manifestKeys(input.serials, keys);
  },
  run(context, input) {
    const shipment = visibleShipment(context.state, context.actor, input.shipmentId);
    if (shipment.exporter_org_id !== context.actor.orgId) throw refuse.forbidden(`only the exporter ${shipment.exporter_org_id} may attach serials to shipment ${shipment.id}`);
    if (shipment.status !== 'booked') throw refuse.conflict('shipment-status', `couldn't attach serials to shipment ${shipment.id}: it is ${shipment.status}, not booked`);
    checkDeadline(context, shipment, 'attach serials to');
    const added = attachSerials(context, shipment, input.serials);
    const serialCount = shipment.serial_count + added;
    return {
      subjectId: shipment.id,
      orgIds: shipmentOrgIds(shipment),
      effects: { added, serialCount },
      answer: { shipmentId: shipment.id, added, serialCount },
    };
  },
};
