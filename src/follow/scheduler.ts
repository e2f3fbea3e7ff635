/**
 * When each followed ref is checked, and how much runs at once: one worker per ref on its own timer
 * (delays from schedule.ts: the interval or cron with jitter, backoff after a failed check, a
 * registry's Retry-After), at most MAX_CONCURRENT_UPDATES updates at a time, one swap at a time per
 * target dir (under the dir's install lock), and a stop that lets a swap finish but abandons what has
 * not reached one. What a check does is not its business (reconcile.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { resolve } from 'node:path';
import { acquireDirLocks } from '../install/dir-lock.js';
import type { Logger } from '../log/logger.js';
import type { Probe } from '../metrics/server.js';
import { backoffDelayMs, nextDelayMs, nominalPeriodMs, type Random, type Schedule } from './schedule.js';
import type { CheckOutcome } from './types.js';

/** At most this many refs download, validate and swap at once (memory and registry load). */
export const MAX_CONCURRENT_UPDATES = 2;

/** Checks that run longer than this make /healthz fail (a hung connection, a stuck validate-cmd). */
const STUCK_MS = 15 * 60_000;

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
  installed: boolean;
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
    const w: Worker = { ref, timer: undefined, running: undefined, runningSince: undefined, nextAt: undefined, checksDone: 0, failures: 0, installed: false, removed: false };
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

  /** /readyz: every ref of `refs` has been installed at least once. */
  ready(refs: readonly string[]): Probe {
    if (this.#stopping) return { ok: false, detail: 'shutting down' };
    const missing = refs.filter((r) => !this.isInstalled(r));
    return missing.length === 0 ? { ok: true } : { ok: false, detail: `not installed yet: ${missing.join(', ')}` };
  }

  /** /healthz: every ref has a check running or scheduled, and none is stuck. */
  healthy(): Probe {
    if (this.#stopping) return { ok: false, detail: 'shutting down' };
    const now = Date.now();
    for (const w of this.#workers.values()) {
      if (w.running && w.runningSince !== undefined && now - w.runningSince > STUCK_MS) {
        return { ok: false, detail: `check of ${w.ref} running for ${Math.round((now - w.runningSince) / 1000)} s` };
      }
      if (!w.running && !w.timer) return { ok: false, detail: `no check of ${w.ref} scheduled` };
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
