import type { Command } from 'commander';
import { DiginfraError, exitCodeFor, messageOf } from '../errors.js';
import { createLogger, type Logger } from '../log/logger.js';
import type { LevelWithSilent } from 'pino';

/** What every action gets: the global options, a logger, and where to print data. */
export interface CliContext {
  configPath: string | undefined;
  logger: Logger;
  /** Data output goes here (stdout); logs go to stderr. */
  out: (text: string) => void;
}

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

export function contextFrom(cmd: Command): CliContext {
  const globals = cmd.optsWithGlobals<{ config?: string; logLevel?: string }>();
  const level = globals.logLevel ?? 'info';
  if (!LEVELS.has(level)) {
    throw new DiginfraError('USAGE', `--log-level "${level}" is not one of ${[...LEVELS].join(', ')}`);
  }
  let logger: Logger | undefined;
  return {
    configPath: globals.config,
    // Created on first use, so commands that do not log never load pino.
    get logger() {
      logger ??= createLogger(level as LevelWithSilent);
      return logger;
    },
    out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  };
}

/** Prints a one-line error and its hint to stderr; returns the exit status. */
export function reportError(err: unknown): number {
  const message = messageOf(err);
  process.stderr.write(`error: ${message}\n`);
  if (err instanceof DiginfraError && err.hint) process.stderr.write(`hint: ${err.hint}\n`);
  if (!(err instanceof DiginfraError) && process.env.DIGINFRACTL_DEBUG && err instanceof Error) {
    process.stderr.write(`${err.stack ?? ''}\n`);
  }
  return exitCodeFor(err);
}

/** Output format flag shared by data commands. */
export type OutputFormat = 'table' | 'json';

export function outputFormat(value: string | undefined): OutputFormat {
  const v = value ?? 'table';
  if (v !== 'table' && v !== 'json') throw new DiginfraError('USAGE', `-o "${v}" is not one of table, json`);
  return v;
}

/** Collects a repeatable option (`--platform a --platform b`) into an array. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Fixed-width columns; on a TTY the last column is cut to the terminal width. */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const lines = [headers, ...rows].map((r) =>
    r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '),
  );
  const cols = process.stdout.isTTY ? process.stdout.columns : undefined;
  return lines.map((l) => (cols && l.length > cols ? `${l.slice(0, Math.max(cols - 1, 1))}…` : l)).join('\n');
}

/**
 * A command whose work stalls (waiting on a promise nothing will ever settle) would end with exit
 * code 0 and no output once Node has nothing left to wait for: the worst way to fail, since scripts
 * and init containers take it for success. Node emits 'beforeExit' exactly then; if `work` has not
 * settled by that time, this says so and sets exit code 1.
 */
export function failIfUnfinished(work: Promise<unknown>): void {
  let settled = false;
  const done = () => {
    settled = true;
  };
  work.then(done, done);
  process.once('beforeExit', () => {
    if (settled) return;
    process.stderr.write('error: internal error: the command stopped before it finished, with nothing left to wait for\n');
    process.stderr.write('hint: this is a bug in diginfractl; run again with --log-level debug and report what it printed\n');
    process.exitCode = 1;
  });
}
