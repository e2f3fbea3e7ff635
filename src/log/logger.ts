import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import type { Logger, LevelWithSilent } from 'pino';

// pino is loaded on first use: commands that never log (search, info) skip its ~30 ms load.
const require = createRequire(import.meta.url);
let pinoModule: typeof import('pino') | undefined;
function loadPino(): typeof import('pino') {
  pinoModule ??= require('pino') as typeof import('pino');
  return pinoModule;
}

export type { Logger };

const LEVEL_NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** Keys whose values never reach a log line, wherever they appear. */
export const REDACT_PATHS = [
  'password',
  'token',
  'authorization',
  'auth',
  '*.password',
  '*.token',
  '*.authorization',
  '*.auth',
  'headers.authorization',
  '*.headers.authorization',
];

/** Human lines for a terminal: `warn: message key=value`. JSON stays the format for machines. */
function terminalStream(out: NodeJS.WriteStream): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      try {
        const { level, msg, time: _t, pid: _p, hostname: _h, ...rest } = JSON.parse(chunk.toString()) as Record<string, unknown>;
        const extras = Object.entries(rest)
          .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join(' ');
        out.write(`${LEVEL_NAMES[level as number] ?? level}: ${String(msg ?? '')}${extras ? ` ${extras}` : ''}\n`);
      } catch {
        out.write(chunk);
      }
      cb();
    },
  });
}

/**
 * Logs go to stderr so stdout stays data (`-o json`). On a TTY they are short human lines, elsewhere
 * pino JSON lines, which log collectors in a cluster parse.
 */
export function createLogger(level: LevelWithSilent = 'info', opts: { json?: boolean } = {}): Logger {
  const json = opts.json ?? !process.stderr.isTTY;
  const options = { level, base: { pid: process.pid }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
  const { pino } = loadPino();
  const destination = json ? pino.destination({ fd: 2, sync: true }) : terminalStream(process.stderr);
  // A log line that cannot be written (stderr's reader gone: `2>&1 | head`) is dropped: losing logs
  // must not end the command, and an unhandled 'error' would, with a stack trace.
  destination.on('error', () => {});
  return pino(options, destination);
}

/** A logger that writes nothing, for library callers and tests. */
export function silentLogger(): Logger {
  return loadPino().pino({ level: 'silent' });
}
