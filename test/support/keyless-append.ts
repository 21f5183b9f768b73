/**
 * A batch appended by a process that does not hold the log's key, as the writer role's connection
 * alone could append one: what sealed heads (src/ledger/log/head-seal.ts) keep the log from taking.
 */
import { canonicalBytes, eventBody } from '../../src/ledger/events.ts';
import { systemActor } from '../../src/ledger/permissions.ts';
import { TransparencyLog } from '../../src/ledger/log/transparency-log.ts';
import { openAtHeadSql } from '../../src/store/head-lock.ts';
import { writeBatchAndCommit } from '../../src/store/batch-writes.ts';
import { readHead } from '../../src/store/tlog-tables.ts';
import type { Pool, PoolClient } from '../../src/store/pool.ts';

/**
 * One event appended as the ledger appends a batch (its row, leaf, tiles and head in one
 * transaction, at the head it read), by a process that does not hold the log key: the head it
 * leaves has no seal. `whileLocked` runs while the batch holds the head's lock, before it writes (given the batch's
 * client, to keep it from sitting idle past the lock's idle bound).
 */
export async function appendWithoutKey(pool: Pool, kind: string, whileLocked?: (client: PoolClient) => Promise<void>): Promise<void> {
  const client = await pool.connect();
  try {
    const head = await readHead(client);
    await client.query(openAtHeadSql(head));
    await whileLocked?.(client);
    const at = new Date().toISOString();
    const canonical = canonicalBytes(eventBody(head.size, at, kind, systemActor, null, {}, {}));
    const log = new TransparencyLog(pool);
    const event = { seq: head.size, at, kind, actor: systemActor.id, subject_id: null, org_ids: [], canonical };
    await writeBatchAndCommit(client, { inserted: {}, updated: {}, unitsChanges: [], unitStages: [], replacedPartiesOf: [], events: [event], idempotency: [] }, async () => {
      const appended = await log.append(client, head, [{ seq: event.seq, canonical }]);
      return { tiles: appended.tiles, head: { size: head.size + 1, root: appended.root }, seal: null };
    });
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
