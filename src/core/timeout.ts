/**
 * A promise bounded in time: the caller stops waiting after `timeoutMs` (the work itself goes
 * on; bound it too where it holds something). The timer never outlives the race.
 */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, message = `timed out after ${timeoutMs} ms`): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(message)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
