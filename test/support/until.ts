/**
 * Waits for something another task does (a timer's look, a server's answer): polls
 * `condition` every `everyMs` until it holds, or fails after `withinMs` naming `what` (and,
 * given `progress`, where things stood).
 */
export async function until(what: string, condition: () => boolean, options: { withinMs: number; everyMs?: number; progress?: () => string }): Promise<void> {
  const deadlineMs = Date.now() + options.withinMs;
  while (!condition()) {
    if (Date.now() > deadlineMs) throw new Error(`not within ${options.withinMs} ms: ${what}${options.progress === undefined ? '' : ` (${options.progress()})`}`);
    await new Promise((resume) => setTimeout(resume, options.everyMs ?? 5));
  }
}
