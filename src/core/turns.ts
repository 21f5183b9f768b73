/**
 * Giving the event loop a turn in the middle of long work (hashing a batch's leaves, encoding
 * its rows), so that the database's answers are read and its next statements sent meanwhile.
 */

/** A turn: whatever is due runs (in the loop's check phase, maybe before any socket is read). */
export const yieldToEventLoop = (): Promise<void> => new Promise((resume) => setImmediate(resume));

/**
 * A turn that reads the sockets first. Work that runs on from an answer read in the loop's
 * poll phase gets, from one setImmediate, that same turn's check phase, before the next poll;
 * the second runs after it.
 */
export const pollingTurn = (): Promise<void> => new Promise((resume) => setImmediate(() => setImmediate(resume)));
