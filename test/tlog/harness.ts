/**
 * A real server for the log CLI tests: a test database with the small world, a few hundred
 * booked shipments, a Ledger with a log signing key, and the HTTP API listening on
 * 127.0.0.1 at a free port. Also an Output that keeps what commands print.
 */
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { Ledger } from '../../src/ledger/ledger.ts';
import { systemActor } from '../../src/ledger/permissions.ts';
import { buildServer } from '../../src/server/app.ts';
import { createPool, type Pool } from '../../src/store/pool.ts';
import type { LogCommandDeps } from '../../src/cli/log/commands.ts';
import { createTestDatabase, type TestDatabase } from '../database.ts';
import { buildWorld, type World } from '../world.ts';
import { testSealingKey } from '../support/sealing-key.ts';

export interface LogServer {
  url: string;
  ledger: Ledger;
  pool: Pool;
  app: FastifyInstance;
  close(): Promise<void>;
}

export interface Harness {
  database: TestDatabase;
  world: World;
  tokens: { auditor: string; recipient: string };
  book(count: number): Promise<void>;
  /**
   * A Ledger with the signing key and a server over it; signs a checkpoint of the current
   * head. `keys` replaces the harness's key: a new key with the current one as previous
   * rotates the log's key.
   */
  serve(keys?: { signerKey: string; previousSignerKey?: string }): Promise<LogServer>;
  close(): Promise<void>;
}

/** `licenceUnits`: the world's licences (buildWorld's default books about 500 shipments of one unit). */
export async function startHarness(options: { signerKey: string; witnessKeys: string[]; events: number; licenceUnits?: number }): Promise<Harness> {
  const database = await createTestDatabase();
  const world = await buildWorld(database.pool, options.licenceUnits === undefined ? {} : { licenceUnits: options.licenceUnits });
  const tokens = { auditor: '', recipient: '' };
  for (const [name, actor] of [['auditor', world.actors.auditor], ['recipient', world.actors.beta]] as const) {
    const answer = await world.ledger.submit('token.create', { organisationId: actor.orgId, role: actor.role, label: name }, systemActor);
    tokens[name] = String(answer.ok && answer.body.secret);
  }
  const book = async (count: number) => {
    const answers = await Promise.all(Array.from({ length: count }, () => world.ledger.submit('shipment.book', {
      exportAllocationId: world.allocations.alphaExport, importAllocationId: world.allocations.alphaImport, productId: world.productId, units: 1, deadline: '2026-06-01T00:00:00Z',
    }, world.actors.exporter)));
    const refused = answers.find((answer) => !answer.ok);
    if (refused && !refused.ok) throw new Error(`booking refused: ${refused.error.message}`);
  };
  await book(options.events);
  const servers: LogServer[] = [];
  const serve = async (keys: { signerKey: string; previousSignerKey?: string } = { signerKey: options.signerKey }): Promise<LogServer> => {
    const pool = createPool({ url: database.url, connectionsMax: 6, applicationName: 'log-cli-server' });
    const ledger = await Ledger.open({
      pool, clock: world.clock, logSealingKey: testSealingKey, logSignerKey: keys.signerKey, ...(keys.previousSignerKey ? { logPreviousSignerKey: keys.previousSignerKey } : {}), checkpointIntervalMs: 3_600_000,
    });
    await ledger.checkpointer!.checkpointNow();
    const app = await buildServer({ ledger, pool, logger: false, witnessKeys: options.witnessKeys });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    const server: LogServer = {
      url: `http://127.0.0.1:${port}`,
      ledger,
      pool,
      app,
      async close() {
        servers.splice(servers.indexOf(server), 1);
        await app.close();
        await ledger.close();
        await pool.end();
      },
    };
    servers.push(server);
    return server;
  };
  return {
    database, world, tokens, book, serve,
    async close() {
      for (const server of [...servers]) await server.close();
      await world.ledger.close();
      await database.drop();
    },
  };
}

export interface Captured {
  out: string[];
  err: string[];
  deps: LogCommandDeps;
}

/** Deps whose output is kept; `sleep` runs `between` instead of waiting (monitor rounds). */
export function captured(between: () => Promise<void> = async () => {}, now = () => Date.parse('2026-02-01T00:00:00Z')): Captured {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    deps: {
      output: { out: (line) => void out.push(line), err: (line) => void err.push(line), errStream: { isTTY: false, write: (text) => err.push(text) > 0 } },
      now,
      sleep: between,
    },
  };
}
