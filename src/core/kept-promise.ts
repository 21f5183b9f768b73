/**
 * A promise made once and kept for later callers, unless it rejects: a failure is given to
 * those already waiting, and the next caller makes the promise again. A load that failed once
 * (a package not installed yet, a database refused for a moment) is then not the answer for
 * the rest of the process, which for a test worker means every later file it runs.
 */
export class KeptPromise<T> {
  #kept: Promise<T> | undefined;

  /** The kept promise, made by `make` when there is none. */
  get(make: () => Promise<T>): Promise<T> {
    if (this.#kept !== undefined) return this.#kept;
    const made = make();
    this.#kept = made;
    made.catch(() => {
      if (this.#kept === made) this.#kept = undefined;
    });
    return made;
  }

  /** The kept promise, if any, no longer kept: the next get makes a new one. */
  take(): Promise<T> | undefined {
    const kept = this.#kept;
    this.#kept = undefined;
    return kept;
  }
}
