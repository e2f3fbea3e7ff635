/**
 * When each followed ref is checked. Pure functions of the schedule, the jitter and a random source,
 * so the simulation in bench/follow-jitter.mjs and the unit tests run them without timers.
 *
 * `--every I --jitter J`: the first check runs at start-up. The second comes after a random splay in
 * (0, I] when J > 0 (exactly I when J = 0), which spreads agents started together (a DaemonSet rollout,
 * a cluster restart) uniformly over one interval; after that every check is I * (1 +- J). A failed
 * check is retried with exponential backoff (1 s, 2 s, 4 s, ...) capped at the interval, or after the
 * registry's Retry-After when it sent one.
 *
 * `--cron EXPR`: the first check runs at start-up, then at every time the expression names (UTC), each
 * delayed by a random part of J times the gap to the following time.
 */
import { createRequire } from 'node:module';
import type { CronExpressionParser as CronParser } from 'cron-parser';
import { DiginfraError, messageOf } from '../errors.js';
import { parseDuration } from '../config/index.js';

// cron-parser (and luxon under it) is loaded only when a cron schedule is used.
const require = createRequire(import.meta.url);
let cronParser: typeof CronParser | undefined;
function cron(): typeof CronParser {
  cronParser ??= (require('cron-parser') as { CronExpressionParser: typeof CronParser }).CronExpressionParser;
  return cronParser;
}

export type Schedule = { kind: 'every'; intervalMs: number } | { kind: 'cron'; expression: string };

export type Random = () => number;

/** First delay of the backoff after a failed check. */
export const BACKOFF_BASE_MS = 1_000;

/**
 * The shortest interval between two checks of a ref: `--every 1ms` sent a registry 1,911 HEADs in 8 s
 * from one agent. Anything more frequent is a typo, not a schedule.
 */
export const MIN_INTERVAL_MS = 1_000;

/** How many upcoming times of a cron schedule are looked at for a gap below MIN_INTERVAL_MS. */
const CRON_GAPS_CHECKED = 10;

/** `--every` / `--cron` (cron wins when both are set, as the config's `follow.cron` documents). */
export function parseSchedule(every: string, cronText: string | undefined): Schedule {
  if (cronText !== undefined && cronText.trim() !== '') {
    try {
      cron().parse(cronText.trim(), { tz: 'UTC' });
    } catch (err) {
      throw new DiginfraError('USAGE', `--cron "${cronText}" is not a cron expression: ${messageOf(err)}`, {
        hint: 'five fields (minute hour day-of-month month day-of-week), six with seconds first, or @hourly, @daily, ...',
      });
    }
    checkCronFrequency(cronText.trim());
    return { kind: 'cron', expression: cronText.trim() };
  }
  const ms = parseDuration(every);
  if (ms === undefined || ms <= 0) {
    throw new DiginfraError('USAGE', `--every "${every}" is not a duration; use a number with a unit, like 6h, 30m or 90s`);
  }
  if (ms < MIN_INTERVAL_MS) {
    throw new DiginfraError('USAGE', `--every "${every}" is too short: checks must be at least 1s apart (use a duration like 30s, 5m or 6h)`);
  }
  return { kind: 'every', intervalMs: ms };
}

/** A cron schedule that would fire more often than once a second is refused, like a short --every. */
function checkCronFrequency(expression: string): void {
  const times = cronTimes(expression, Date.now(), CRON_GAPS_CHECKED);
  for (let i = 1; i < times.length; i++) {
    if (times[i]! - times[i - 1]! < MIN_INTERVAL_MS) {
      throw new DiginfraError('USAGE', `--cron "${expression}" fires more often than once a second: checks must be at least 1s apart`);
    }
  }
}

export function checkJitter(jitter: number): number {
  if (!Number.isFinite(jitter) || jitter < 0 || jitter > 1) {
    throw new DiginfraError('USAGE', `--jitter "${jitter}" must be a fraction between 0 and 1 (0.1 = +-10% of the interval)`);
  }
  return jitter;
}

function cronTimes(expression: string, fromMs: number, count: number): number[] {
  const it = cron().parse(expression, { currentDate: new Date(fromMs), tz: 'UTC' });
  const out: number[] = [];
  for (let i = 0; i < count && it.hasNext(); i++) out.push(it.next().getTime());
  return out;
}

/** The nominal period of a schedule, for backoff caps and staleness: the interval, or a cron gap. */
export function nominalPeriodMs(schedule: Schedule, nowMs: number): number {
  if (schedule.kind === 'every') return schedule.intervalMs;
  const [a, b] = cronTimes(schedule.expression, nowMs, 2);
  return a !== undefined && b !== undefined ? Math.max(b - a, 1_000) : 24 * 3_600_000;
}

/**
 * Milliseconds from `nowMs` (the end of a check that did not fail) to the next check. `checksDone` is
 * how many checks of this ref have run so far (1 after the start-up check).
 */
export function nextDelayMs(schedule: Schedule, jitter: number, checksDone: number, nowMs: number, random: Random = Math.random): number {
  if (schedule.kind === 'cron') {
    const [a, b] = cronTimes(schedule.expression, nowMs, 2);
    if (a === undefined) return 24 * 3_600_000;
    const gap = b !== undefined ? b - a : 0;
    return Math.max(a - nowMs, 0) + random() * jitter * gap;
  }
  const interval = schedule.intervalMs;
  if (jitter <= 0) return interval;
  // Splay once, right after the start-up check: uniform over (0, I].
  if (checksDone <= 1) return interval * (1 - random());
  return interval * (1 + jitter * (2 * random() - 1));
}

/**
 * Delay before retrying after `failures` consecutive failed checks (1 for the first): 1 s, 2 s, 4 s ...
 * capped at `capMs` (the interval), with up to `jitter` of it taken off at random; a `retryAfterMs`
 * from the registry (429) is honoured as a lower bound, even above the cap.
 */
export function backoffDelayMs(failures: number, capMs: number, jitter: number, retryAfterMs?: number, random: Random = Math.random): number {
  const exp = Math.min(capMs, BACKOFF_BASE_MS * 2 ** Math.max(failures - 1, 0));
  const delay = exp * (1 - jitter * random());
  return retryAfterMs !== undefined ? Math.max(delay, retryAfterMs) : delay;
}
