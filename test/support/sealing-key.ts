/**
 * The log key the tests' ledgers seal their heads with (src/ledger/log/head-seal.ts): the
 * world's ledger, the world templates' and the signing ledgers of test/support/signing-ledger.ts
 * all seal with it, whatever key each signs with, as a deployment's processes all hold the log's
 * key. Fixed, not made per run: a world template is built in another process (global setup).
 * A test key, of no use anywhere else.
 */
export const testSealingKey = 'PRIVATE+KEY+sealing.chipledger.test+e77676b3+AQIgxDnqLJc/anDF7v8C7Ddc6J8s3vxL4OSHvxqOuaoH';
