/**
 * `chipledger check`: the database's invariants and the transparency log's start-up check
 * as one list, and a log that fails its check listed, not crashed on. Its answer names the
 * database it read and how many events it covered, so a check of the wrong (empty) database
 * does not pass for the server's.
 */
import { describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../test/database.ts';
import { runCheck } from '../../test/support/check-command.ts';
import { worldPerFile, type World } from '../../test/world.ts';
import { TransparencyLog } from '../ledger/log/transparency-log.ts';
import { readHead } from '../store/tlog-tables.ts';
import { formatCheckpoint, formatKeyId, generateSignerKey, parseSignerKey, signNote } from '../tlog/index.ts';
import { violationsShownPerInvariantMax } from '../store/violations.ts';
import { checkedDatabase } from './admin.ts';
import type { Config } from './config.ts';
import { commitWithTriggersOff, withTriggerOff } from '../../test/support/tamper.ts';

let database: TestDatabase;
let world: World;
worldPerFile((made, madeDatabase) => {
  world = made;
  database = madeDatabase;
});

const check = () => runCheck(database.url);

describe('chipledger check', () => {
  it('says every invariant holds on an honest ledger', async () => {
    expect(world.exportLicenceId).toBeTruthy();
    const url = new URL(database.url);
    const events = (await database.pool.query<{ events: number }>('SELECT count(*) AS events FROM events')).rows[0]!.events;
    expect(events).toBeGreaterThan(1);
    expect(url.password).not.toBe('');
    const named = `${events} events in database ${url.pathname.slice(1)} on ${url.hostname}:${url.port || '5432'} (DATABASE_URL)`;
    expect(await check()).toEqual({ code: 0, lines: [`Every invariant holds: no violations (${named}).`] });
    expect(checkedDatabase({ database: { kind: 'embedded', dataDir: '/srv/x/.chipledger/pg' }, dataDir: '/srv/x/.chipledger' } as Config)).toBe('the embedded database of /srv/x/.chipledger');
    expect(checkedDatabase({ database: { kind: 'external', url: 'postgres:///ledger?host=/run/postgresql&password=secret' }, dataDir: '/x' } as Config)).toBe('database ledger on /run/postgresql:5432 (DATABASE_URL)');
  });

  it('lists a changed event as an invariant-5 violation, beside whatever else it finds, and exits 1', async () => {
    const flip = 'UPDATE events SET canonical = set_byte(canonical, 20, get_byte(canonical, 20) # 1) WHERE seq = 3';
    await database.pool.query(flip);
    try {
      const { code, lines } = await check();
      expect(code).toBe(1);
      expect(lines[0]).toMatch(/^2 invariant violation\(s\) \(\d+ events in database \S+ on \S+:\d+ \(DATABASE_URL\)\):$/);
      expect(lines.join('\n')).toMatch(/invariant-5 +log: leaf +transparency log check "leaf" failed/);
      // The flipped byte is in the actor's id: the row no longer says what the bytes say (057).
      expect(lines.join('\n')).toMatch(/event-columns +event 3 +its row says \S+ by \S+ .* but its canonical bytes/);
    } finally {
      await database.pool.query(flip); // the same flip undoes it
    }
    expect((await check()).code).toBe(0);
  });

  it('does not believe a re-check the owner replaced: it names the function, does not ask it, and exits 1 (s32 review)', async () => {
    // Before, the owner's one CREATE OR REPLACE made check say "Every invariant holds".
    const definition = (await database.pool.query<{ definition: string }>("SELECT pg_get_functiondef('ledger_violations()'::regprocedure) AS definition")).rows[0]!.definition;
    await database.pool.query(`CREATE OR REPLACE FUNCTION ledger_violations() RETURNS TABLE (invariant text, subject text, detail text)
      LANGUAGE sql STABLE AS $$ SELECT NULL::text, NULL::text, NULL::text WHERE false $$`);
    try {
      const { code, lines } = await check();
      expect(code).toBe(1);
      expect(lines[0]).toMatch(/^2 invariant violation\(s\) /);
      expect(lines.join('\n')).toMatch(/schema +ledger_violations\(\) +not this release's definition \(it was replaced\)/);
      expect(lines.join('\n')).toMatch(/schema +ledger_violations\(\) +not run: the database's functions above are not this release's/);
    } finally {
      await database.pool.query(definition);
    }
    expect((await check()).code).toBe(0);
  });

  it('lists a checkpoint row filed under another size than its note signs as an invariant-5 violation, and exits 1', async () => {
    // A log key of its own (this ledger signs nothing), its genuine note for size n and the
    // root of size n, filed as size n + 1.
    const origin = 'log.chipledger.test';
    const key = generateSignerKey(origin);
    const signer = parseSignerKey(key.signerKey);
    const keyId = formatKeyId(signer.keyId);
    const { size } = await readHead(database.pool);
    const root = await new TransparencyLog(database.pool).rootAt(size - 1);
    const note = signNote(formatCheckpoint({ origin, size: size - 1, rootHash: root, extensions: [] }), signer);
    await database.pool.query('INSERT INTO tlog_keys (key_id, verifier_key, first_size, announced_size) VALUES ($1, $2, 0, NULL)', [keyId, key.verifierKey]);
    await database.pool.query('INSERT INTO tlog_checkpoints (size, root, key_id, signed_note) VALUES ($1, $2, $3, $4)', [size, root, keyId, note]);
    try {
      const { code, lines } = await check();
      expect(code).toBe(1);
      expect(lines[0]).toMatch(/^1 invariant violation\(s\)/);
      expect(lines.join('\n')).toMatch(new RegExp(`invariant-5 +log: checkpoint-size +transparency log check "checkpoint-size" failed: checkpoint row ${size} signs size ${size - 1}; the log has ${size}`));
    } finally {
      await withTriggerOff(database.pool, 'tlog_checkpoints', () => database.pool.query('DELETE FROM tlog_checkpoints WHERE key_id = $1', [keyId]));
      await withTriggerOff(database.pool, 'tlog_keys', () => database.pool.query('DELETE FROM tlog_keys WHERE key_id = $1', [keyId]));
    }
    expect((await check()).code).toBe(0);
  });

  it("shows at most the bound of one invariant's violations, counts the rest exactly, still shows another invariant's, and exits 1", async () => {
    // A reader set of an organisation no event names, listing 45 seqs past the log's end: 45
    // event-readers violations. And a licence whose allocated units no longer add up
    // (invariant 1): one fewer than its allocations, written with the triggers that refuse it off.
    const flooded = violationsShownPerInvariantMax + 25;
    const firstSeq = 1_000_000;
    const licenceId = world.exportLicenceId;
    const allocatedBy = (units: number) => commitWithTriggersOff(database.pool, ['UPDATE licences SET allocated_units = allocated_units + $2 WHERE id = $1', [licenceId, units]]);
    let lowered = false;
    try {
      await database.pool.query('INSERT INTO event_reader_sets (org_id, first_seq, last_seq, offsets) VALUES ($1, $2, $3, $4)',
        ['ORG-FLOOD', firstSeq, firstSeq + flooded - 1, Array.from({ length: flooded }, (_, offset) => offset)]);
      await allocatedBy(-1);
      lowered = true;
      const { code, lines } = await check();
      expect(code).toBe(1);
      const rows = lines.join('\n').split('\n');
      const readers = rows.filter((row) => row.startsWith('event-readers '));
      // The first of the flood by seq, each named; the rest counted, exactly.
      expect(readers).toHaveLength(violationsShownPerInvariantMax);
      expect(readers.map((row) => row.split(/ +/)[1])).toEqual(Array.from({ length: violationsShownPerInvariantMax }, (_, offset) => String(firstSeq + offset)));
      expect(readers[0]).toMatch(/a reader set of ORG-FLOOD lists it, but the event does not name ORG-FLOOD$/);
      expect(lines).toContain('… and 25 more violations of event-readers (45 in all).');
      // The flood hides no other invariant.
      expect(rows.filter((row) => row.startsWith('invariant-1 '))).toEqual([expect.stringMatching(new RegExp(`^invariant-1 +${licenceId} +allocations \\d+, recorded \\d+, authorised \\d+$`))]);
      // The count covers every violation, shown or not: the table's rows and the 25 it leaves out.
      const tableRows = rows.slice(rows.indexOf(rows.find((row) => row.startsWith('─'))!) + 1).filter((row) => !row.startsWith('… '));
      expect(rows[0]).toMatch(new RegExp(`^\\d+ invariant violation\\(s\\) \\(\\d+ events in database \\S+ on \\S+:\\d+ \\(DATABASE_URL\\)\\), at most ${violationsShownPerInvariantMax} of each invariant shown:$`));
      expect(Number(rows[0]!.split(' ')[0])).toBe(tableRows.length + 25);
    } finally {
      if (lowered) await allocatedBy(1);
      await database.pool.query("DELETE FROM event_reader_sets WHERE org_id = 'ORG-FLOOD'");
    }
    expect((await check()).code).toBe(0);
  });
});
