/**
 * Every bound of the system in one place (STYLE.md habit 2). Hitting one gives a clear
 * 413, 429 or 503; tests touch each of them.
 */
export const limits = {
  /** Largest JSON request body the API accepts, except on the routes that carry serials. */
  requestBodyBytesMax: 8 * 1024 * 1024,
  /**
   * Largest body of a route that carries a serial list (a booking's or a manifest's, units
   * deployed, returned, ended). A 100,000-entry manifest at the longest serial and GPU UUID
   * is about 15.5 MB of JSON (`{"serial":"…64…","gpuUuid":"GPU-…60…"},` is 155 bytes);
   * the rest is room for indentation. With short serials it is about 2.5 MB.
   */
  serialListBodyBytesMax: 24 * 1024 * 1024,
  /**
   * Values and member names one JSON body may hold, counted before it is parsed as the `{`,
   * `[`, `:` and `,` outside its strings (server/body.ts). Within the byte bounds a body of
   * short names or bare numbers holds millions of them: 700,000 names in 8 MiB held the event
   * loop for 1.4 s, 2 million in 24 MiB for 5 s, while every other tenant's request waited.
   * The largest real body, a manifest of shipmentSerialsMax `{"serial":…,"gpuUuid":…}`
   * entries, counts 5 each (500,000); six per serial leaves room for the fields around it.
   * Objects and arrays, which cost JSON.parse more, have a lower bound of their own
   * (server/body.ts jsonStructuresMax).
   */
  jsonBodyValuesMax: 600_000,
  /**
   * Request bodies one server process holds at once, from the moment it accepts their
   * headers until it has answered: without a bound, a few hundred concurrent 8 MB uploads
   * would take the process's memory. Past it, 503 + Retry-After.
   */
  requestBodiesInFlightBytesMax: 256 * 1024 * 1024,
  /**
   * Of those, what the requests of one organisation (its tokens together) hold at once: a
   * quarter, so one tenant that declares large bodies and sends them slowly cannot take the
   * whole room and stop every other organisation's writes. Above the largest body (24 MiB),
   * so each organisation can always send its largest one. A request's room is held until it
   * is answered and its command has left the ledger's queue (commands.ts). Past it, 429 +
   * Retry-After naming this bound (one organisation's share, not the server overloaded).
   */
  requestBodiesInFlightPerOrganisationBytesMax: 64 * 1024 * 1024,
  /**
   * How long a request may take to arrive whole, headers and body, before it is answered 408
   * and its connection closed (Node's requestTimeout). Without it a client that sends headers
   * and then nothing holds its body's room above for as long as it likes. The largest body,
   * a serial list route's 24 MiB, arrives in this time at 1.7 Mbit/s, and a real 100,000-serial
   * manifest (15.5 MB at the longest serials) at 1.1 Mbit/s: slower than any uplink a
   * shipper's system runs on; a client slower still attaches its manifest in parts (a
   * booked shipment takes several attaches). What a writer can hold is then bounded: its
   * room for two minutes at most. Timing the answer is not part of it: once the body has
   * arrived, the ledger's own bounds (headLockWaitMsMax) apply.
   */
  requestTimeoutMs: 120_000,
  /**
   * How long a request's header section may take to arrive (Node's headersTimeout): for the
   * first request of a connection it counts from the connection's opening, so a connection
   * that sends nothing is closed after it too. Node's default, 60 s, let one client hold
   * thousands of silent connections at a time; a header section is at most 16 KiB, which
   * this bound takes at 13 kbit/s. A connection idle between requests is closed by the
   * keep-alive timeout (fastify's 72 s, above the idle timeout of common proxies).
   */
  requestHeadersTimeoutMs: 10_000,
  /**
   * Connections one server process holds open at once (Node's maxConnections): one more is
   * closed as it is accepted, before it is read. Well under the file descriptors a process
   * has (commonly 65,536, often 1,024 to 20,000), so a flood of connections cannot take those
   * the database pool and the log need.
   */
  connectionsMax: 4_096,
  /**
   * Of those, connections open at once from one remote address: one more is closed as it is
   * accepted, so one client cannot take every connection. Behind a reverse proxy every client
   * has the proxy's address: there the proxy must bound each client, and this be raised to
   * connectionsMax.
   */
  connectionsPerAddressMax: 256,
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
  /**
   * How long a batch waits for the ledger's head lock before its callers get 503. Batches
   * hold it for milliseconds (a 100,000-serial manifest, about two seconds); a wait this
   * long means writers are queued deep behind one another or the database is stalled (a
   * writer frozen holding it is cut off at headLockIdleMsMax), and callers should hear of it
   * rather than wait with it.
   */
  headLockWaitMsMax: 30_000,
  /**
   * How long a batch sent ahead waits for the head lock before it rolls back and runs the
   * classic way (the time read afresh under the lock, the full wait above). Its events'
   * time was read before it was sent: this bounds how far that time can trail the commit,
   * so a deadline or a licence's end cannot pass unseen during the wait. A lock held this
   * long means another writer is committing, so the guessed head has likely moved anyway.
   */
  aheadLockWaitMsMax: 200,
  /**
   * How far the newest committed event's time (log_head.at) may be ahead of this server's
   * clock for it to go on writing, dating its batches at that time (ledger/batch-time.ts batchTime).
   * A clock lagging by seconds (another server's runs ahead, NTP stepped it back) is normal;
   * one further behind, or a ledger whose time some clock pushed far ahead, must not be
   * papered over by dating every batch, and judging every licence and deadline, at a time
   * this server's clock does not read: its batches are refused 'unavailable' instead, loudly.
   */
  clockBehindLedgerMsMax: 300_000,
  /**
   * How far ahead of the database's clock a batch may be dated (migration 047, which holds the
   * same number: ledger_clock_ahead_ms_max()). The database's clock is the one every server
   * shares; a server whose clock runs further ahead would date the ledger's time there for good
   * (it never goes back), expiring licences and bookings early and leaving every right server
   * refused clock-behind-ledger until real time caught up. Its batches are refused
   * 'unavailable' (clock-ahead-of-database) instead, and nothing of them is written. The same
   * drift as taken for a clock behind (clockBehindLedgerMsMax).
   */
  clockAheadOfDatabaseMsMax: 300_000,
  /**
   * How long a transaction holding the head lock may sit idle between its statements before
   * PostgreSQL ends its session (idle_in_transaction_session_timeout), which rolls it back
   * and frees the lock. A writer frozen while it holds the lock (a GC pause, SIGSTOP, a
   * network partition) would otherwise stop every other writer until it came back, however
   * long that took; they wait at most this long (plus the statement in flight). A healthy
   * batch idles only while our code works between its statements: a 2,048-command batch
   * between 50 and 200 ms, a 100,000-serial manifest applied the classic way between 0.5
   * and 1 s (measured on two loaded cores); 5 s leaves room for that on a slower or busier
   * machine, and is far below headLockWaitMsMax, so the writers waiting behind a frozen one
   * get the lock within their own wait. Past it the frozen writer's batch is answered
   * 'unavailable' (nothing of it committed) and retried with its keys.
   */
  headLockIdleMsMax: 5_000,
  /**
   * How much longer than a bound the database enforces itself (a lock's wait, a statement's
   * run) a client waits for the reply before it takes the database for frozen or cut off,
   * closes the connection and answers 503. A frozen server (SIGSTOP, a stalled disk) or a
   * partition sends no error and enforces none of its own bounds: without a bound of the
   * client's, a query in flight waits until TCP gives up (about 15 minutes) or for ever.
   * Seconds: far above a reply's way back on any network, and the server's own bound fires
   * first whenever it can.
   */
  databaseReplyMarginMs: 5_000,
  /**
   * How long one round trip of a ledger write (a batch's statements, its COMMIT, a refusal
   * remembered on its own) may wait for its reply before its connection is closed and the
   * batch's callers are answered 503 'unavailable' (a client-side bound, store/pool.ts
   * withQueryTimeout). The longest a healthy round trip waits is for the head lock
   * (headLockWaitMsMax, which the server ends itself), and a writer frozen holding that lock
   * is cut off after headLockIdleMsMax; this is the two and databaseReplyMarginMs. Most of a
   * batch's statements take milliseconds, but one text may hold many long ones (a dozen
   * 100,000-unit shipments shipped in one batch took 40 to 60 s here, each statement under
   * the server's own bound): so when the bound runs out the sequencer asks the server, on a
   * connection of its own, whether it is still working on the round trip, and waits another
   * bound if it is (store/pool.ts, whileServerWorks). A frozen or cut-off server answers
   * nothing, and is cut off then. Past it, the COMMIT may have been sent: the answer says only
   * that the outcome is unknown, and a retry with the same Idempotency-Key returns the stored
   * answer if it did commit.
   */
  writeQueryTimeoutMs: 40_000,
  /**
   * The same bound for a round trip that streams rows (a COPY of a big batch's events, a
   * manifest's serials and units): about a second for 100,000 serials, but it grows with the
   * rows and their travel. Cutting a slow healthy COPY would fail the same batch on every
   * retry, so it gets the room the server gives a ledger statement (120 s,
   * store/ledger-tables.ts ledgerStatementMsMax) and databaseReplyMarginMs: the server's
   * bound fires first whenever the server can.
   */
  writeStreamTimeoutMs: 125_000,
  /**
   * How long a checkpoint signing waits for the signing lock, and for each of its
   * statements, before it gives up until the next tick: one signing runs at a time, so one
   * that never ended would stop the log's checkpoints for good. The server enforces these;
   * for a database that enforces nothing (frozen, cut off) the signer waits for each reply
   * databaseReplyMarginMs longer, then closes the connection.
   */
  checkpointSigningWaitMsMax: 10_000,
  /**
   * How many of the newest checkpoints the start-up check re-verifies, by size (what is
   * served and recorded), in signing order (a row added at an old size) and among those
   * witnesses cosigned (what `?cosignatures=N` serves), besides every key's announcement;
   * `chipledger check` re-verifies all. Every checkpoint is kept, and a log that takes events
   * steadily signs one a second: re-verifying them all took 0.19 ms and 1-1.7 KB each at
   * every start (56 s and 950 MB at 300,000, past Node's default heap at a few million).
   */
  startCheckCheckpointsMax: 1_024,
  /**
   * How long the last signing at a clean shutdown may take (its lock and statement bounds
   * too). A database that is not answering must not hold the stop up by another full
   * signing wait after the sequencer's own.
   */
  finalSigningWaitMsMax: 2_000,
  /**
   * How long a transaction that holds the log signing lock may sit idle between its
   * statements before PostgreSQL ends its session (idle_in_transaction_session_timeout),
   * which rolls it back and frees the lock: whatever else bounds it, every holder has this
   * one. A process frozen or cut off while it holds the lock (a start adopting its key, a
   * signer) would otherwise keep every server's checkpoints out until TCP gave up on it,
   * hours later. A signing idles only while our code signs between two statements
   * (milliseconds); the checkpointer's own bound (checkpointSigningWaitMsMax) is no longer.
   */
  logSigningIdleMsMax: 10_000,
  /**
   * How long a start waits for the log signing lock to adopt its key (to record the first
   * key, or to announce a new one), and how long each of that transaction's statements may
   * run. Signers hold the lock for milliseconds; above logSigningIdleMsMax, so a start queued
   * behind a holder frozen in its transaction gets the lock once PostgreSQL has cut that
   * holder off. Past it the start fails, naming the session that holds the lock.
   */
  logKeyAdoptionWaitMsMax: 30_000,
  /**
   * How long a start (serve, or an admin command) waits for another chipledger's migrations,
   * whose advisory lock it needs before it looks at the schema: as long as it waits for the
   * data dir's lock (cli/database.ts lockWaitMs). The lock is held by a session, not a
   * transaction, so no timeout of PostgreSQL's frees it from a holder frozen or cut off;
   * without this bound every start waited for it, silently, for as long as that lasted.
   * Past it the start fails, naming the session that holds the lock.
   */
  migrationLockWaitMsMax: 120_000,
  /**
   * How long one migration waits for a lock on a table it changes (lock_timeout) before it
   * is rolled back and the start refused, naming the migration and the table. While it waits
   * for its ACCESS EXCLUSIVE lock, every reader and writer of that table queues behind it:
   * this is under headLockWaitMsMax, so the batches queued behind it still commit within
   * their own wait when it gives up.
   */
  migrationTableLockWaitMsMax: 10_000,
  /**
   * How long a demo load waits for another chipledger's demo load to finish (its advisory
   * lock, held for the whole load: seconds, or about half a minute on a loaded machine), as
   * long as for the migrations' lock. Past it the load fails, naming the session that holds it.
   */
  demoLoadLockWaitMsMax: 120_000,
  /**
   * After how long a wait for another chipledger's lock (the migrations', the demo load's)
   * or a migration's wait for a table is said, once, naming who holds it: a wait this long is
   * not another start taking its turn, and a silent one looks like a hang.
   */
  lockWaitNoticeDelayMs: 3_000,
  /** How long the sequencer waits for a batch to fill to the size of the last one. */
  batchFillWaitMs: 5,
  /** Logs of at least this many entries are audited with the hashing in a worker thread (ledger/log/audit.ts). */
  auditWorkerEntriesMin: 100_000,
  /** Rows per table the sequencer keeps between batches (ledger/row-cache.ts). */
  rowCacheRowsPerTableMax: 20_000,
  /** Serials written in one batch (manifests are big; a batch stops growing here). */
  batchSerialsMax: 200_000,
  /** Commands waiting for the sequencer before callers get 503 + Retry-After. */
  sequencerQueueMax: 50_000,
  /**
   * Serials in the commands waiting for the sequencer, before a command that carries serials
   * gets 503 + Retry-After: a queued command holds its parsed input, and 50,000 queued
   * 100,000-serial commands would take gigabytes. Four full batches (batchSerialsMax): the
   * queue still feeds the next batches whole. A command always fits a queue that holds no
   * serials, whatever its size.
   */
  sequencerQueueSerialsMax: 800_000,
  /**
   * Of those, serials one organisation's commands hold from the moment they are queued until
   * they are answered (committed, refused or failed), before its next command that carries
   * serials gets 429 + Retry-After. Without it one organisation's eight 100,000-serial uploads
   * held the whole queue, four full batches, and every other organisation's 1-unit booking
   * waited behind them for 52–60 s. One full batch (batchSerialsMax): the organisation still
   * fills a batch, and another's command waits for at most one batch of it. A command always
   * fits when its organisation holds no serials, whatever its size.
   */
  sequencerQueueSerialsPerOrganisationMax: 200_000,
  /**
   * Serials from which a command is large (a big manifest, a big deployment report): other
   * organisations' commands queued with it go ahead of it, once, in a batch without it
   * (ledger/batch-choice.ts chooseBatch), instead of waiting for its commit. A batch of 100,000
   * serials commits in 2 to 10 s; one of this many in about a tenth of a second to half a
   * second, which a booking batched with it may wait.
   */
  largeCommandSerialsMin: 10_000,
  /**
   * How long an organisation's commands run in batches of their own after one of its commands
   * failed a batch that the database refused (or that failed in a way nobody recognises) and
   * the batch was run again in halves down to it (ledger/sequencer.ts answerFailedBatch). Each
   * such command cost its neighbours about two failed transactions: one organisation repeating
   * one made every other's bookings 6–60 times slower, at no cost to itself. Each new failure
   * starts the period again, so a repeated culprit pays for its own transactions.
   */
  culpritAloneMs: 5_000,
  /** Rows in one page of a list endpoint. */
  pageSizeMax: 500,
  pageSizeDefault: 100,
  /**
   * Stored bytes of the rows one page of events or of a licence's versions holds, past which
   * the page ends early with a cursor (store/pages.ts withinBytes), as the utilisation report
   * ends at 5,000 allocations. Rows are counted in pages, but an event's entry may be 64 KiB and
   * a version holds every term of its licence: 500 of them made a page of 36-45 MB built whole
   * in memory, and 16 such requests by one recipient took a server from 312 MB to 1.19 GB
   * (session 18's paging review). An event is served as about 2.3 times its stored bytes
   * (its canonical bytes in base64 and its body parsed), so a page stays near 10 MB. A page
   * always holds at least one row.
   */
  pageBytesMax: 4 * 1024 * 1024,
  /**
   * Seqs of one record's history that one page of it reads (GET /v1/events?subjectId=,
   * store/event-queries.ts eventsOfSubject) before it answers the events found so far with a
   * cursor where the reading stopped. Each seq costs a probe of the caller's reader sets,
   * about 11 µs (12–30 ms for these among 934,000 events, on two busy cores), so a tenant asking
   * for the long history of a record it reads little or none of pays this at most per
   * request, not the whole history's (8,240 events: 240 ms). Above pageSizeMax, so a caller
   * that reads every event of the history always gets full pages.
   */
  historySeqsScannedMax: 1_000,
  /**
   * Allocations embedded in one page of the utilisation report, over all its licences (each
   * embeds at most 500 of its own, store/read-queries.ts embeddedRowsMax). Without it a page
   * of 500 licences could carry 250,000 allocations, about 41 MB of JSON, past the CLI's
   * 32 MiB answer bound; at about 170 bytes each this is under 1 MB. A page that reaches it
   * ends early, with a cursor to the next licence.
   */
  utilisationPageAllocationsMax: 5_000,
  /** Free-text fields (names, conditions, justifications). */
  textLengthMax: 2_000,
  /** Short identifiers (references, codes, idempotency keys). */
  referenceLengthMax: 128,
  idempotencyKeyLengthMax: 128,
  /** Items in small lists on a licence (products, named parties, conditions). */
  listItemsMax: 100,
  /** Serials in one list other than a manifest: a deployment report, a move, a decommission, a return, a report of loss. */
  deploymentSerialsMax: 100_000,
  /** Verified bearer tokens are cached this long; a token revoked through another server process still reads until then (the ledger refuses its commands at once). */
  tokenCacheTtlMs: 5_000,
  /** Verified tokens kept in the cache. */
  tokenCacheEntriesMax: 10_000,
  /** Longest Authorization header value read. */
  bearerLengthMax: 256,
  /** Largest cosigned checkpoint a witness may post. */
  cosignatureBodyBytesMax: 16 * 1024,
  /** Distinct label sets per metric. */
  metricSeriesMax: 1_000,
  /** Log tiles kept in memory for proofs, 16 KiB each with their inner nodes (the default of CHIPLEDGER_PROOF_CACHE_TILES). */
  tileCacheEntriesMax: 4_096,
  /** How far ahead a booking deadline may lie. */
  bookingDeadlineMaxMs: 365 * 24 * 3600 * 1000,
  /** Checkpoints are at most this far behind the newest event (and signed about this often while events arrive). */
  checkpointIntervalMs: 1_000,
  /**
   * What signing a checkpoint may take: a read of the head, an Ed25519 signature and a durable
   * insert, 5–60 ms at 1,000,000 leaves under load (npm run bench -- tlog). The signer ticks
   * this much more often than the interval, so that an event committed just after one
   * signing read the head is covered by the next one within the interval.
   */
  checkpointSigningMarginMs: 150,
  /**
   * How often a running server looks at the database's newest checkpoint and records it in its
   * data dir when it is newer (cli/published-checkpoint.ts): a server that signs nothing (it
   * loses the signing lock to another every time) still moves its rollback guard forward, at
   * most this far behind the database. Backups are taken minutes or hours apart, so a few
   * seconds lose nothing; a look that finds nothing new is one indexed query, and a newer
   * checkpoint is written (and fsynced) at most once per look, not once per checkpoint signed.
   */
  seenCheckpointIntervalMs: 5_000,
  /** Bytes of one log entry (C2SP entry bundles use a 16-bit length). */
  eventBytesMax: 65_535,
  /** Largest serial CSV file the CLI reads. */
  serialCsvBytesMax: 16 * 1024 * 1024,
  /**
   * Bytes of answers `chipledger api GET --all` gathers over its pages before it stops with the
   * cursor (as it does at 20 pages): each page is bounded (32 MiB), but 20 of them held at once,
   * and printed as one, took gigabytes and failed past the longest string V8 makes. An honest
   * page of events with long texts is about 10 MB as served (limits.pageBytesMax bounds it as
   * stored), so 20 of them fit; the gathered pages are held until printed, so the CLI holds at
   * most this and one page.
   */
  apiAllPagesBytesMax: 256 * 1024 * 1024,
  /**
   * How long one database query of the HTTP API's reads (queries, the log's routes, the token
   * check, a cosignature's store) may wait for its answer before it fails as "database
   * unavailable" (503). A client-side bound (node-postgres's query_timeout): it holds also
   * when the database is frozen or cut off, where a server-side statement_timeout never
   * fires and a query in flight would wait for TCP to give up (about 15 minutes). Reads take
   * milliseconds; this is the write path's own wait for the head lock (headLockWaitMsMax).
   * A stalled database is answered 503 after this on the read path, and after
   * writeQueryTimeoutMs (the lock's wait, its idle bound and a margin) on the write path. The
   * connection of a read that ran out is closed, never handed to the next request.
   */
  readQueryTimeoutMs: 30_000,
} as const;

export type Limits = typeof limits;
