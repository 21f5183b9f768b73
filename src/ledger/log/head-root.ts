/** What refuses to sign a head whose root the stored tiles do not give (the checkpointer, a key's announcement). */

/**
 * A head whose root is not the root of the tree the tiles store: written around the ledger (a
 * writer may update log_head), or by a bug. Signed, it would be a checkpoint no tree has, which
 * every monitor holds the log to for ever and the start-up check then refuses: the log could
 * never be served again.
 */
export class HeadRootMismatch extends Error {
  constructor(size: number, headRoot: Buffer, storedRoot: Buffer) {
    super(`refused to sign the log's head: at size ${size} its root is ${headRoot.toString('hex')}, but the stored tiles give ${storedRoot.toString('hex')}; nothing was signed (run chipledger check)`);
    this.name = 'HeadRootMismatch';
  }
}
