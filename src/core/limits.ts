/**
 * Every bound of the system in one place (STYLE.md habit 2). Hitting one gives a clear
 * 413, 429 or 503; tests touch each of them.
 */
export const limits = {
  /** Largest JSON request body the API accepts. A 100,000-serial manifest is about 2.5 MB. */
  requestBodyBytesMax: 8 * 1024 * 1024,
  /** Serials in one shipment manifest. */
  shipmentSerialsMax: 100_000,
  /** Length of one serial number or GPU UUID. */
  serialLengthMax: 64,
  /** Units in one licence, allocation or shipment; far above any real licence, far below 2^53. */
  unitsMax: 1_000_000_000,
  /** Value in minor units (bigint in the database); keeps JSON numbers exact. */
  valueMinorMax: Number.MAX_SAFE_INTEGER,
  /** Commands the sequencer commits in one transaction. */
  batchCommandsMax: 2_048,
  /** Serials written in one batch (manifests are big; a batch stops growing here). */
  batchSerialsMax: 200_000,
  /** Commands waiting for the sequencer before callers get 503 + Retry-After. */
  sequencerQueueMax: 50_000,
  /** Rows in one page of a list endpoint. */
  pageSizeMax: 500,
  pageSizeDefault: 100,
  /** Free-text fields (names, conditions, justifications). */
  textLengthMax: 2_000,
  /** Short identifiers (references, codes, idempotency keys). */
  referenceLengthMax: 128,
  idempotencyKeyLengthMax: 128,
  /** Items in small lists on a licence (products, named parties, conditions). */
  listItemsMax: 100,
  /** Lines in one CSV manifest file. */
  csvLinesMax: 100_001,
  /** Sites per recipient, units moved in one deployment report. */
  deploymentSerialsMax: 100_000,
} as const;

export type Limits = typeof limits;
