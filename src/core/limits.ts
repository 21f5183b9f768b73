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
  // Retry-After of 429 and 503 answers (server/problem.ts).
  /** Seconds a client should wait before retrying an overloaded or unavailable server. */
  retryAfterSeconds: 1,
  /**
   * Seconds to wait after a refusal for this server's clock (clock-behind-ledger,
   * clock-ahead-of-database): it lasts until someone puts a clock right, so a retry every
   * second only adds load, and a client that waits at most a few seconds gives up at once.
   */
  clockRetryAfterSeconds: 30,
  /**
   * Seconds to wait after a 429, a refusal past an organisation's share of the sequencer's serials
   * (sequencer-queue-serials-organisation) or of the bodies in flight (request-bodies-in-flight-
   * per-organisation): the share frees as the organisation's commands before
   * are answered, and a batch of 100,000 serials commits in 2 to 10 s (limits.largeCommandSerialsMin),
   * so a retry after 1 s mostly met the same refusal, and the CLI's three tries (about 2 s) gave
   * up on an upload the queue would have taken. At most the longest wait the CLI takes
   * (retryAfterMsMax, 5 s): past it, the CLI would not try again at all.
   */
  organisationShareRetryAfterSeconds: 5,
  // The server's own waits (server/closing.ts, app.ts, cors.ts).
  /** How long requests under way when the server starts closing have to finish on their own. */
  closingGraceMsDefault: 5_000,
  /** Requests slower than this are logged at warn (503s aside: see the onResponse hook). */
  slowRequestMs: 1_000,
  /** /healthz gives up on the database after this long and answers 503. */
  healthCheckTimeoutMs: 2_000,
  /** Seconds a browser may keep a preflight's answer (Chromium keeps at most 7,200). */
  preflightMaxAgeSeconds: 7_200,
  // Log lines of reads refused for the database (server/read-refusals.ts).
  /** Between two lines of one reason. */
  readRefusalLineIntervalMs: 60_000,
  // Whether the database holds the demo (server/demo-mark.ts).
  /** A server without the mark asks the database at most this often. */
  demoCheckIntervalMs: 1_000,
  /**
   * How long the request that starts a check waits for it; the check goes on past that, bounded
   * by demoCheckQueryTimeoutMs. Short: every route waits on it, /healthz (2 s) too, and a frozen
   * database must not make the answers that need none slow.
   */
  demoCheckWaitMs: 250,
  /** The check's query gives up after this long and frees its connection. */
  demoCheckQueryTimeoutMs: 2_000,
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
  // A database connection (store/pool.ts).
  /** How long making a connection may take, and then setting up its session. */
  connectTimeoutMs: 10_000,
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
   * ledgerStatementMsMax) and databaseReplyMarginMs: the server's
   * bound fires first whenever the server can.
   */
  writeStreamTimeoutMs: 125_000,
  /**
   * How long one statement of a ledger transaction may run: our own bound, not the role's or
   * the database's. A managed PostgreSQL often sets a short statement_timeout for every
   * session, and a 100,000-serial manifest's COPY (about a second here) would then fail on
   * every retry, each answered 503 "retry". A hundred times that COPY, still an end.
   */
  ledgerStatementMsMax: 120_000,
  // Asking the server whether it still works on a round trip past its bound (store/query-timeout.ts).
  /**
   * How long asking the server whether it still works on a round trip may take, connect and
   * query (at most the round trip's own bound: a test's bound of a second is not stretched to
   * six). A frozen server answers no probe, so its callers hear at most this much later.
   */
  stillWorkingProbeMs: 5_000,
  /**
   * How many times a round trip's bound is extended because the server still works on it: past
   * that it is cut whatever the server says, so no answer of the probe makes a wait unbounded
   * (a write's 40 s bound: 400 s at most, far above the longest healthy batch seen, 60 s).
   */
  stillWorkingExtensionsMax: 10,
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
  /** Checkpoints looked at for a cosigned one, newest first: a quorum not met in these is not met. */
  cosignedCandidatesMax: 16,
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
   * data dir's lock (lockWaitMs). The lock is held by a session, not a
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
  // The demo's expiring shipment (demo/loader.ts).
  /** Bookings of the expiring shipment, each with twice the last one's margin (2, 4, 8, 16 s). */
  expiringBookingAttemptsMax: 4,
  /**
   * After how long a wait for another chipledger's lock (the migrations', the demo load's)
   * or a migration's wait for a table is said, once, naming who holds it: a wait this long is
   * not another start taking its turn, and a silent one looks like a hang.
   */
  lockWaitNoticeDelayMs: 3_000,
  // The embedded PostgreSQL (store/embedded-binaries.ts, processes.ts, embedded-password.ts; cli/database.ts).
  /** How long `<program> --version` may take: it prints one line, but a loaded machine is slow to start a process. */
  versionCheckTimeoutMs: 30_000,
  /** How long an orphaned postmaster may take to stop. */
  orphanStopTimeoutMs: 10_000,
  /** Longest password file read: one written here is passwordBytes in hex and a newline. */
  passwordFileBytesMax: 1_024,
  /** How long stopping the embedded PostgreSQL may take before we report it. */
  embeddedStopTimeoutMs: 15_000,
  // The data dir's lock (cli/database.ts, cli/database-lock.ts).
  /**
   * Longest wait for the lock's holder to get out of the way: a serve creating the cluster (15 s
   * on a loaded 2-core machine) or an admin command finishing (a `check` of a large ledger).
   */
  lockWaitMs: 120_000,
  /** How often a waiting process looks at the lock again. */
  lockPollIntervalMs: 250,
  /** How long asking the lock holder's PostgreSQL which cluster it serves may take, connection included. */
  lenderCheckTimeoutMs: 5_000,
  /** Copied locks one open clears at most: each look clears one, so running out means others keep writing them. */
  copiedLocksMax: 4,
  /**
   * How long after it was last written a lock that does not parse counts as in use. Every lock
   * this chipledger writes appears whole; an older one wrote in place (for microseconds a reader
   * saw it empty), and a crash can leave one damaged: that one is cleared once this old.
   */
  damagedLockInUseMs: 10_000,
  /** Tries to take the lock; each clears at most one stale lock (or clearing lock), so running out means others keep taking it. */
  lockAttemptsMax: 4,
  /** Longest lock file read: ours are a few hundred bytes, so a longer one does not parse. */
  lockBytesMax: 16_384,
  // chipledger serve and the admin commands (cli/serve.ts, cli/admin.ts).
  /** Connections the server's pool holds: the sequencer's one at a time, reads, the log checkpointer. */
  serveConnectionsMax: 20,
  /** Admin commands run a handful of statements at a time. */
  adminConnectionsMax: 4,
  /** The whole shutdown may take this long; then we exit non-zero rather than hang. */
  shutdownTimeoutMs: 30_000,
  /**
   * A Ctrl-C in a terminal reaches the embedded PostgreSQL too (one process group), and it may
   * exit before our own SIGINT handler runs: an exit followed this soon by a stop signal is that
   * stop, not a lost database.
   */
  postmasterExitSignalGraceMs: 500,
  /**
   * A stop signal this soon after the first is the same request, and is ignored: a Ctrl-C goes to
   * the terminal's whole foreground process group, and npm (`npm start`), which is in it, forwards
   * the SIGINT it got to its script as well, so the server gets two within milliseconds; a
   * SIGTERM to the process group (systemd's default KillMode=control-group) arrives twice the
   * same way. A stop signal later than this is someone asking again: it exits at once. A
   * client command interrupted while a change's answer is awaited reads it the same way
   * (cli/http.ts), so npm's copy of a Ctrl-C does not kill it before it prints the key.
   */
  repeatedStopSignalWindowMs: 1_000,
  // Settings (cli/config.ts).
  /** Bounds of the sweep interval: faster is wasted work, slower leaves expired bookings holding units. */
  sweepIntervalMsMin: 100,
  sweepIntervalMsMax: 3_600_000,
  /**
   * Bounds of the proof cache: at 16 KiB a tile (its hashes and inner nodes), 64 tiles is
   * 1 MiB and 1,048,576 tiles 16 GiB; each tile covers 256 events.
   */
  proofCacheTilesMin: 64,
  proofCacheTilesMax: 1_048_576,
  /** Longest URL or path we accept in a setting. */
  settingLengthMax: 4_096,
  /** How long the sequencer waits for a batch to fill to the size of the last one. */
  batchFillWaitMs: 5,
  /** Logs of at least this many entries are audited with the hashing in a worker thread (ledger/log/audit.ts). */
  auditWorkerEntriesMin: 100_000,
  // The log's audit (ledger/log/audit.ts).
  /** Level-0 tiles per round trip: 64 × 256 = 16,384 entries. */
  auditTilesPerChunk: 64,
  /** Chunks each of the audit's workers has been sent and not yet hashed: memory stays bounded while the reader runs ahead. */
  auditChunksInFlightMax: 2,
  /** Worker threads hashing a big log's chunks (fewer on a machine with fewer cores). */
  auditWorkersMax: 2,
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
  /** Reasons an outage says at most: past them, a flood of distinct messages stays unsaid. */
  outageReasonsMax: 8,
  /** Sweeps take at most this many rows per batch; the next sweep takes the rest. */
  sweepRowsMax: 1_000,
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
  /** Rows embedded in a detail view stop here; the list endpoints page through the rest. */
  embeddedRowsMax: 500,
  /**
   * Allocations embedded in one page of the utilisation report, over all its licences (each
   * embeds at most 500 of its own, embeddedRowsMax). Without it a page
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
  // The accelerator catalogue and datasheets (policy/catalogue.ts, datasheet.ts).
  /** A catalogue is a few dozen products; a thousand rows means the wrong file. */
  catalogueRowsMax: 1_000,
  /** More precisions than any datasheet lists; bounds the work on an API input. */
  denseRatesMax: 16,
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
  /** Inner nodes kept for partial tiles: 64 Ki × 32 bytes = 2 MiB of hashes. */
  nodeCacheEntriesMax: 65_536,
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
  // The checkpoint a server records in its data dir, and key files (cli/published-checkpoint-*.ts, cli/log-key.ts).
  /** Longest file read: a checkpoint note (three lines, a rotation line, a few signatures) is far shorter. */
  publishedCheckpointBytesMax: 65_536,
  /** Tiles the start check reads: a root needs one per tile level at most. */
  startCheckTilesMax: 64,
  /** Longest key file read: a signer key is its origin (a few hundred bytes at most) and 60-odd more. */
  keyFileBytesMax: 16_384,
  /** Bytes of one log entry (C2SP entry bundles use a 16-bit length). */
  eventBytesMax: 65_535,
  /** Largest serial CSV file the CLI reads. */
  serialCsvBytesMax: 16 * 1024 * 1024,
  // chipledger's API client (cli/http.ts, fetch.ts, api-command.ts, client-commands.ts).
  /** How long one request may take, including a 100,000-serial manifest being checked and committed. */
  apiRequestTimeoutMs: 120_000,
  /**
   * Largest answer read. Far above the API's pages of long rows, which end early once their
   * rows pass limits.pageBytesMax (events, licences, a licence's versions: about 10 MB served at
   * most); a list without that bound whose rows were long could still pass it, and `chipledger
   * api` then asks for the page again at the default size, or says to ask for smaller pages.
   */
  apiResponseBytesMax: 32 * 1024 * 1024,
  /** Attempts at one request, the first included, while its outcome is unknown (network error, lost answer, 502, 503, 504) or it is refused for now (429). */
  requestAttemptsMax: 3,
  /** Pause before another attempt when the server gave no Retry-After. */
  retryDelayMs: 500,
  /** The longest Retry-After waited for: a server that asks for more is not asked again sooner, the CLI gives up. */
  retryAfterMsMax: 5_000,
  /**
   * Bytes of an error answer read: a problem document is a few hundred bytes, and a proxy's
   * error page is cut short rather than refused, so that a 502, 503 or 504 is still sent again
   * whatever its page's size.
   */
  errorBodyBytesMax: 64 * 1024,
  /**
   * How deep a request body may nest. No body of the API nests past four levels; the bound
   * keeps a hostile or broken file from reaching the end of the stack when the body is written
   * out again to be sent (JSON.stringify recurses).
   */
  bodyNestingDepthMax: 64,
  /** Pages the utilisation report follows at most (each up to pageSizeMax licences). */
  reportPagesMax: 20,
  /**
   * Bytes of answers `chipledger api GET --all` gathers over its pages before it stops with the
   * cursor (as it does at 20 pages): each page is bounded (32 MiB), but 20 of them held at once,
   * and printed as one, took gigabytes and failed past the longest string V8 makes. An honest
   * page of events with long texts is about 10 MB as served (limits.pageBytesMax bounds it as
   * stored), so 20 of them fit; the gathered pages are held until printed, so the CLI holds at
   * most this and one page.
   */
  apiAllPagesBytesMax: 256 * 1024 * 1024,
  // chipledger log: its client, files, verifier and monitor (cli/log/).
  /** How long one request may take: a full tile or entry bundle is at most ~16 MiB. */
  logRequestTimeoutMs: 30_000,
  /** Largest answer read: an entry bundle of 256 entries of at most 65,535 bytes each. */
  logResponseBytesMax: 256 * (2 + 65_535),
  /**
   * The most an event file may hold: the API's JSON of the largest event (its canonical bytes,
   * at most limits.eventBytesMax = 65,535, twice over: as the body and in base64) with room.
   */
  eventFileBytesMax: 1024 * 1024,
  /** Largest state file read: a checkpoint note and a monitor's few pending ones, with cosignatures. */
  stateBytesMax: 1024 * 1024,
  /**
   * The largest tree verified whatever the machine: the tiles of a tree are listed before they
   * are fetched, and a hostile log must not make the verifier list more than it can hold. The
   * bound that counts on a real machine is verifyMemoryShareMax, below.
   */
  verifiableSizeMax: 2 ** 30,
  /**
   * The most of the machine's memory (machineMemoryBytes) a verification may need: every hash tile is
   * held until the end (32 bytes a leaf), and a log that signs a size whose tiles do not fit
   * would have the verifier killed for memory hours into the run, before it could say anything.
   * Half: the rest is the system's and the other programs'.
   */
  verifyMemoryShareMax: 0.5,
  /** Requests in flight at once while fetching tiles; entry bundles are fetched this far ahead. */
  fetchConcurrencyMax: 8,
  /** Default pause between two checkpoint fetches of `log monitor`. */
  monitorIntervalMsDefault: 5_000,
  /**
   * The longest pause between two fetches of `log monitor`: one day. (A timer cannot wait past
   * 2^31 - 1 ms, about 24.8 days: node would fire it after 1 ms, and the monitor would hammer
   * the log it watches.)
   */
  monitorIntervalMsMax: 86_400_000,
  /**
   * Rounds since the monitor's state last moved in which the log served a checkpoint but not
   * what settles it (its consistency proof, or the key list that explains its signature),
   * before that is an alert: a log can be down for a round or two, but one that serves
   * checkpoints and fails only there, even every other round, is dodging the check.
   */
  monitorUnprovenRoundsMax: 3,
  /** Unsettled signed heads the monitor keeps to hold later rounds to (the newest). */
  monitorPendingHeadsMax: 4,
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
