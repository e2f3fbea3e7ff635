import { describe, expect, it } from 'vitest';
import { backoffDelayMs, checkJitter, nextDelayMs, nominalPeriodMs, parseSchedule } from '../../src/follow/schedule.js';

const H = 3_600_000;

describe('schedule', () => {
  it('parses --every and --cron', () => {
    expect(parseSchedule('6h', undefined)).toEqual({ kind: 'every', intervalMs: 6 * H });
    expect(parseSchedule('1s', '')).toEqual({ kind: 'every', intervalMs: 1000 });
    expect(parseSchedule('6h', '*/5 * * * *')).toEqual({ kind: 'cron', expression: '*/5 * * * *' });
    expect(parseSchedule('6h', '@hourly')).toEqual({ kind: 'cron', expression: '@hourly' });
    expect(() => parseSchedule('banana', undefined)).toThrow(/not a duration/);
    expect(() => parseSchedule('0s', undefined)).toThrow(/not a duration/);
    expect(() => parseSchedule('6h', '61 * * * *')).toThrow(/not a cron expression/);
    expect(() => checkJitter(1.5)).toThrow(/between 0 and 1/);
    expect(checkJitter(0.1)).toBe(0.1);
  });

  it('refuses intervals below 1s, and cron schedules firing more often than once a second', () => {
    for (const every of ['1ms', '999ms', '500ms', '0.5s']) {
      expect(() => parseSchedule(every, undefined)).toThrow(`--every "${every}" is too short: checks must be at least 1s apart`);
    }
    expect(parseSchedule('1000ms', undefined)).toEqual({ kind: 'every', intervalMs: 1000 });
    // Six fields, seconds first: every second is the most a cron expression can say, and is allowed.
    expect(parseSchedule('6h', '* * * * * *')).toEqual({ kind: 'cron', expression: '* * * * * *' });
  });

  it('without jitter: exactly the interval, every time', () => {
    const s = parseSchedule('1s', undefined);
    for (const n of [1, 2, 10]) expect(nextDelayMs(s, 0, n, 0, () => 0.99)).toBe(1000);
  });

  it('with jitter: a splay over (0, I] after the start-up check, then I +- J', () => {
    const s = parseSchedule('6h', undefined);
    expect(nextDelayMs(s, 0.1, 1, 0, () => 0)).toBe(6 * H);
    expect(nextDelayMs(s, 0.1, 1, 0, () => 0.75)).toBeCloseTo(1.5 * H);
    expect(nextDelayMs(s, 0.1, 2, 0, () => 0)).toBeCloseTo(5.4 * H);
    expect(nextDelayMs(s, 0.1, 2, 0, () => 1)).toBeCloseTo(6.6 * H);
    expect(nextDelayMs(s, 0.1, 5, 0, () => 0.5)).toBeCloseTo(6 * H);
  });

  it('cron: to the next time, plus up to J of the gap', () => {
    const s = parseSchedule('6h', '0 * * * *');
    const now = Date.UTC(2025, 0, 1, 10, 15, 0);
    expect(nextDelayMs(s, 0, 1, now, () => 0.5)).toBe(45 * 60_000);
    expect(nextDelayMs(s, 0.1, 1, now, () => 1)).toBe(45 * 60_000 + 6 * 60_000);
    expect(nominalPeriodMs(s, now)).toBe(H);
    expect(nominalPeriodMs(parseSchedule('30m', undefined), now)).toBe(30 * 60_000);
  });

  it('backoff doubles from 1 s, is capped at the interval, and honours Retry-After', () => {
    const one = () => 0;
    expect([1, 2, 3, 4, 5].map((f) => backoffDelayMs(f, 10_000, 0.1, undefined, one))).toEqual([1000, 2000, 4000, 8000, 10_000]);
    expect(backoffDelayMs(20, 6 * H, 0, undefined, one)).toBe(6 * H);
    expect(backoffDelayMs(1, 500, 0, undefined, one)).toBe(500);
    expect(backoffDelayMs(1, 500, 0, 3000, one)).toBe(3000);
    expect(backoffDelayMs(1, 500, 0.5, undefined, () => 1)).toBe(250);
  });
});
