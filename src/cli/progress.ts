/**
 * A small progress bar on stderr (stdout stays clean for results). On a terminal it redraws one
 * line at most every redrawIntervalMs; elsewhere (CI logs, pipes) it prints one line per phase
 * when the phase ends, so logs are not flooded.
 */
export const redrawIntervalMs = 80;
const barWidth = 30;

export interface Progress {
  update(done: number): void;
  /** Ends the phase: a full bar on a terminal, a single summary line elsewhere. */
  finish(note?: string): void;
  /**
   * Ends an unfinished phase that failed: on a terminal, ends the bar's line where it stands
   * (no full bar, which would claim it was all done); elsewhere nothing was written. After
   * finish, nothing.
   */
  abandon(): void;
}

export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): boolean;
}

export function createProgress(label: string, total: number, unit: string, stream: ProgressStream = process.stderr, now: () => number = Date.now): Progress {
  const interactive = stream.isTTY === true;
  let lastDrawMs = -Infinity;
  let done = 0;
  let finished = false;
  let drawn = false;
  const draw = (): void => {
    const fraction = total > 0 ? Math.min(1, done / total) : 1;
    const filled = Math.round(fraction * barWidth);
    const bar = `${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}`;
    drawn = true;
    stream.write(`\r${label} ${bar} ${String(Math.floor(fraction * 100)).padStart(3)}% ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} ${unit}`);
  };
  return {
    update(value) {
      done = value;
      if (!interactive || finished) return;
      const at = now();
      if (at - lastDrawMs < redrawIntervalMs) return;
      lastDrawMs = at;
      draw();
    },
    finish(note) {
      if (finished) return;
      finished = true;
      done = total;
      if (interactive) {
        draw();
        stream.write(note ? `; ${note}\n` : '\n');
      } else {
        stream.write(`${label.trim()}: ${total.toLocaleString('en-US')} ${unit}${note ? `; ${note}` : ''}\n`);
      }
    },
    abandon() {
      if (finished) return;
      finished = true;
      if (interactive && drawn) stream.write('\n');
    },
  };
}
