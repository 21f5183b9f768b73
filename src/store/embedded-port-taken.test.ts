/**
 * The embedded PostgreSQL when the port chosen for it is taken before it listens: a port probed
 * free is free only then, and initdb alone takes seconds. A port of its own choosing is chosen
 * again; a configured one is the operator's, and its start fails, naming it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedPostgresError, findFreePort, startEmbeddedPostgres, type EmbeddedDatabase } from './embedded.ts';

const folder = mkdtempSync(join(tmpdir(), 'chipledger-embedded-port-'));
let taken: Server;
let takenPort: number;
const running: EmbeddedDatabase[] = [];

beforeAll(async () => {
  taken = createServer();
  await new Promise<void>((done) => taken.listen(0, '127.0.0.1', done));
  takenPort = (taken.address() as { port: number }).port;
});
afterAll(async () => {
  await Promise.all(running.map((database) => database.stop().catch(() => {})));
  await new Promise((done) => taken.close(done));
  rmSync(folder, { recursive: true, force: true });
});

describe('the embedded PostgreSQL on a port taken before it listens', () => {
  it('starts on another port it chooses, for a fresh cluster and for one that exists', async () => {
    const dataDir = join(folder, 'chosen');
    for (const start of ['fresh', 'existing']) {
      const offered: number[] = [];
      // The port a start chooses is taken every time it is first asked; the next one is free.
      const choosePort = async (avoid: readonly number[]) => {
        const port = offered.length % 2 === 0 ? takenPort : await findFreePort(avoid);
        offered.push(port);
        return port;
      };
      const database = await startEmbeddedPostgres({ dataDir, durable: false, choosePort });
      running.push(database);
      const port = Number(new URL(database.url).port);
      expect(port, start).not.toBe(takenPort);
      expect(offered.at(-1), start).toBe(port);
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      expect((await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one).toBe(1);
      await client.end();
      await database.stop();
      running.pop();
    }
  });

  it('fails on a configured port that is taken, naming it', async () => {
    await expect(startEmbeddedPostgres({ dataDir: join(folder, 'configured'), durable: false, port: takenPort }))
      .rejects.toThrow(new RegExp(`couldn't start the embedded PostgreSQL in \\S+ on port ${takenPort} .*(could not bind|already in use)`, 'is'));
    await expect(startEmbeddedPostgres({ dataDir: join(folder, 'configured'), durable: false, port: takenPort })).rejects.toBeInstanceOf(EmbeddedPostgresError);
  });
});
