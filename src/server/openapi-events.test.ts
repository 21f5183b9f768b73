/**
 * An event's body in the OpenAPI document (src/server/wire-events.ts): one schema per kind,
 * a oneOf discriminated by `kind`, each with the input it records and every field of its
 * effects, further events included. A world that runs every command, each part of each
 * kind, is read back through the API, where every answer is checked against the document
 * (test/support/server.ts); and a body a handler could write wrong is caught.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../ledger/permissions.ts';
import { commandSchemas } from '../ledger/schemas.ts';
import { answerChecker } from '../../test/support/openapi-check.ts';
import { apiWorldPerFile, type ApiWorld } from '../../test/support/server.ts';

let api: ApiWorld;

apiWorldPerFile((made) => {
  api = made;
});

type Json = Record<string, any>;
/** An event's nonce: 16 bytes, unpadded base64url (src/server/wire-fields.ts). */
const noncePattern = /^[A-Za-z0-9_-]{21}[AQgw]$/;
interface EventItem { seq: number; kind: string; body: Json }

/** Every event the auditor reads, page by page: each page checked against the document on the way. */
async function allEvents(): Promise<EventItem[]> {
  const items: EventItem[] = [];
  let cursor: string | null = null;
  for (;;) {
    const response = await api.request({ method: 'GET', url: `/v1/events?limit=500${cursor === null ? '' : `&cursor=${cursor}`}`, token: api.tokens.auditor });
    expect(response.statusCode, response.body).toBe(200);
    const page = response.json() as { items: EventItem[]; nextCursor: string | null };
    items.push(...page.items);
    if (page.nextCursor === null) return items;
    cursor = page.nextCursor;
  }
}

async function openApiDocument(): Promise<Json> {
  return (await api.request({ method: 'GET', url: '/v1/openapi.json' })).json();
}

/** Each kind's parts as the document gives them: the component, or its oneOf. */
function partsOf(document: Json, kind: string): Json[] {
  const component = document.components.schemas[document.components.schemas.EventBody.discriminator.mapping[kind].split('/').pop()];
  return component.oneOf ?? [component];
}

/**
 * Runs every command, and every further event a command writes: a shipment that uses up
 * both its licences, returns and losses of deployed units, and a sweep that expires a
 * booking past its deadline, one under a revoked licence, and a licence past its validity.
 */
async function runEveryKind(): Promise<void> {
  const { world, orgs, allocations } = api;
  const { run, actors, productId, clock } = world;
  await run('organisation.set_kyc', { organisationId: orgs.alpha, verified: true }, actors.mofcom);
  const tokenId = String((await run('token.create', { organisationId: orgs.exporter, role: 'exporter', label: 'revoked at once' }, systemActor)).tokenId);
  await run('token.revoke', { tokenId }, systemActor);
  await run('allocation.resize', { allocationId: allocations.betaExport, units: 19_000 }, actors.bis);
  await run('licence.amend', { licenceId: world.exportLicenceId, reason: 'calibrated', riders: ['Report each deployment.'] }, actors.bis);

  // A pair of licences for two units: shipping them uses both up.
  const pair = async (reference: string, validTo: string, units: number) => {
    const common = { productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: units, validFrom: '2026-01-01T00:00:00Z', validTo };
    const exportId = String((await run('licence.create', { ...common, reference: `BIS-${reference}`, direction: 'export', holderId: orgs.exporter, parties: [{ organisationId: orgs.alpha, role: 'end_user' }] }, actors.bis)).licenceId);
    const importId = String((await run('licence.create', { ...common, reference: `MOFCOM-${reference}`, direction: 'import', holderId: orgs.alpha, parties: [{ organisationId: orgs.exporter, role: 'supplier' }] }, actors.mofcom)).licenceId);
    await run('licence.issue', { licenceId: exportId }, actors.bis);
    await run('licence.issue', { licenceId: importId }, actors.mofcom);
    const exportAllocationId = String((await run('allocation.create', { licenceId: exportId, recipientId: orgs.alpha, units }, actors.bis)).allocationId);
    const importAllocationId = String((await run('allocation.create', { licenceId: importId, recipientId: orgs.alpha, units, ...(validTo > '2027' ? { periodStart: '2026-01-01', periodEnd: '2026-12-31' } : {}) }, actors.mofcom)).allocationId);
    return { exportId, importId, exportAllocationId, importAllocationId };
  };
  const usedUp = await pair('EXH-1', '2027-01-01T00:00:00Z', 2);
  const shipped = String((await run('shipment.book', { exportAllocationId: usedUp.exportAllocationId, importAllocationId: usedUp.importAllocationId, productId, units: 2, deadline: '2026-06-01T00:00:00Z', reference: 'PO-1', serials: [api.serial('EXH'), { serial: api.serial('EXH'), gpuUuid: 'GPU-ABCDEF12-3456-7890-abcd-ef1234567890' }] }, actors.exporter)).shipmentId);
  await run('shipment.ship', { shipmentId: shipped }, actors.exporter);
  // The used-up import licence suspended (its clearances paused) and reinstated: exhausted again.
  await run('licence.suspend', { licenceId: usedUp.importId, reason: 'clearances under review' }, actors.mofcom);
  await run('licence.reinstate', { licenceId: usedUp.importId }, actors.mofcom);

  // Transitions on a licence of their own: suspend, reinstate, surrender; another revoked as a draft.
  const transitions = await pair('TRN-1', '2027-01-01T00:00:00Z', 5);
  await run('licence.suspend', { licenceId: transitions.exportId, reason: 'under review' }, actors.bis);
  await run('licence.reinstate', { licenceId: transitions.exportId }, actors.bis);
  await run('licence.surrender', { licenceId: transitions.exportId, reason: 'no longer needed' }, actors.exporter);
  const draft = String((await run('licence.create', { reference: 'BIS-DRAFT-1', direction: 'export', holderId: orgs.exporter, productIds: [productId], origin: 'US', destination: 'CN', authorisedUnits: 1, validFrom: '2026-01-01T00:00:00Z', validTo: '2027-01-01T00:00:00Z', valueMinor: 100, currency: 'USD' }, actors.bis)).licenceId);
  await run('licence.revoke', { licenceId: draft }, actors.bis);

  // A booking cancelled, one filled by a manifest afterwards.
  const book = (units: number, deadline = '2026-06-01T00:00:00Z') => run('shipment.book', { exportAllocationId: allocations.alphaExport, importAllocationId: allocations.alphaImport, productId, units, deadline }, actors.exporter).then((answer) => String(answer.shipmentId));
  await run('shipment.cancel', { shipmentId: await book(1), reason: 'order withdrawn' }, actors.exporter);
  await run('manifest.attach', { shipmentId: await book(2), serials: [api.serial('MAN'), api.serial('MAN')] }, actors.exporter);

  // Units: moved between sites, decommissioned, lost and returned from a site (two events each), returned undeployed (one).
  const delivered = await api.shipment('own', 'delivered', 6);
  const [moved, decommissioned, lost, returned, returnedUndeployed] = delivered.serials;
  const site = String((await run('site.register', { name: 'Gui\'an DC 3', province: 'Guizhou', city: 'Gui\'an', latitude: 26.4, longitude: 106.6, capacityUnits: 100 }, actors.alpha)).siteId);
  await run('units.deploy', { siteId: site, serials: [moved!, decommissioned!, lost!, returned!] }, actors.alpha);
  await run('units.deploy', { siteId: api.sites.alpha, serials: [moved!] }, actors.alpha);
  await run('units.decommission', { serials: [decommissioned!], reason: 'failed burn-in' }, actors.alpha);
  await run('units.report_lost', { serials: [lost!], reason: 'missing at inventory' }, actors.alpha);
  await run('units.return', { serials: [returned!], reason: 'RMA' }, actors.alpha);
  await run('units.return', { serials: [returnedUndeployed!], reason: 'RMA' }, actors.alpha);

  // A shipment turned back at the border, recorded by the authority of its import licence.
  const turnedBack = await api.shipment('own', 'shipped', 1);
  await run('shipment.return', { shipmentId: turnedBack.id, reason: 'entry refused: the invoice did not match the goods' }, actors.mofcom);

  // The sweep: a booking past its deadline, one under a revoked licence (its reason), a licence past its validity.
  await book(1, '2026-02-01T01:00:00Z');
  const underRevoked = await pair('REV-1', '2027-01-01T00:00:00Z', 3);
  await run('shipment.book', { exportAllocationId: underRevoked.exportAllocationId, importAllocationId: underRevoked.importAllocationId, productId, units: 1, deadline: '2026-06-01T00:00:00Z' }, actors.exporter);
  await run('licence.revoke', { licenceId: underRevoked.importId, reason: 'end user listed' }, actors.mofcom);
  await pair('SHORT-1', '2026-02-01T01:30:00Z', 1);
  clock.set('2026-02-01T02:00:00Z');
  await run('ledger.sweep', {}, systemActor);
}

describe('event bodies in the OpenAPI document', () => {
  // Every test below reads the events this world's commands wrote.
  beforeAll(runEveryKind);

  it('are one schema per command kind, a oneOf discriminated by kind, each strict where its shape is fixed', async () => {
    const document = await openApiDocument();
    const { schemas } = document.components;
    expect(schemas.Event.properties.body.$ref).toBe('#/components/schemas/EventBody');
    const { discriminator, oneOf } = schemas.EventBody;
    expect(discriminator.propertyName).toBe('kind');
    expect(Object.keys(discriminator.mapping).sort()).toEqual(Object.keys(commandSchemas).sort());
    expect(oneOf).toEqual(Object.values(discriminator.mapping).map(($ref) => ({ $ref })));
    for (const kind of Object.keys(commandSchemas)) {
      for (const part of partsOf(document, kind)) {
        expect(part.properties.kind, kind).toEqual({ type: 'string', const: kind });
        // The nonce is optional: the log's events from before it have none, and keep their bytes.
        expect(part.required.sort(), kind).toEqual(['actor', 'at', 'effects', 'input', 'kind', 'seq', 'subject']);
        expect(part.properties.nonce, kind).toMatchObject({ type: 'string', pattern: noncePattern.source });
        expect([part.additionalProperties, part.properties.effects.additionalProperties, part.properties.actor.additionalProperties], kind).toEqual([false, false, false]);
        const input = part.properties.input;
        expect(input.type === 'null' || input.additionalProperties === false, `${kind}: its input is null or strict`).toBe(true);
      }
    }
    // The recorded input is the command's: a serial list by its count and digest, instants as the request gives them.
    const [deploy] = partsOf(document, 'units.deploy');
    expect(Object.keys(deploy!.properties.input.properties).sort()).toEqual(['serialCount', 'serialsSha256', 'siteId']);
    const [created] = partsOf(document, 'licence.create');
    expect(created!.properties.input.properties.validTo.format).toBe('date-time');
    expect(partsOf(document, 'shipment.ship').map((part) => part.properties.input.type)).toEqual(['object', 'null']);
  });

  it('describe every event that every command writes, each part of each kind met by a real one', async () => {
    const events = await allEvents(); // every page checked against the document
    // Every event this world wrote has a nonce of its own: 16 random bytes, base64url.
    for (const event of events) expect(event.body.nonce, `event ${event.seq}`).toMatch(noncePattern);
    expect(new Set(events.map((event) => event.body.nonce)).size).toBe(events.length);
    const document = await openApiDocument();
    const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    for (const kind of Object.keys(commandSchemas)) {
      partsOf(document, kind).forEach((part, index) => {
        const validate = ajv.compile(part);
        const met = events.filter((event) => event.kind === kind && validate(event.body));
        expect(met.length, `${kind}, part ${index + 1}: ${part.description}`).toBeGreaterThan(0);
      });
    }
    // The sweep's reason, and both licences shipping used up, are among them.
    const sweep = events.filter((event) => event.kind === 'ledger.sweep').map((event) => event.body.effects);
    expect(sweep.some((effects) => typeof effects.reason === 'string' && effects.shipmentId !== undefined)).toBe(true);
    expect(sweep.some((effects) => effects.reason === undefined && effects.shipmentId !== undefined)).toBe(true);
    const exhausting = events.find((event) => event.kind === 'shipment.ship' && event.body.effects.licencesExhausted?.length === 2);
    expect(exhausting, 'a shipment that used up both its licences').toBeDefined();
    // One event by its seq is checked as well.
    const one = await api.request({ method: 'GET', url: `/v1/events/${exhausting!.seq + 1}`, token: api.tokens.auditor });
    expect([one.statusCode, one.json().body.input, one.json().body.effects.to]).toEqual([200, null, 'exhausted']);
  });

  it('catch a handler that writes a field the document does not describe, leaves one out, or records input on a further event', async () => {
    const document = await openApiDocument();
    const checker = answerChecker(document);
    const events = await allEvents();
    const find = (kind: string, test: (body: Json) => boolean): EventItem => {
      const found = events.find((event) => event.kind === kind && test(event.body));
      if (found === undefined) throw new Error(`no ${kind} event in the world`);
      return found;
    };
    const answering = (event: unknown) => ({ statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(event), json: () => event }) as unknown as Parameters<typeof checker.problemWith>[2];
    const check = (event: EventItem, body: Json) => checker.problemWith('GET', `/v1/events/${event.seq}`, answering({ ...event, body }));
    const book = find('shipment.book', (body) => body.input.serialCount !== undefined);
    const ship = find('shipment.ship', (body) => body.input !== null);
    const exhaustion = find('shipment.ship', (body) => body.input === null);
    const returned = find('units.return', (body) => body.input !== null);
    const decommission = find('units.decommission', () => true);
    const sweptLicence = find('ledger.sweep', (body) => body.effects.licenceId !== undefined);
    // The real ones pass, and so do they without their nonce, as the log's events from before it are.
    for (const event of [book, ship, exhaustion, returned, decommission, sweptLicence]) expect(check(event, event.body), event.kind).toBeNull();
    const { nonce: _nonce, ...withoutNonce } = book.body;
    expect(check(book, withoutNonce), 'an event from before the nonce').toBeNull();
    const cases: Array<[string, EventItem, Json]> = [
      ['a field in effects the document does not list', book, { ...book.body, effects: { ...book.body.effects, units: 2 } }],
      ['a field of effects left out', ship, { ...ship.body, effects: { from: 'booked', to: 'shipped', units: 2 } }],
      ['a field of the body the document does not list', book, { ...book.body, readers: [] }],
      ['a serial list recorded in full', book, { ...book.body, input: { ...book.body.input, serials: ['SN-1'] } }],
      ['a digest without its count', book, { ...book.body, input: { ...Object.fromEntries(Object.entries(book.body.input).filter(([key]) => key !== 'serialCount')) } }],
      ['a further event that records the input', exhaustion, { ...exhaustion.body, input: ship.body.input }],
      ['the sites a return left, in the event its exporter reads', returned, { ...returned.body, effects: { ...returned.body.effects, fromSites: { 'SITE-1': 1 } } }],
      ['a decommission without the sites its units left', decommission, { ...decommission.body, effects: { count: 1, shipments: decommission.body.effects.shipments } }],
      ['a status the step never writes', ship, { ...ship.body, effects: { ...ship.body.effects, to: 'delivered' } }],
      ['a licence the sweep expires from a status it never expires', sweptLicence, { ...sweptLicence.body, effects: { ...sweptLicence.body.effects, from: 'revoked' } }],
      ['a nonce of 15 bytes', book, { ...book.body, nonce: Buffer.alloc(15, 7).toString('base64url') }],
      ['a nonce in hex', book, { ...book.body, nonce: Buffer.alloc(16, 7).toString('hex') }],
      ['a padded nonce', book, { ...book.body, nonce: Buffer.alloc(16, 7).toString('base64') }],
      ['a kind the document does not know', book, { ...book.body, kind: 'shipment.teleport' }],
      ["another kind's effects", ship, { ...ship.body, kind: 'shipment.cancel' }],
    ];
    for (const [what, event, body] of cases) expect(check(event, body), what).toMatch(/the body does not match the document/);
    // The problem is told from the event's own kind, not from each of the other kinds it is not.
    const { origin: _origin, ...withoutOrigin } = book.body.effects;
    const told = check(book, { ...book.body, effects: withoutOrigin })!;
    expect(told).toMatch(/\/body\/effects must have required property 'origin'/);
    expect(told).not.toMatch(/must be equal to constant|required property 'name'/);
  });

  it('writes the event bodies out once on the docs page, in a section the event answers point to', async () => {
    const page = (await api.request({ method: 'GET', url: '/v1/docs' })).body;
    expect(page).toContain('<h2 id="event-bodies">Event bodies</h2>');
    for (const kind of Object.keys(commandSchemas)) expect(page, kind).toContain(`&#34;const&#34;: &#34;${kind}&#34;`);
    expect(page).toContain('Written out below, under Event bodies.');
    expect(page).not.toContain('$ref');
  });
});
