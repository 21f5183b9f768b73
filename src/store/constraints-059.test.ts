/**
 * Migration 059: a token row is made only with its token.create event, in the same
 * transaction. s26's attack review inserted a token by hand, as the writer, and it served the
 * API at once; only `chipledger check` named it afterwards.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { firstRefusal } from '../../test/support/rolled-back.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { systemActor } from '../ledger/permissions.ts';

let database: TestDatabase;
let world: World;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const byHand = (id: string, orgId: string): [string, unknown[]] =>
  [`INSERT INTO tokens (id, org_id, role, label, secret_hash, created_at) VALUES ($1, $2, 'authority_admin', 'by hand', sha256(convert_to($1, 'UTF8')), now())`, [id, orgId]];

describe('a token is made by its event (059)', () => {
  it('refuses a token inserted by hand, as the writer, whatever its id', async () => {
    const orgId = world.actors.bis.orgId;
    const { rows: [head] } = await database.pool.query<{ size: string }>('SELECT size FROM log_head');
    const made = (id: string, seq: string) => ({
      code: '23503',
      message: `token ${id} was not made by its token.create event (event ${seq} of kind token.create with subject ${id}, in the same transaction): tokens are made through the ledger only`,
    });
    expect(await firstRefusal(database.writerPool, byHand(`TOK-${head!.size}`, orgId))).toEqual(made(`TOK-${head!.size}`, head!.size));
    expect(await firstRefusal(database.writerPool, byHand('TOK-by-hand', orgId))).toEqual(made('TOK-by-hand', '(none: the id is not TOK-<seq>)'));
    // An existing event of another kind, under a token's id of its seq.
    const { rows: [licence] } = await database.pool.query<{ seq: string }>("SELECT seq FROM events WHERE kind = 'licence.create' LIMIT 1");
    expect(await firstRefusal(database.writerPool, byHand(`TOK-${licence!.seq}`, orgId))).toEqual(made(`TOK-${licence!.seq}`, licence!.seq));
  });

  it('takes a token the ledger makes, with its event in the same batch', async () => {
    const made = await world.run('token.create', { organisationId: world.actors.alpha.orgId, role: 'recipient', label: 'through the ledger' }, systemActor);
    expect(made.tokenId).toMatch(/^TOK-\d+$/);
    expect((await database.pool.query('SELECT 1 FROM tokens WHERE id = $1', [made.tokenId])).rowCount).toBe(1);
  });
});
