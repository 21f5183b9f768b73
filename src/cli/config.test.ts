import { describe, expect, it } from 'vitest';
import { limits } from '../core/limits.ts';
import { formatVerifierKey, generateCosignerKey, generateSignerKey } from '../tlog/index.ts';
import { apiToken, formatProblems, readConfig, settings } from './config.ts';
import { fetchBlockedPorts } from './fetch.ts';

const cwd = '/srv/chipledger';
const witness = generateCosignerKey('witness.example');
const signer = generateSignerKey('log.example');

function problemsOf(env: NodeJS.ProcessEnv, flags = {}): string[] {
  const result = readConfig(env, flags, cwd);
  if (result.ok) expect.fail('expected configuration problems');
  return result.problems;
}

describe('readConfig', () => {
  it('has defaults for everything but the token', () => {
    const result = readConfig({ PATH: '/usr/bin', HOME: '/root' }, {}, cwd);
    expect(result).toEqual({
      ok: true,
      config: {
        database: { kind: 'embedded', dataDir: '/srv/chipledger/.chipledger/pg' },
        dataDir: '/srv/chipledger/.chipledger',
        host: '127.0.0.1',
        port: 8080,
        logLevel: 'info',
        sweepIntervalMs: 5000,
        proofCacheTiles: 4096,
        connectionsPerAddressMax: 256,
        api: { url: 'http://127.0.0.1:8080', token: undefined },
        log: { keyFile: undefined, signerKey: undefined, previousKeyFile: undefined, witnessKeys: [] },
      },
    });
  });

  it('reads every variable, and flags win over the environment', () => {
    const result = readConfig({
      DATABASE_URL: 'postgres://ledger:secret@db.internal:5432/chipledger',
      CHIPLEDGER_DATA_DIR: 'var/data',
      CHIPLEDGER_HOST: '0.0.0.0',
      CHIPLEDGER_PORT: '9000',
      CHIPLEDGER_LOG_LEVEL: 'warn',
      CHIPLEDGER_SWEEP_INTERVAL_MS: '250',
      CHIPLEDGER_PROOF_CACHE_TILES: '16384',
      CHIPLEDGER_CONNECTIONS_PER_ADDRESS_MAX: '2048',
      CHIPLEDGER_URL: 'https://ledger.example/',
      CHIPLEDGER_TOKEN: 'clt_TOK-7_abcDEF-_123',
      CHIPLEDGER_LOG_KEY_FILE: 'keys/log.key',
      CHIPLEDGER_LOG_WITNESSES: ` ${witness.verifierKey} ,`,
    }, { port: '9100' }, cwd);
    expect(result.ok && result.config).toEqual({
      database: { kind: 'external', url: 'postgres://ledger:secret@db.internal:5432/chipledger' },
      dataDir: '/srv/chipledger/var/data',
      host: '0.0.0.0',
      port: 9100,
      logLevel: 'warn',
      sweepIntervalMs: 250,
      proofCacheTiles: 16384,
      connectionsPerAddressMax: 2048,
      api: { url: 'https://ledger.example', token: 'clt_TOK-7_abcDEF-_123' },
      log: { keyFile: '/srv/chipledger/keys/log.key', signerKey: undefined, previousKeyFile: undefined, witnessKeys: [witness.verifierKey] },
    });
  });

  it('points clients at loopback when the server listens on every interface', () => {
    const result = readConfig({ CHIPLEDGER_HOST: '0.0.0.0', CHIPLEDGER_PORT: '8181' }, {}, cwd);
    expect(result.ok && result.config.api.url).toBe('http://127.0.0.1:8181');
  });

  it('lists every problem at once, each naming its source', () => {
    const problems = problemsOf({
      DATABASE_URL: 'mysql://root@localhost/db',
      CHIPLEDGER_PORT: '80800',
      CHIPLEDGER_LOG_LEVEL: 'verbose',
      CHIPLEDGER_SWEEP_INTERVAL_MS: '10',
      CHIPLEDGER_URL: 'ftp://example',
      CHIPLEDGER_TOKEN: 'Bearer abc',
      CHIPLEDGER_PROT: '8080',
      CHIPLEDGER_HOST: 'bad host',
      CHIPLEDGER_DATA_DIR: ' ',
      CHIPLEDGER_PROOF_CACHE_TILES: '10',
      CHIPLEDGER_CONNECTIONS_PER_ADDRESS_MAX: '4097',
    });
    expect(problems).toHaveLength(11);
    expect(problems.join('\n')).toMatch(/CHIPLEDGER_CONNECTIONS_PER_ADDRESS_MAX: must be from 1 to 4096/);
    expect(problems.join('\n')).toMatch(/CHIPLEDGER_PROOF_CACHE_TILES: must be from 64 to 1048576/);
    expect(problems.join('\n')).toMatch(/CHIPLEDGER_PROT: unknown setting/);
    expect(problems.join('\n')).toMatch(/DATABASE_URL: must use postgres:\/\//);
    expect(problems.join('\n')).toMatch(/CHIPLEDGER_PORT: must be from 1 to 65535 \(got "80800"\)/);
    expect(problems.join('\n')).toMatch(/CHIPLEDGER_LOG_LEVEL: must be one of fatal, error/);
    expect(problems.join('\n')).toMatch(/CHIPLEDGER_SWEEP_INTERVAL_MS: must be from 100 to 3600000/);
    expect(problems.join('\n')).toMatch(/CHIPLEDGER_URL: must use http:\/\/ or https:\/\//);
    expect(problems.join('\n')).toMatch(/CHIPLEDGER_TOKEN: must be a chipledger token/);
    expect(problems.join('\n')).toMatch(/CHIPLEDGER_HOST: must be a host name/);
    expect(problems.join('\n')).toMatch(/CHIPLEDGER_DATA_DIR: must not be empty/);
  });

  it('never echoes secrets back', () => {
    const problems = problemsOf({ DATABASE_URL: 'mysql://root:hunter2@localhost/db', CHIPLEDGER_TOKEN: 'hunter3 ' });
    expect(problems.join('\n')).not.toMatch(/hunter/);
  });

  it('refuses a user name or password in CHIPLEDGER_URL, and never echoes the password', () => {
    // fetch refuses such a URL with an error that quotes it whole, so a client command would print it.
    expect(problemsOf({ CHIPLEDGER_URL: 'https://bob:hunter4@ledger.example' })).toEqual([
      'CHIPLEDGER_URL: must not hold a user name or password; client commands authenticate with CHIPLEDGER_TOKEN (got "https://bob:(hidden)@ledger.example/")',
    ]);
    expect(problemsOf({ CHIPLEDGER_URL: 'ftp://bob:hunter5@ledger.example' }).join('\n')).not.toMatch(/hunter/);
    // Nor when the URL does not parse, a bad port or a space in the host: the user part is hidden whole.
    expect(problemsOf({ CHIPLEDGER_URL: 'https://alice:hunter6@ledger.example:99999' })).toEqual([
      'CHIPLEDGER_URL: must be a URL such as http://127.0.0.1:8080 (got "https://(hidden)@ledger.example:99999")',
    ]);
    expect(problemsOf({ CHIPLEDGER_URL: 'https://alice:hunter7@ledger example/' }).join('\n')).not.toMatch(/hunter/);
  });

  it('refuses a CHIPLEDGER_HOST no URL can name, from which the client commands\' default URL would be made', () => {
    for (const host of ['1.2.3.4.5', 'a:b', '::1::2']) {
      expect(problemsOf({ CHIPLEDGER_HOST: host }), host).toEqual(['CHIPLEDGER_HOST: must be a host name or IP address such as 127.0.0.1 or 0.0.0.0 (got "' + host + '")']);
    }
    for (const host of ['localhost', '::1', '::', 'ledger-1.example', '10.0.0.7']) expect(readConfig({ CHIPLEDGER_HOST: host }, {}, cwd).ok, host).toBe(true);
  });

  it('takes CHIPLEDGER_URL as its parsed origin and path, without trailing slashes', () => {
    const urlOf = (raw: string) => {
      const result = readConfig({ CHIPLEDGER_URL: raw }, {}, cwd);
      return result.ok ? result.config.api.url : expect.fail(result.problems.join('\n'));
    };
    expect(urlOf('http://127.0.0.1:19437')).toBe('http://127.0.0.1:19437');
    expect(urlOf('HTTPS://Ledger.Example:443/api//')).toBe('https://ledger.example/api');
    expect(urlOf('http://[::1]:8080/')).toBe('http://[::1]:8080');
    expect(urlOf('https://ledger.example/a/../chipledger/')).toBe('https://ledger.example/chipledger');
  });

  it('refuses whitespace, and a query or fragment even when bare, anywhere in CHIPLEDGER_URL', () => {
    // The URL parser drops spaces at the ends, and a bare ? or # leaves search and hash empty:
    // both were taken, and every client command then failed ("Invalid URL", GET /?/v1/...).
    for (const raw of ['http://127.0.0.1:19437 ', ' http://127.0.0.1:19437', 'http://127.0.0.1:19437/\t', 'http://127.0.0.1:19437\n']) {
      expect(problemsOf({ CHIPLEDGER_URL: raw }), JSON.stringify(raw)).toEqual([`CHIPLEDGER_URL: must not contain spaces or other whitespace (got ${JSON.stringify(raw)})`]);
    }
    for (const raw of ['http://127.0.0.1:19437?', 'http://127.0.0.1:19437#', 'http://127.0.0.1:19437/?x=1', 'http://127.0.0.1:19437/api#top']) {
      expect(problemsOf({ CHIPLEDGER_URL: raw }), raw).toEqual([`CHIPLEDGER_URL: must not have a query or fragment ('?' or '#') (got ${JSON.stringify(raw)})`]);
    }
  });

  it('refuses the ports fetch refuses (the Fetch standard\'s bad ports), for serve and in CHIPLEDGER_URL', () => {
    const rule = 'must not use a port that fetch refuses to connect to (a "bad port" of the Fetch standard, such as 6000 or 10080): client commands could not reach the server there; choose another port';
    expect(problemsOf({ CHIPLEDGER_PORT: '6000' })).toEqual([`CHIPLEDGER_PORT: ${rule} (got "6000")`]);
    expect(problemsOf({}, { port: '10080' })).toEqual([`--port: ${rule} (got "10080")`]);
    expect(problemsOf({ CHIPLEDGER_URL: 'http://ledger.example:5060/' })).toEqual([`CHIPLEDGER_URL: ${rule} (got "http://ledger.example:5060/")`]);
    for (const port of ['5061', '6665', '6666', '6667', '6668', '6669', '6697', '10080', '22', '25']) {
      expect(problemsOf({ CHIPLEDGER_PORT: port }), port).toHaveLength(1);
      expect(problemsOf({ CHIPLEDGER_URL: `http://127.0.0.1:${port}` }), port).toHaveLength(1);
    }
    expect(readConfig({ CHIPLEDGER_PORT: '6001', CHIPLEDGER_URL: 'http://127.0.0.1:10081' }, {}, cwd).ok).toBe(true);
    // The list is the standard's, as Node's fetch keeps it: every port on it fails "bad port".
    expect(fetchBlockedPorts.size).toBe(82);
  });

  it('refuses numbers that are not plain whole numbers', () => {
    for (const port of ['', '8080.5', '-1', '0x50', ' 8080', '0', '1e3']) {
      expect(problemsOf({ CHIPLEDGER_PORT: port }), port).toHaveLength(1);
    }
  });

  it('names the flag when a flag is wrong', () => {
    expect(problemsOf({ CHIPLEDGER_PORT: '9000' }, { port: 'abc' })).toEqual(['--port: must be a whole number from 1 to 65535 (got "abc")']);
  });

  it('ignores variables that are not ours', () => {
    expect(readConfig({ CHIPLEDGERX: '1', TEST_DATABASE_URL: 'x', NODE_ENV: 'test' }, {}, cwd).ok).toBe(true);
  });

  it('documents every setting it reads', () => {
    const names = settings.map((setting) => setting.variable);
    expect(names).toEqual(['DATABASE_URL', 'DATABASE_WRITER_URL', 'CHIPLEDGER_DATA_DIR', 'CHIPLEDGER_HOST', 'CHIPLEDGER_PORT', 'CHIPLEDGER_LOG_LEVEL', 'CHIPLEDGER_SWEEP_INTERVAL_MS', 'CHIPLEDGER_PROOF_CACHE_TILES', 'CHIPLEDGER_CONNECTIONS_PER_ADDRESS_MAX', 'CHIPLEDGER_URL', 'CHIPLEDGER_TOKEN', 'CHIPLEDGER_LOG_KEY_FILE', 'CHIPLEDGER_LOG_SIGNER_KEY', 'CHIPLEDGER_LOG_PREVIOUS_KEY_FILE', 'CHIPLEDGER_LOG_WITNESSES']);
    for (const setting of settings) expect(setting.description.length).toBeGreaterThan(10);
  });
});

describe('log key settings', () => {
  it('takes a signer key text, and refuses a bad key, a bad witness key, or two sources at once', () => {
    const ok = readConfig({ CHIPLEDGER_LOG_SIGNER_KEY: signer.signerKey }, {}, cwd);
    expect(ok.ok && ok.config.log.signerKey).toBe(signer.signerKey);
    const problems = problemsOf({ CHIPLEDGER_LOG_SIGNER_KEY: 'PRIVATE+KEY+nope', CHIPLEDGER_LOG_WITNESSES: 'bad-key', CHIPLEDGER_LOG_KEY_FILE: 'x.key' });
    expect(problems.join('\n')).toMatch(/CHIPLEDGER_LOG_SIGNER_KEY: must be a C2SP Ed25519 signer key/);
    expect(problems.join('\n')).not.toContain('PRIVATE+KEY+nope');
    expect(problems.join('\n')).toMatch(/CHIPLEDGER_LOG_WITNESSES: each entry must be a witness verifier key/);
    expect(problemsOf({ CHIPLEDGER_LOG_SIGNER_KEY: signer.signerKey, CHIPLEDGER_LOG_KEY_FILE: 'x.key' }).join('\n')).toMatch(/set one of them, not both/);
  });

  // README, Configuration: every problem at once. The conflict was asked of the keys as read,
  // and a malformed signer key is read as none: the conflict was left out beside it.
  it('lists both key sources set at once whatever else is wrong, a malformed or overlong key included', () => {
    const problems = problemsOf({ CHIPLEDGER_LOG_KEY_FILE: '/x', CHIPLEDGER_LOG_SIGNER_KEY: 'y', CHIPLEDGER_PORT: '6000' });
    expect(problems).toHaveLength(3);
    expect(problems.join('\n')).toMatch(/CHIPLEDGER_PORT: /);
    expect(problems.join('\n')).toMatch(/CHIPLEDGER_LOG_SIGNER_KEY: must be a C2SP Ed25519 signer key/);
    expect(problems).toContain('CHIPLEDGER_LOG_KEY_FILE and CHIPLEDGER_LOG_SIGNER_KEY: set one of them, not both');
    const overlong = problemsOf({ CHIPLEDGER_LOG_KEY_FILE: 'k'.repeat(5_000), CHIPLEDGER_LOG_SIGNER_KEY: signer.signerKey });
    expect(overlong).toEqual([`CHIPLEDGER_LOG_KEY_FILE: longer than ${limits.settingLengthMax} characters`, 'CHIPLEDGER_LOG_KEY_FILE and CHIPLEDGER_LOG_SIGNER_KEY: set one of them, not both']);
  });

  it('refuses a witness key listed twice (every cosignature POST would fail otherwise)', () => {
    const problems = problemsOf({ CHIPLEDGER_LOG_WITNESSES: `${witness.verifierKey}, ${witness.verifierKey}` });
    expect(problems.join('\n')).toMatch(/CHIPLEDGER_LOG_WITNESSES: lists the witness key witness\.example\+[0-9a-f]{8} more than once/);
    const other = generateCosignerKey('witness.other');
    const ok = readConfig({ CHIPLEDGER_LOG_WITNESSES: `${witness.verifierKey},${other.verifierKey}` }, {}, cwd);
    expect(ok.ok && ok.config.log.witnessKeys).toEqual([witness.verifierKey, other.verifierKey]);
  });

  it('refuses a witness key of small order, under which anyone could POST cosignatures in its name', () => {
    // The identity point as a cosignature/v1 key (witness.example.org+…+BAEAAAAA…).
    const identity = Buffer.concat([Buffer.of(1), Buffer.alloc(31)]);
    const weak = formatVerifierKey('witness.example.org', identity, 0x04);
    const problems = problemsOf({ CHIPLEDGER_LOG_WITNESSES: `${witness.verifierKey},${weak}` });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(`CHIPLEDGER_LOG_WITNESSES: each entry must be a witness verifier key (name+id+key, signature type 0x04 (cosignature/v1) or 0x01 (Ed25519)): couldn't read verifier key "witness.example.org": refused the Ed25519 public key ${identity.toString('hex')}: it is a point of small order (the identity or a point of order 2, 4 or 8), under which anyone can make signatures that verify`);
  });
});

describe('apiToken', () => {
  it('explains how to get a token when there is none', () => {
    const result = readConfig({}, {}, cwd);
    if (!result.ok) expect.fail('defaults must be valid');
    expect(apiToken(result.config)).toEqual({ ok: false, problem: expect.stringMatching(/CHIPLEDGER_TOKEN is not set.*token create.*organisation register/) });
  });
});

describe('formatProblems', () => {
  it('counts and lists problems', () => {
    expect(formatProblems(['a', 'b'])).toBe('chipledger: the configuration has 2 problems:\n  - a\n  - b\nRun `chipledger --help` for every setting.');
  });
});
