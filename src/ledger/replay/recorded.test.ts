/** An event's bytes read back as its command (recorded.ts): what a replay sends again. */
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../core/canonical-json.ts';
import { linesDigest } from '../events.ts';
import { comparableText, eventDifference, recordedBody, recordedCommand, type RecordedBody } from './recorded.ts';

const body = (input: unknown, more: Partial<RecordedBody> = {}): RecordedBody => ({
  seq: 7, at: '2026-02-01T00:00:00.000Z', kind: 'manifest.attach', actor: { id: 'TOK-3', org: 'ORG-2', role: 'exporter' }, subject: 'S-5', input, effects: { added: 2 }, nonce: 'AAAAAAAAAAAAAAAAAAAAAA', ...more,
});

describe('recordedCommand', () => {
  it('gives the kind, actor, time and input as the event records them', () => {
    expect(recordedCommand(body({ shipmentId: 'S-5', reason: 'x' }, { kind: 'shipment.cancel' }), null)).toEqual({
      ok: true, kind: 'shipment.cancel', input: { shipmentId: 'S-5', reason: 'x' }, actor: { id: 'TOK-3', orgId: 'ORG-2', role: 'exporter' }, at: '2026-02-01T00:00:00.000Z',
    });
  });

  it('rebuilds a serial list from the lines stored for the event, a GPU UUID after its serial', () => {
    const lines = ['SN-1 GPU-aaaaaaaa-0000-4000-8000-000000000001', 'SN-2'];
    const command = recordedCommand(body({ shipmentId: 'S-5', serialCount: 2, serialsSha256: linesDigest(lines) }), lines);
    expect(command).toMatchObject({ ok: true, input: { shipmentId: 'S-5', serials: [{ serial: 'SN-1', gpuUuid: 'GPU-aaaaaaaa-0000-4000-8000-000000000001' }, 'SN-2'] } });
  });

  it('refuses lines that are not the ones the digest covers, none at all, or another count', () => {
    const lines = ['SN-1', 'SN-2'];
    expect(recordedCommand(body({ shipmentId: 'S-5', serialCount: 2, serialsSha256: linesDigest(lines) }), ['SN-1', 'SN-3'])).toEqual({
      ok: false, problem: `event 7 records 2 serials with digest ${linesDigest(lines)}, and the 2 lines stored for it hash to ${linesDigest(['SN-1', 'SN-3'])}`,
    });
    expect(recordedCommand(body({ shipmentId: 'S-5', serialCount: 3, serialsSha256: linesDigest(lines) }), lines).ok).toBe(false);
    expect(recordedCommand(body({ shipmentId: 'S-5', serialCount: 2, serialsSha256: linesDigest(lines) }), null)).toEqual({
      ok: false, problem: 'event 7 records its serial list by digest only, and no lines are stored for it (events before migration 017 kept none), so its command cannot be sent again',
    });
  });

  it('refuses an event with no input (a further event of a command) and a kind no command makes', () => {
    expect(recordedCommand(body(null), null)).toMatchObject({ ok: false, problem: expect.stringMatching(/^event 7 records no input/) });
    expect(recordedCommand(body({}, { kind: 'licence.forge' }), null)).toEqual({ ok: false, problem: 'event 7 is of kind "licence.forge", which no command of this release makes' });
    expect(recordedCommand(body({}, { kind: 'toString' }), null).ok).toBe(false);
  });
});

describe('recordedBody', () => {
  it('reads an event, and says what is wrong with bytes that are not one', () => {
    expect(recordedBody(7, Buffer.from(canonicalJson(body({ a: 1 }))))).toEqual(body({ a: 1 }));
    expect(recordedBody(7, Buffer.from('{"at":'))).toMatch(/^event 7's bytes are not JSON/);
    expect(recordedBody(7, Buffer.from('{"at":"x","kind":"k"}'))).toBe("event 7's bytes are JSON but not an event (at, kind, actor, input and effects)");
    expect(recordedBody(7, Buffer.from('null'))).toBe("event 7's bytes are JSON but not an event (at, kind, actor, input and effects)");
  });

  it('reads only bytes that say one thing: canonical JSON, and a time as the ledger writes it', () => {
    const canonical = canonicalJson(body({ a: 1 }));
    const notCanonical = "event 7's bytes are not the canonical JSON (RFC 8785) of what they hold, as the ledger writes every event: a name given twice, or a value spelt otherwise";
    // The effects given twice: JSON.parse would read the second.
    expect(recordedBody(7, Buffer.from(canonical.replace('"effects":', '"effects":{"added":9},"effects":')))).toBe(notCanonical);
    expect(recordedBody(7, Buffer.from(canonical.replace('"a":1', '"a":1.0')))).toBe(notCanonical);
    expect(recordedBody(7, Buffer.from(` ${canonical}`))).toBe(notCanonical);
    expect(recordedBody(7, Buffer.from(canonical.replace('"a":1', '"a":1e400')))).toMatch(/^event 7's bytes hold what has no canonical JSON \(/);
    expect(recordedBody(7, Buffer.from(canonical.replace('"a":1', '"a":"\\ud800"')))).toMatch(/^event 7's bytes hold what has no canonical JSON \(/);
    expect(recordedBody(7, Buffer.from([...Buffer.from(canonical.slice(0, -1)), 0xff, 0x7d]))).toMatch(/^event 7's bytes are not JSON|^event 7's bytes are not the canonical JSON/);
    for (const at of ['not a time', '2026-02-01T00:00:00Z', '2026-02-30T00:00:00.000Z', '2026-02-01T08:00:00.000+08:00']) {
      expect(recordedBody(7, Buffer.from(canonicalJson(body({ a: 1 }, { at }))))).toBe(`event 7's time ${JSON.stringify(at)} is not an instant as the ledger writes one (ISO 8601 in UTC, to the millisecond)`);
    }
  });

  it('refuses a nonce no ledger writes, and reads an event with none (a release before nonces wrote those)', () => {
    for (const nonce of ['', 'A', 'AAAAAAAAAAAAAAAAAAAAA', 'AAAAAAAAAAAAAAAAAAAAAAA', 'AAAAAAAAAAAAAAAAAAAA+/', 'AAAAAAAAAAAAAAAAAAAA==', 7]) {
      expect(recordedBody(7, Buffer.from(canonicalJson(body({ a: 1 }, { nonce } as never)))), String(nonce))
        .toBe(`event 7's nonce ${JSON.stringify(nonce)} is not one the ledger writes (16 random bytes in unpadded base64url)`);
    }
    const { nonce: _nonce, ...legacy } = body({ a: 1 });
    expect(recordedBody(7, Buffer.from(canonicalJson(legacy)))).toEqual(legacy);
    expect(recordedBody(7, Buffer.from(canonicalJson(body({ a: 1 }, { nonce: 'Ab-_9zAb-_9zAb-_9zAb-_' }))))).toMatchObject({ nonce: 'Ab-_9zAb-_9zAb-_9zAb-_' });
  });
});

describe('comparableText and eventDifference', () => {
  it('compare everything but the nonce, and name each field that differs', () => {
    const one = body({ a: 1 });
    expect(comparableText(one)).toBe(comparableText({ ...one, nonce: 'BBBBBBBBBBBBBBBBBBBBBB' }));
    expect(comparableText(one)).not.toBe(comparableText({ ...one, effects: { added: 3 } }));
    expect(eventDifference(one, { ...one, nonce: 'B', subject: 'S-6', effects: { added: 3 } })).toBe(
      'effects: the log records {"added":2}, the replay made {"added":3}; subject: the log records "S-5", the replay made "S-6"',
    );
    expect(eventDifference({ ...one, extra: 1 } as RecordedBody, one)).toBe('extra: the log records 1, the replay made nothing');
  });
});
