/**
 * `chipledger check --replay`: the log's commands replayed in a database of its own on the
 * same server, and the state they make held to the database's. The replay's database is
 * dropped afterwards.
 */
import { expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { runCheck } from '../../test/support/check-command.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { asServerAdmin, databaseUrlOf } from '../../test/database.ts';
import { createScratchDatabase } from '../store/scratch-database.ts';
import { commitWithTriggersOff } from '../../test/support/tamper.ts';
import { differencesNamedMax } from '../store/state-diff.ts';

let database: TestDatabase;
let world: World;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const replayDatabases = async () => (await database.pool.query<{ count: number }>("SELECT count(*)::int AS count FROM pg_database WHERE datname LIKE 'chipledger\\_replay\\_%'")).rows[0]!.count;

it('replays every event, compares the states, says so, and leaves no database behind', async () => {
  const events = Number((await database.pool.query<{ size: string }>('SELECT size FROM log_head')).rows[0]!.size);
  const { code, lines } = await runCheck(database.url, {}, { replay: true });
  expect({ code, lines }).toEqual({
    code: 0,
    lines: [
      expect.stringMatching(/^Every invariant holds: no violations/),
      `The replay made all ${events} events again as the log records them, and the state was compared with what they make, row by row.`,
    ],
  });
  expect(await replayDatabases()).toBe(0);
});

it("lists what the log's events do not make (a licence's terms changed with its snapshot, by the owner with the triggers off), and exits 1", async () => {
  const licenceId = world.exportLicenceId;
  const change = (units: number) => commitWithTriggersOff(database.pool,
    ['UPDATE licences SET authorised_units = $2 WHERE id = $1', [licenceId, units]],
    ["UPDATE licence_versions SET snapshot = jsonb_set(snapshot::jsonb, '{authorised_units}', to_jsonb($2::int))::json WHERE licence_id = $1", [licenceId, units]]);
  await change(9_000);
  try {
    const { code, lines } = await runCheck(database.url, {}, { replay: true });
    expect(code).toBe(1);
    const text = lines.join('\n');
    expect(lines[0]).toMatch(/^2 invariant violation\(s\)/);
    expect(text).toMatch(new RegExp(`replay +licences ${licenceId} +authorised_units: the database holds 9000, the log's events make 1000`));
    expect(text).toMatch(new RegExp(`replay +licence_versions ${licenceId} / 1 +snapshot.authorised_units: the database holds 9000, the log's events make 1000`));
    // Without --replay the check finds nothing: the change kept every count in step.
    expect((await runCheck(database.url)).code).toBe(0);
  } finally {
    await change(1_000);
  }
  expect((await runCheck(database.url, {}, { replay: true })).code).toBe(0);
  expect(await replayDatabases()).toBe(0);
});

it('counts every differing row, also those past the ones it names (one line says how many more)', async () => {
  // Sites no event made, written with the triggers off and removed again: 23 rows of one
  // table differ, 20 are named and one line stands for the other 3.
  const siteIds = Array.from({ length: differencesNamedMax + 3 }, (_, at) => `SITE-HAND-${String(at).padStart(2, '0')}`);
  const { org_id: orgId, created_seq: seq } = (await database.pool.query<{ org_id: string; created_seq: string }>('SELECT id AS org_id, created_seq FROM organisations ORDER BY id LIMIT 1')).rows[0]!;
  await commitWithTriggersOff(database.pool, [`INSERT INTO sites (id, org_id, name, province, city, country, latitude, longitude, capacity_units, created_seq)
    SELECT id, $2, 'By hand', 'Beijing', 'Beijing', 'CN', 39.9, 116.4, 10, $3 FROM unnest($1::text[]) AS id`, [siteIds, orgId, seq]]);
  try {
    const { code, lines } = await runCheck(database.url, {}, { replay: true });
    expect(code).toBe(1);
    const text = lines.join('\n').split('\n');
    const replayed = text.filter((line) => /^replay +sites /.test(line));
    expect(replayed).toHaveLength(differencesNamedMax + 1);
    expect(replayed.at(-1)).toMatch(/^replay +sites +and 3 more rows of sites differ from what the log's events make$/);
    // Each site by hand breaks the re-check's event-rows once and differs from the replay once:
    // the count covers all of both (46), not the rows shown and one for each "more" line (42).
    expect(text[0]).toMatch(new RegExp(`^${2 * siteIds.length} invariant violation\\(s\\) `));
    // The heading's bound is the re-check's per invariant, and the replay's per table.
    expect(text[0]).toMatch(new RegExp(`, at most 20 of each invariant shown \\(replay: at most ${differencesNamedMax} of each table, the rest counted in its table's last row\\):$`));
  } finally {
    await commitWithTriggersOff(database.pool, ['DELETE FROM sites WHERE id = ANY ($1::text[])', [siteIds]]);
  }
  expect((await runCheck(database.url, {}, { replay: true })).code).toBe(0);
});

it('drops the replay databases a killed check left a day ago or more, and keeps younger ones, which a replay beside it may be making', async () => {
  const seconds = Math.floor(Date.now() / 1000);
  const left = `chipledger_replay_${seconds - 2 * 24 * 60 * 60}_0a0a0a0a0a0a`;
  const young = `chipledger_replay_${seconds - 60}_0b0b0b0b0b0b`;
  for (const name of [left, young]) await database.pool.query(`CREATE DATABASE ${name}`);
  try {
    expect((await runCheck(database.url, {}, { replay: true })).code).toBe(0);
    const names = (await database.pool.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'chipledger\\_replay\\_%' ORDER BY 1")).rows.map((row) => row.datname);
    expect(names).toEqual([young]);
  } finally {
    for (const name of [left, young]) await database.pool.query(`DROP DATABASE IF EXISTS ${name}`);
  }
});

it('makes its database migrated, taking any time ahead, and drops it', async () => {
  const scratch = await createScratchDatabase(databaseUrlOf('postgres'), 'chipledger-test-scratch');
  const name = (await scratch.pool.query<{ name: string; migrations: number }>('SELECT current_database() AS name')).rows[0]!.name;
  expect(name).toMatch(/^chipledger_replay_\d+_[0-9a-f]{12}$/);
  expect((await scratch.pool.query<{ count: number }>('SELECT count(*)::int AS count FROM schema_migrations')).rows[0]!.count).toBeGreaterThan(60);
  expect((await scratch.pool.query<{ value: string }>("SELECT current_setting('chipledger.clock_ahead_of_database_ms_max') AS value")).rows[0]!.value).not.toBe('');
  await scratch.drop();
  expect(await asServerAdmin(async (admin) => (await admin.query('SELECT FROM pg_database WHERE datname = $1', [name])).rowCount)).toBe(0);
});

