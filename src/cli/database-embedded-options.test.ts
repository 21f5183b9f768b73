import { describe, expect, it } from 'vitest';
import { readConfig } from './config.ts';
import { embeddedOptions } from './database.ts';

describe("the data dir's PostgreSQL", () => {
  it("is started on any free port but the API's (serve listens there only after PostgreSQL is up)", () => {
    const read = readConfig({ CHIPLEDGER_PORT: '40329', CHIPLEDGER_DATA_DIR: '/tmp/chipledger-embedded-options' }, {}, '/tmp');
    if (!read.ok) throw new Error(read.problems.join('; '));
    const options = embeddedOptions(read.config, { exclusive: true }, '/tmp/chipledger-embedded-options/pg');
    expect(options).toMatchObject({ dataDir: '/tmp/chipledger-embedded-options/pg', durable: true, ownProcessGroup: true, avoidPorts: [40329] });
    expect(options.port).toBeUndefined();
  });
});
