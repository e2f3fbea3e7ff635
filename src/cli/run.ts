import { constants } from 'node:os';
import type { Command } from 'commander';
import { DiginfraError, exitCodeFor, messageOf, type ErrorCode } from '../errors.js';
import { createLogger, type Logger } from '../log/index.js';
import type { LevelWithSilent } from 'pino';

/** What every action gets: the global options, a logger, and where to print data. */
export interface CliContext {
  configPath: string | undefined;
  logger: Logger;
  /** Data output goes here (stdout); logs go to stderr. */
  out: (text: string) => void;
}

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);
/** `--log-format`; without it, text on a terminal and JSON lines otherwise (src/log/logger.ts). */
const LOG_FORMATS = ['text', 'json', 'color'];

export function contextFrom(cmd: Command): CliContext {
  const globals = cmd.optsWithGlobals<{ config?: string; logLevel?: string; logFormat?: string }>();
  const level = globals.logLevel ?? 'info';
  if (!LEVELS.has(level)) {
    throw new DiginfraError('USAGE', `--log-level "${level}" is not one of ${[...LEVELS].join(', ')}`);
  }
  const format = globals.logFormat;
  if (format !== undefined && !LOG_FORMATS.includes(format)) {
    throw new DiginfraError('USAGE', `--log-format "${format}" is not one of ${LOG_FORMATS.join(', ')}`);
  }
  // falcoctl's `color` is its text format with colors; ours has none.
  const json = format === undefined ? undefined : format === 'json';
  let logger: Logger | undefined;
  return {
    configPath: globals.config,
    // Created on first use, so commands that do not log never load pino.
    get logger() {
      logger ??= createLogger(level as LevelWithSilent, json === undefined ? {} : { json });
      return logger;
    },
    out: (text) => {
      if (!stdoutClosed) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
  };
}

/** Prints a command's data as JSON (`-o json`): one document on stdout. */
export function printJson(ctx: CliContext, value: unknown): void {
  ctx.out(JSON.stringify(value, null, 2));
}

/** What `-o json` prints on stderr for an error: `{"error": {"code", "message", "hint"?}}`, one line. */
export interface JsonError {
  /** An ErrorCode (src/errors.ts); INTERNAL for an unexpected failure (a bug). */
  code: ErrorCode | 'INTERNAL';
  message: string;
  hint?: string;
}

export function jsonErrorOf(err: unknown): JsonError {
  const code = err instanceof DiginfraError ? err.code : 'INTERNAL';
  const hint = err instanceof DiginfraError ? err.hint : undefined;
  return { code, message: messageOf(err), ...(hint !== undefined && { hint }) };
}

function writeJsonError(error: JsonError): void {
  process.stderr.write(`${JSON.stringify({ error })}\n`);
}

/**
 * Prints an error to stderr, as `error: <message>` and `hint: <what to do>` lines, or with `json`
 * as one JSON object (jsonErrorOf); returns the exit status. A closed stdout (`| head -1`) is not an
 * error: nothing is printed, and the status is what the command had.
 */
export function reportError(err: unknown, opts: { json?: boolean } = {}): number {
  if (isClosedPipe(err)) return typeof process.exitCode === 'number' ? process.exitCode : 0;
  if (opts.json) {
    writeJsonError(jsonErrorOf(err));
    return exitCodeFor(err);
  }
  const message = messageOf(err);
  process.stderr.write(`error: ${message}\n`);
  if (err instanceof DiginfraError && err.hint) process.stderr.write(`hint: ${err.hint}\n`);
  if (!(err instanceof DiginfraError) && process.env.DIGINFRACTL_DEBUG && err instanceof Error) {
    process.stderr.write(`${err.stack ?? ''}\n`);
  }
  return err instanceof Interrupted ? err.exitCode : exitCodeFor(err);
}

/**
 * A command ended by SIGINT or SIGTERM. Its exit status is 128 + the signal's number (130, 143), as a
 * shell reports a process the signal killed: the command did not finish, so scripts and init
 * containers must not take it for success. (`artifact follow` is different: SIGTERM is how the agent
 * is meant to stop, and it exits 0.)
 */
export class Interrupted extends DiginfraError {
  readonly signal: NodeJS.Signals;
  readonly exitCode: number;

  constructor(signal: NodeJS.Signals) {
    super('INTERRUPTED', `interrupted by ${signal}: the download in progress was abandoned and its staging removed`, {
      hint: 'files already in place were left as they were; run the command again to finish',
    });
    this.signal = signal;
    this.exitCode = 128 + (constants.signals[signal] ?? 0);
  }
}

/**
 * For commands that download (`artifact install`, `repo pull`): the first SIGINT or SIGTERM aborts
 * `signal` with an Interrupted reason, so transfers stop, staging is removed and the command fails
 * with exit status 130 or 143 within moments. An install already moving its files finishes that
 * first (a few renames), so there is no forced exit on a timer. A second signal ends the process at
 * once (an install caught in its move phase is then settled by the next run: src/install/recover.ts).
 * `dispose` removes the handlers.
 */
export function interruptOnSignals(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const SIGNALS = ['SIGINT', 'SIGTERM'] as const;
  const again = (sig: NodeJS.Signals): void => {
    for (const s of SIGNALS) process.off(s, again);
    process.kill(process.pid, sig);
  };
  const first = (sig: NodeJS.Signals): void => {
    for (const s of SIGNALS) process.off(s, first);
    for (const s of SIGNALS) process.on(s, again);
    controller.abort(new Interrupted(sig));
  };
  for (const s of SIGNALS) process.on(s, first);
  return {
    signal: controller.signal,
    dispose: () => {
      for (const s of SIGNALS) {
        process.off(s, first);
        process.off(s, again);
      }
    },
  };
}

/** A usage error commander found (unknown option, missing argument), as `-o json` prints it. */
export function reportUsageError(message: string): void {
  writeJsonError({ code: 'USAGE', message: message.replace(/^error: /, '').trim() });
}

/** Set once the reader of stdout is gone (`diginfractl ... | head -1`): what is left to print is dropped. */
let stdoutClosed = false;

/** EPIPE (the reader closed the pipe), or a write to stdout after that. */
function isClosedPipe(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EPIPE' || (stdoutClosed && code === 'ERR_STREAM_DESTROYED');
}

/**
 * A reader that stops early (`repo push ... | head -1`) closes the pipe: the next write fails with
 * EPIPE, which Node raises as an 'error' event that, unhandled, ends the process with a stack trace.
 * Here the command finishes its work quietly instead (a push or an install half done helps nobody),
 * with nothing more printed there and its own exit status. The same for stderr (`2>&1 | head`).
 */
export function quietOnClosedPipes(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') {
        if (stream === process.stdout) stdoutClosed = true;
        return;
      }
      // Any other failure of stdio (EIO on a vanished terminal): the command cannot say what it did.
      process.exitCode = 1;
    });
  }
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
export function failIfUnfinished(work: Promise<unknown>, opts: { json?: boolean } = {}): void {
  let settled = false;
  const done = () => {
    settled = true;
  };
  work.then(done, done);
  process.once('beforeExit', () => {
    if (settled) return;
    const message = 'internal error: the command stopped before it finished, with nothing left to wait for';
    const hint = 'this is a bug in diginfractl; run again with --log-level debug and report what it printed';
    if (opts.json) writeJsonError({ code: 'INTERNAL', message, hint });
    else process.stderr.write(`error: ${message}\nhint: ${hint}\n`);
    process.exitCode = 1;
  });
}
