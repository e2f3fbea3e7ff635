/**
 * What /healthz (the liveness probe) judges: is the agent stuck, so that a restart could help? Two
 * things can be: a check of a ref that makes no progress (no bytes, no end) or does not start when it
 * is due, for several intervals (STUCK_INTERVALS, bounded below and above: stuckAfterMs); and the
 * event loop itself, blocked for seconds (LoopWatch). Registry, auth, signature or validation failures
 * are not stuck: a restart would fail the same way, so they go to the metrics, never to this probe.
 */

/** A check is stuck after this many intervals without progress... */
export const STUCK_INTERVALS = 3;
/** ...but never before this (a validate command may take 2 min, a lock wait 60 s, a slow answer 60 s)... */
export const MIN_STUCK_MS = 5 * 60_000;
/** ...and always after this, whatever the interval (6h would make it 18h). */
export const MAX_STUCK_MS = 15 * 60_000;

/** How long a check of a schedule with period `periodMs` may go without progress before it is stuck. */
export function stuckAfterMs(periodMs: number, minMs: number = MIN_STUCK_MS): number {
  return Math.max(minMs, Math.min(MAX_STUCK_MS, STUCK_INTERVALS * periodMs));
}

/** A blocked event loop: how long, and when it ran again. */
export interface Stall {
  lagMs: number;
  at: number;
}

export interface LoopWatchOptions {
  /** A tick this late is a stall (default 10 s: far beyond any GC pause of the agent's small heap). */
  stallMs?: number;
  /** How long /healthz reports a stall after it (default 30 s: one stall fails at most two probes 20 s apart). */
  reportMs?: number;
}

/**
 * Measures the event loop with a timer that should tick every second: a tick that comes `stallMs`
 * late means the loop was blocked that long (a probe sent meanwhile was not even answered). The
 * timer is unref'd: it never keeps the process alive.
 */
export class LoopWatch {
  readonly #stallMs: number;
  readonly #reportMs: number;
  readonly #tickMs: number;
  #timer: NodeJS.Timeout | undefined;
  #last = 0;
  #stall: Stall | undefined;

  constructor(opts: LoopWatchOptions = {}) {
    this.#stallMs = opts.stallMs ?? 10_000;
    this.#reportMs = opts.reportMs ?? 30_000;
    this.#tickMs = Math.max(10, Math.min(1_000, Math.floor(this.#stallMs / 4)));
  }

  start(): void {
    if (this.#timer) return;
    this.#last = Date.now();
    this.#timer = setInterval(() => this.#tick(), this.#tickMs).unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(now = Date.now()): void {
    const lag = now - this.#last - this.#tickMs;
    this.#last = now;
    if (lag >= this.#stallMs) this.#stall = { lagMs: lag, at: now };
  }

  /** The last stall, while it is recent enough to report. */
  stall(now = Date.now()): Stall | undefined {
    // A loop blocked right now has not ticked: look at the gap so far too.
    if (this.#timer) {
      const lag = now - this.#last - this.#tickMs;
      if (lag >= this.#stallMs) return { lagMs: lag, at: now };
    }
    return this.#stall && now - this.#stall.at <= this.#reportMs ? this.#stall : undefined;
  }
}
