/**
 * Many fresh worlds, fast: buildWorld runs once into a template database, and each
 * fresh world is a copy of it (CREATE DATABASE ... TEMPLATE), opened with its own pool,
 * ledger and clock. Ids are the same in every copy: the ledger names rows after their
 * event's sequence number, and the copies share their history.
 */
import { inject } from 'vitest';
import { randomBytes } from 'node:crypto';
import { ManualClock } from '../../src/core/clock.ts';
import { Ledger } from '../../src/ledger/ledger.ts';
import type { Actor } from '../../src/ledger/permissions.ts';
import type { CommandKind, CommandRequest } from '../../src/ledger/schemas.ts';
import { createPool, type Pool } from '../../src/store/pool.ts';
import { migrate } from '../../src/store/migrate.ts';
import { buildWorld, expectOk, type World } from '../world.ts';
import { allowClocksAhead, asServerAdmin, databaseUrlOf } from '../database.ts';
import { testWriterRole, testWriterUrl } from '../writer.ts';
import { testSealingKey } from './sealing-key.ts';

export interface FreshWorld {
  world: World;
  /** Logs in as the tables' owner, for what a test does by hand (test/database.ts). */
  pool: Pool;
  /** Logs in as the test writer, as the world's ledger does. */
  writerPool: Pool;
  /** The owner's URL. */
  url: string;
  drop(): Promise<void>;
}

export interface WorldTemplate {
  fresh(): Promise<FreshWorld>;
  drop(): Promise<void>;
}

/** buildWorld's clock starts here; copies start from the same instant. */
const worldStart = '2026-02-01T00:00:00Z';

export async function createWorldTemplate(options: Parameters<typeof buildWorld>[1] & { prepare?: (world: World) => Promise<void> } = {}): Promise<WorldTemplate> {
  const templateName = `tpl_${randomBytes(6).toString('hex')}`;
  await asServerAdmin(async (client) => {
    await client.query(`CREATE DATABASE ${templateName}`);
    await allowClocksAhead(client, templateName);
  });
  const templatePool = createPool({ url: databaseUrlOf(templateName), connectionsMax: 4, applicationName: 'chipledger-test-template' });
  let shape: Omit<World, 'ledger' | 'clock' | 'run'>;
  try {
    await migrate(templatePool, { writer: { role: testWriterRole } });
    const built = await buildWorld(templatePool, options);
    await options.prepare?.(built);
    await built.ledger.close();
    const { ledger: _ledger, clock: _clock, run: _run, ...rest } = built;
    shape = rest;
  } finally {
    await templatePool.end();
  }
  return {
    async fresh() {
      const name = `t_${randomBytes(6).toString('hex')}`;
      await asServerAdmin(async (client) => {
        await client.query(`CREATE DATABASE ${name} TEMPLATE ${templateName}`);
        await allowClocksAhead(client, name);
        // A copy keeps its tables' grants but not the database's own: as the migrations left the template.
        await client.query(`REVOKE TEMPORARY ON DATABASE ${name} FROM PUBLIC`);
      });
      const url = databaseUrlOf(name);
      // A copy keeps its template's table grants: the writer's rights come with it.
      const writerPool = createPool({ url: testWriterUrl(inject('databaseUrl'), name), connectionsMax: 10, applicationName: 'chipledger-test-writer' });
      const pool = createPool({ url, connectionsMax: 4, applicationName: 'chipledger-test' });
      const clock = new ManualClock(worldStart);
      const ledger = await Ledger.open({ pool: writerPool, clock, logSealingKey: testSealingKey });
      const run = async <K extends CommandKind>(kind: K, input: CommandRequest<K>, actor: Actor, key?: string) => expectOk(await ledger.submit(kind, input, actor, key));
      return {
        world: { ...shape, ledger, clock, run },
        pool,
        writerPool,
        url,
        async drop() {
          // A stuck sequencer never flushes: give it a moment, then drop regardless.
          await Promise.race([ledger.close(), new Promise((done) => setTimeout(done, 1_000))]);
          await writerPool.end();
          await pool.end();
          await asServerAdmin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
        },
      };
    },
    async drop() {
      await asServerAdmin((client) => client.query(`DROP DATABASE IF EXISTS ${templateName} WITH (FORCE)`));
    },
  };
}
