/**
 * A live chipledger log checked by Go's own golang.org/x/mod/sumdb/note and sumdb/tlog
 * (test/tlog/go-verifier/main.go): the implementation the C2SP signed-note and tlog-tiles
 * texts were written down from. independent-verify.test.ts checks the same log against a
 * verifier we wrote from the texts; this one needs no reading of ours at all for the note
 * format, the tile layout, the tree hash and the proofs.
 *
 * It needs Go and Debian's golang-golang-x-mod-dev (GOPATH mode, no module download):
 * `.ci/run` installs both and sets CHIPLEDGER_GO_VERIFIER=require, so CI fails rather than
 * skips. Elsewhere, without them, the file is skipped with the reason printed.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness, type LogServer } from './harness.ts';
import { cosignatureMessage, deterministicSeed, flipByte, keyPairFromSeed, signatureType } from './independent-verifier.ts';

const goPath = process.env.CHIPLEDGER_GO_PATH ?? '/usr/share/gocode';
const sourceDir = fileURLToPath(new URL('./go-verifier/', import.meta.url));

/** Why the Go verifier cannot run here, or undefined when it can. */
function goMissing(): string | undefined {
  const version = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) return 'no `go` command (Debian: apt-get install golang-go)';
  if (!existsSync(join(goPath, 'src/golang.org/x/mod/sumdb/tlog'))) return `no golang.org/x/mod under ${goPath} (Debian: apt-get install golang-golang-x-mod-dev)`;
  return undefined;
}

const missing = goMissing();
if (missing !== undefined && process.env.CHIPLEDGER_GO_VERIFIER === 'require') {
  throw new Error(`CHIPLEDGER_GO_VERIFIER=require, but the Go verifier cannot run: ${missing}`);
}
if (missing !== undefined) console.warn(`go-verifier.test.ts skipped: ${missing}`);

interface VerifierRun { code: number; output: string }

const origin = 'log.chipledger.test';
const logKeys = keyPairFromSeed(origin, signatureType.ed25519, deterministicSeed('go-verifier log key'));
const witnessKeys = keyPairFromSeed('witness.example/go', signatureType.cosignatureV1, deterministicSeed('go-verifier witness key'));

/** A change the proxy makes to the body of the responses whose path starts with `path`. */
interface Tamper { path: string; change(body: Buffer): Buffer }

describe.skipIf(missing !== undefined)("a live chipledger log, verified by Go's sumdb/note and sumdb/tlog", () => {
  let harness: Harness;
  let server: LogServer;
  let proxy: Server;
  let logUrl: string;
  let workDir: string;
  let binary: string;
  let earlierFile: string;
  let auditorToken: string;
  let tamper: Tamper | undefined;
  let size: number;
  let earlierSize: number;

  /** Serves the app through a real socket (Go's client, its gzip included), changing what `tamper` names. */
  async function startProxy(): Promise<string> {
    proxy = createServer((request, response) => {
      const path = (request.url ?? '').replace(/^\/v1\/log\//, '');
      const changed = tamper !== undefined && path.startsWith(tamper.path) ? tamper : undefined;
      const headers: IncomingHttpHeaders = { ...request.headers };
      // A changed body must be the plain one: a gzipped body with a flipped byte fails in gzip, not in the log checks.
      if (changed) delete headers['accept-encoding'];
      void server.app.inject({ method: 'GET', url: request.url ?? '/', headers: headers as Record<string, string> }).then((answer) => {
        const body = changed ? changed.change(answer.rawPayload) : answer.rawPayload;
        const passed = Object.fromEntries(['content-type', 'content-encoding', 'vary'].flatMap((name) => (answer.headers[name] === undefined ? [] : [[name, String(answer.headers[name])]])));
        response.writeHead(answer.statusCode, { ...passed, 'content-length': body.length });
        response.end(body);
      }, (error: unknown) => {
        response.writeHead(502);
        response.end(String(error));
      });
    });
    await new Promise<void>((done) => proxy.listen(0, '127.0.0.1', done));
    const address = proxy.address();
    if (address === null || typeof address === 'string') throw new Error('the proxy has no port');
    return `http://127.0.0.1:${address.port}/v1/log`;
  }

  function verify(...extra: string[]): Promise<VerifierRun> {
    const args = ['-url', logUrl, '-key', logKeys.verifierKey, '-witness', witnessKeys.verifierKey, '-token', auditorToken, '-earlier', earlierFile, '-prove', `0,42,${size - 1}`, ...extra];
    return new Promise((done) => {
      execFile(binary, args, { timeout: 60_000 }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        done({ code, output: stdout + stderr });
      });
    });
  }

  async function checkpointText(): Promise<string> {
    const response = await server.app.inject({ method: 'GET', url: '/v1/log/checkpoint' });
    expect(response.statusCode).toBe(200);
    return response.body;
  }

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), 'chipledger-go-verifier-'));
    binary = join(workDir, 'go-verifier');
    const built = new Promise<void>((done, reject) => {
      execFile('go', ['build', '-o', binary, '.'], {
        cwd: sourceDir,
        env: { ...process.env, GO111MODULE: 'off', GOPATH: goPath, GOCACHE: join(workDir, 'cache'), GOFLAGS: '' },
        timeout: 120_000,
      }, (error, _stdout, stderr) => (error ? reject(new Error(`go build failed: ${stderr}`)) : done()));
    });

    // An earlier checkpoint inside the second tile, a later one past the third: full and partial tiles, two levels.
    harness = await startHarness({ signerKey: logKeys.signerKey, witnessKeys: [witnessKeys.verifierKey], events: 300, licenceUnits: 2_000 });
    auditorToken = harness.tokens.auditor;
    server = await harness.serve();
    earlierFile = join(workDir, 'earlier-checkpoint');
    const earlier = await checkpointText();
    earlierSize = Number(earlier.split('\n')[1]);
    await writeFile(earlierFile, earlier);
    await harness.book(300);
    await server.ledger.checkpointer!.checkpointNow();
    // A witness cosigns the newest checkpoint as C2SP tlog-cosignature says, and the server serves its line.
    const unsigned = await checkpointText();
    const body = unsigned.slice(0, unsigned.indexOf('\n\n') + 1);
    size = Number(body.split('\n')[1]);
    const timestamp = 1_800_000_000n;
    const stamp = Buffer.alloc(8);
    stamp.writeBigUInt64BE(timestamp);
    const signature = sign(null, cosignatureMessage(body, timestamp), witnessKeys.privateKey);
    const line = `\u2014 witness.example/go ${Buffer.concat([witnessKeys.keyId, stamp, signature]).toString('base64')}\n`;
    const posted = await server.app.inject({ method: 'POST', url: '/v1/log/cosignatures', payload: unsigned + line, headers: { 'content-type': 'text/plain' } });
    expect(posted.statusCode, posted.body).toBe(201);
    logUrl = await startProxy();
    await built;
  }, 180_000);

  afterAll(async () => {
    await new Promise((done) => (proxy ? proxy.close(done) : done(undefined)));
    await harness?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('accepts the checkpoint, its cosignature, every tile and entry, the proofs and the proof bundles', async () => {
    tamper = undefined;
    const run = await verify();
    expect(run.output).toContain(`ok checkpoint: origin ${origin}, size ${size},`);
    expect(run.output).toContain('ok cosignature: witness.example/go cosigned at 1800000000');
    expect(run.output).toContain('ok tiles: tlog.TreeHash over the served tiles is the signed root');
    expect(run.output).toContain(`ok entries: all ${size} entries, hashed with tlog.RecordHash and built with tlog.StoredHashes, give the signed root`);
    expect(run.output).toContain('ok tile contents: all 4 tiles are the tiles of the tree the entries build');
    expect(run.output).toContain(`consistent with the earlier one of ${earlierSize}`);
    expect(run.output).toContain(`ok tlog-proof ${size - 1}: the entry is leaf ${size - 1} of the signed tree of ${size}`);
    expect(run.output.trimEnd().endsWith('verified'), run.output).toBe(true);
    expect(run.code, run.output).toBe(0);
  });

  // Each case changes one byte of one kind of response; Go's packages must refuse it at that step.
  const signatureByte = (name: string, at: number) => (body: Buffer): Buffer => {
    const lines = body.toString('utf8').split('\n');
    const index = lines.findIndex((line) => line.startsWith(`\u2014 ${name} `));
    const prefix = `\u2014 ${name} `;
    lines[index] = prefix + flipByte(Buffer.from(lines[index]!.slice(prefix.length), 'base64'), at).toString('base64');
    return Buffer.from(lines.join('\n'), 'utf8');
  };
  const jsonHashByte = (body: Buffer): Buffer => {
    const proof = JSON.parse(body.toString('utf8')) as { hashes: string[] };
    proof.hashes[0] = flipByte(Buffer.from(proof.hashes[0]!, 'base64'), 3).toString('base64');
    return Buffer.from(JSON.stringify(proof));
  };
  const cases: Array<[string, Tamper, RegExp]> = [
    ['the log signature', { path: 'checkpoint', change: signatureByte(origin, 4 + 10) }, /^FAIL checkpoint: note.Open: /m],
    ['the witness cosignature', { path: 'checkpoint', change: signatureByte('witness.example/go', 4 + 8 + 10) }, /^FAIL cosignature: witness.example\/go's cosignature does not verify/m],
    // Go's tile reader does not read this tile for the tree hash (and would not catch it when it
    // reads it for a leaf: see main.go); the comparison with the tree the entries build does.
    ['a full hash tile', { path: 'tile/0/001', change: (body) => flipByte(body, 32 * 7 + 1) }, /^FAIL tile contents: tile\/0\/001 differs/m],
    ['a partial tile at level 0', { path: 'tile/0/002.p/', change: (body) => flipByte(body, 32 * 3 + 1) }, /^FAIL tiles: downloaded inconsistent tile/m],
    ['a partial tile above level 0', { path: 'tile/1/', change: (body) => flipByte(body, 1) }, /^FAIL tiles: downloaded inconsistent tile/m],
    ['an entry bundle', { path: 'tile/entries/001', change: (body) => flipByte(body, 2 + 5) }, /^FAIL entries: the \d+ entries do not build the signed root/m],
    ['an inclusion proof', { path: 'proof/inclusion', change: jsonHashByte }, /^FAIL inclusion: leaf 0 in \d+: tlog.CheckRecord: /m],
    ['a consistency proof', { path: 'proof/consistency', change: jsonHashByte }, /^FAIL consistency: \d+ -> \d+: tlog.CheckTree: /m],
    ['a tlog-proof bundle', { path: 'events/42/proof', change: (body) => Buffer.from(body.toString('utf8').replace('index 42\n', 'index 43\n')) }, /^FAIL tlog-proof 42: expected "index 42"/m],
  ];
  it.each(cases)('refuses one changed byte in %s', async (_name, change, failure) => {
    tamper = change;
    try {
      const run = await verify();
      expect(run.output).toMatch(failure);
      expect(run.code, run.output).toBe(1);
    } finally {
      tamper = undefined;
    }
  });

  it('refuses a proof bundle whose path was changed, with the index left as it is', async () => {
    tamper = {
      path: 'events/42/proof',
      change: (body) => {
        const lines = body.toString('utf8').split('\n');
        lines[2] = flipByte(Buffer.from(lines[2]!, 'base64'), 0).toString('base64');
        return Buffer.from(lines.join('\n'), 'utf8');
      },
    };
    try {
      const run = await verify();
      expect(run.output).toMatch(/^FAIL tlog-proof 42: tlog.CheckRecord: /m);
      expect(run.code).toBe(1);
    } finally {
      tamper = undefined;
    }
  });

  it('refuses another log key', async () => {
    const other = keyPairFromSeed(origin, signatureType.ed25519, deterministicSeed('not the log key'));
    const run = await new Promise<VerifierRun>((done) => execFile(binary, ['-url', logUrl, '-key', other.verifierKey], (error, stdout) => done({ code: error ? Number(error.code) : 0, output: stdout })));
    expect(run.output).toMatch(/^FAIL checkpoint: note.Open: /m);
    expect(run.code).toBe(1);
  });
});
