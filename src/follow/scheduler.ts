/**
 * When each followed ref is checked, and how much runs at once: one worker per ref on its own timer
 * (delays from schedule.ts: the interval or cron with jitter, backoff after a failed check, a
 * registry's Retry-After), at most MAX_CONCURRENT_UPDATES updates at a time, one swap at a time per
 * target dir (under the dir's install lock), and a stop that lets a swap finish but abandons what has
 * not reached one. What a check does is not its business (reconcile.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { resolve } from 'node:path';
import { acquireDirLocks } from '../install/index.js';
import type { Logger } from '../log/index.js';
import type { Probe } from '../metrics/index.js';
import { stuckAfterMs } from './liveness.js';
import { backoffDelayMs, nextDelayMs, nominalPeriodMs, type Random, type Schedule } from './schedule.js';
import type { CheckOutcome } from './types.js';

/** At most this many refs download, validate and swap at once (memory and registry load). */
export const MAX_CONCURRENT_UPDATES = 2;

/** The reason of the scheduler's abort signal: a check caught by stop() before its swap. */
export class Abandoned extends Error {
  constructor() {
    super('shutting down: update abandoned before the swap');
  }
}

/** A counting semaphore. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((res) => this.#waiting.push(res));
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

interface Worker {
  ref: string;
  timer: NodeJS.Timeout | undefined;
  running: Promise<CheckOutcome> | undefined;
  runningSince: number | undefined;
  nextAt: number | undefined;
  checksDone: number;
  failures: number;
  /** Files of the ref are known to be in place (follow's state, or install's lock file). */
  installed: boolean;
  /** The first check of the ref in this process has ended, whatever its result. */
  settled: boolean;
  /** The last sign of life of its check loop: added, a check started or ended, bytes downloaded. */
  lastProgress: number;
  removed: boolean;
}

export interface SchedulerOptions {
  /** One check of a ref; never throws (a failure is an `error` outcome). */
  check: (ref: string) => Promise<CheckOutcome>;
  /** The schedule and jitter now (a reconfigure may change them). */
  timing: () => { schedule: Schedule; jitter: number };
  random: Random;
  logger: Logger;
  /** How long a swap waits for the install lock of its dir. */
  lockTimeoutMs: number;
  /** The least time without progress that makes a check stuck (default liveness.MIN_STUCK_MS). */
  minStuckMs?: number;
}

export class Scheduler {
  readonly #opts: SchedulerOptions;
  readonly #workers = new Map<string, Worker>();
  /** Per target dir: the tail of the queue of swaps into it (one at a time per dir in this process). */
  readonly #dirQueues = new Map<string, Promise<unknown>>();
  /** Swaps in progress: stop() waits for them, so a swap is never cut in the middle. */
  readonly #commits = new Set<Promise<unknown>>();
  readonly #abort = new AbortController();
  readonly #updates = new Slots(MAX_CONCURRENT_UPDATES);
  #stopping = false;

  constructor(opts: SchedulerOptions) {
    this.#opts = opts;
  }

  /** Aborted by stop(), with an Abandoned as its reason: nothing new starts, no swap begins. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  /** Starts checking `ref`: now, then on its schedule. */
  add(ref: string): void {
    const w: Worker = {
      ref,
      timer: undefined,
      running: undefined,
      runningSince: undefined,
      nextAt: undefined,
      checksDone: 0,
      failures: 0,
      installed: false,
      settled: false,
      lastProgress: Date.now(),
      removed: false,
    };
    this.#workers.set(ref, w);
    this.#schedule(w, 0);
  }

  /** Stops checking `ref` (a check running now finishes, and nothing follows it). */
  remove(ref: string): void {
    const w = this.#workers.get(ref);
    if (!w) return;
    w.removed = true;
    if (w.timer) clearTimeout(w.timer);
    this.#workers.delete(ref);
  }

  refs(): string[] {
    return [...this.#workers.keys()];
  }

  /**
   * After a new schedule or jitter: the pending checks of the refs not in `skip` (just added) and not
   * backing off move to the new timing. Returns the refs re-timed.
   */
  retime(skip: readonly string[]): string[] {
    const { schedule, jitter } = this.#opts.timing();
    const retimed: string[] = [];
    for (const w of this.#workers.values()) {
      if (skip.includes(w.ref) || !w.timer || w.failures > 0) continue;
      this.#schedule(w, nextDelayMs(schedule, jitter, Math.max(w.checksDone, 2), Date.now(), this.#opts.random));
      retimed.push(w.ref);
    }
    return retimed;
  }

  /** For /readyz: `ref` has had a version in place since it is followed. */
  markInstalled(ref: string): void {
    const w = this.#workers.get(ref);
    if (w) w.installed = true;
  }

  /** For /readyz: a check of `ref` ended (the first one settles its start-up, whatever it found). */
  checkEnded(ref: string): void {
    const w = this.#workers.get(ref);
    if (!w) return;
    w.settled = true;
    w.lastProgress = Date.now();
  }

  /** For /healthz: the check of `ref` is moving (bytes arrived). */
  progress(ref: string): void {
    const w = this.#workers.get(ref);
    if (w) w.lastProgress = Date.now();
  }

  isInstalled(ref: string): boolean {
    return this.#workers.get(ref)?.installed === true;
  }

  #schedule(w: Worker, delayMs: number): void {
    if (w.timer) clearTimeout(w.timer);
    const delay = Math.max(0, Math.min(Math.round(delayMs), 2 ** 31 - 1));
    w.nextAt = Date.now() + delay;
    w.timer = setTimeout(() => void this.#run(w), delay);
  }

  async #run(w: Worker): Promise<void> {
    w.timer = undefined;
    w.nextAt = undefined;
    if (this.#stopping || w.removed) return;
    w.runningSince = Date.now();
    w.lastProgress = w.runningSince;
    w.running = this.#opts.check(w.ref);
    const outcome = await w.running;
    w.running = undefined;
    w.runningSince = undefined;
    w.checksDone++;
    if (this.#stopping || w.removed) return;
    const { schedule, jitter } = this.#opts.timing();
    if (outcome.result === 'error') {
      w.failures++;
      const delay = backoffDelayMs(w.failures, nominalPeriodMs(schedule, Date.now()), jitter, outcome.retryAfterMs, this.#opts.random);
      this.#opts.logger.info({ ref: w.ref, failures: w.failures, retryInMs: Math.round(delay) }, `next try of ${w.ref} in ${Math.round(delay / 1000)} s`);
      this.#schedule(w, delay);
    } else {
      w.failures = 0;
      this.#schedule(w, nextDelayMs(schedule, jitter, w.checksDone, Date.now(), this.#opts.random));
    }
  }

  /** Runs a download-validate-swap in one of the MAX_CONCURRENT_UPDATES slots (waits for one). */
  inUpdateSlot<T>(fn: () => Promise<T>): Promise<T> {
    return this.#updates.run(fn);
  }

  /** Runs `fn` (a swap and its state write) alone for `dir` in this process and under its install lock. */
  commit<T>(dir: string, fn: () => Promise<T>): Promise<T> {
    const key = resolve(dir);
    const prev = this.#dirQueues.get(key) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(async () => {
      this.#abort.signal.throwIfAborted();
      const lock = await acquireDirLocks([key], { timeoutMs: this.#opts.lockTimeoutMs });
      try {
        return await fn();
      } finally {
        await lock.release();
      }
    });
    // The bookkeeping copy never rejects: a failed swap (lock timeout, I/O error, Abandoned) is the
    // caller's to handle through `run`; an unhandled rejection here would end the process.
    const tracked: Promise<void> = run
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        this.#commits.delete(tracked);
        if (this.#dirQueues.get(key) === tracked) this.#dirQueues.delete(key);
      });
    this.#commits.add(tracked);
    this.#dirQueues.set(key, tracked);
    return run;
  }

  /**
   * Stops: no new checks; a swap in progress is finished (never cut between two renames), a check that
   * is still downloading or validating is abandoned (its staging dir removed) within `graceMs`.
   */
  async stop(graceMs: number): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#abort.abort(new Abandoned());
    for (const w of this.#workers.values()) if (w.timer) clearTimeout(w.timer);
    while (this.#commits.size > 0) await Promise.allSettled([...this.#commits]);
    const running = [...this.#workers.values()].map((w) => w.running).filter((p): p is Promise<CheckOutcome> => p !== undefined);
    if (running.length > 0) {
      await Promise.race([Promise.allSettled(running), sleep(graceMs, undefined, { ref: false })]);
    }
    while (this.#commits.size > 0) await Promise.allSettled([...this.#commits]);
  }

  /**
   * /readyz: the start-up work of every ref of `refs` is done: its files are in place (follow's state or
   * install's lock file says so, and they are there), or its first check has ended, whatever it found.
   * Never "the registry or the engine answered": in the engine's pod, the engine waits for this.
   */
  ready(refs: readonly string[]): Probe {
    if (this.#stopping) return { ok: false, detail: 'shutting down' };
    const waiting = refs.filter((r) => {
      const w = this.#workers.get(r);
      return !w || !(w.installed || w.settled);
    });
    if (waiting.length > 0) return { ok: false, detail: `first check not done yet: ${waiting.join(', ')}` };
    const missing = refs.filter((r) => !this.isInstalled(r));
    // Ready all the same: the failing checks are for the metrics (diginfractl_follow_consecutive_failures).
    return missing.length === 0 ? { ok: true } : { ok: true, detail: `nothing installed yet for ${missing.join(', ')}` };
  }

  /**
   * /healthz: every ref has a check running or scheduled, and none is stuck: a running check that made
   * no progress, or a due check that did not start, for STUCK_INTERVALS intervals (liveness.ts).
   */
  healthy(): Probe {
    if (this.#stopping) return { ok: false, detail: 'shutting down' };
    const now = Date.now();
    let limit: number | undefined;
    const stuckAfter = (): number => (limit ??= stuckAfterMs(nominalPeriodMs(this.#opts.timing().schedule, now), this.#opts.minStuckMs));
    for (const w of this.#workers.values()) {
      if (!w.running && !w.timer) return { ok: false, detail: `no check of ${w.ref} scheduled` };
      const seconds = (ms: number): number => Math.round(ms / 1000);
      if (w.running && now - w.lastProgress > stuckAfter()) {
        return { ok: false, detail: `check of ${w.ref} made no progress for ${seconds(now - w.lastProgress)} s (running for ${seconds(now - (w.runningSince ?? now))} s)` };
      }
      if (!w.running && w.nextAt !== undefined && now - w.nextAt > stuckAfter()) {
        return { ok: false, detail: `check of ${w.ref} due ${seconds(now - w.nextAt)} s ago has not started` };
      }
    }
    return { ok: true };
  }

  /** Per-ref view, for logs and tests. */
  status(): { ref: string; installed: boolean; failures: number; checks: number; nextAt?: number }[] {
    return [...this.#workers.values()].map((w) => ({
      ref: w.ref,
      installed: w.installed,
      failures: w.failures,
      checks: w.checksDone,
      ...(w.nextAt !== undefined && { nextAt: w.nextAt }),
    }));
  }
}
