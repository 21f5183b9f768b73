/**
 * Entries as one buffer, as readEntriesPacked reads them from a COPY: each one's length
 * (4 bytes, big-endian), a zero byte, then its bytes. The zero byte and the entry are RFC
 * 6962's leaf input (0x00 || entry), so the audit hashes each where it lies. One buffer (not a
 * slice of a shared pool) moves to another thread whole; the audit's workers unpack it there.
 * No pg here: a worker loads this.
 */
export interface PackedEntries {
  bytes: Uint8Array;
  count: number;
}

/** The entries, as views of the buffer. */
export function unpackEntries(packed: PackedEntries): Buffer[] {
  return unpack(packed, 1);
}

/** Each entry's leaf input, 0x00 || entry, as a view of the buffer. */
export function unpackLeafInputs(packed: PackedEntries): Buffer[] {
  return unpack(packed, 0);
}

function unpack(packed: PackedEntries, skip: 0 | 1): Buffer[] {
  const view = Buffer.from(packed.bytes.buffer, packed.bytes.byteOffset, packed.bytes.byteLength);
  const values: Buffer[] = new Array(packed.count);
  let offset = 0;
  for (let i = 0; i < packed.count; i += 1) {
    const length = view.readUInt32BE(offset);
    if (view[offset + 4] !== 0) throw new Error(`assertion failed: packed entry ${i} has no zero byte before it`);
    values[i] = view.subarray(offset + 4 + skip, offset + 5 + length);
    offset += 5 + length;
  }
  if (offset !== view.length) throw new Error(`assertion failed: ${packed.count} packed entries end at byte ${offset} of ${view.length}`);
  return values;
}
