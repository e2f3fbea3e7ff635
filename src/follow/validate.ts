/**
 * Checks a staged rules file must pass before it may replace the live one: it parses as YAML and is a
 * list (the engine's rules file format), then `--validate-cmd` (e.g. the engine's own `--validate`)
 * exits 0 when run with the staged file's path as its last argument.
 */
import { fork, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DiginfraError, messageOf } from '../errors.js';
import type { RejectReason } from '../metrics/index.js';

/** A staged file refused before the swap; `reason` is the metric label. */
export class ValidationError extends DiginfraError {
  readonly reason: RejectReason;
  constructor(reason: RejectReason, message: string, hint?: string) {
    super('VALIDATION_FAILED', message, hint === undefined ? {} : { hint });
    this.reason = reason;
  }
}

/** Default time a --validate-cmd may take before it is killed and the file rejected. */
export const VALIDATE_TIMEOUT_MS = 120_000;

/** Is this staged file one the rules checks apply to (YAML by extension)? */
export function isRulesYaml(rel: string): boolean {
  return /\.ya?ml$/i.test(rel);
}

/**
 * The worker script beside this module: the bundled bin's .cjs (dist/bin), the compiled .js (dist/),
 * or the .ts source under the tests.
 */
function workerUrl(): URL {
  for (const name of ['./validate-worker.cjs', './validate-worker.js']) {
    const url = new URL(name, import.meta.url);
    if (existsSync(fileURLToPath(url))) return url;
  }
  return new URL('./validate-worker.ts', import.meta.url);
}

/**
 * Checks that each file parses as YAML and is a list, in a short-lived child process (Node running
 * validate-worker): the parse's memory goes back to the system when it exits. A worker thread was
 * used before; the memory its isolate took stayed with the agent (glibc keeps freed memory in its
 * arena): 84 MB idle instead of ~78 MB with 20 refs (bench/follow-rss.mjs). The child runs with
 * `opts.execArgv` as Node's options (none by default): whoever starts the agent decides them (the
 * CLI gives it the agent's own, less the flags that would slow the parse).
 * Throws ValidationError for the first file that fails.
 */
export async function checkRulesFiles(files: readonly { path: string; label: string }[], opts: { timeoutMs?: number; execArgv?: readonly string[] } = {}): Promise<void> {
  if (files.length === 0) return;
  type Verdict = { ok: boolean; reason?: 'invalid_yaml' | 'not_a_list'; message?: string };
  const verdict = await new Promise<Verdict>((resolve, reject) => {
    const child = fork(fileURLToPath(workerUrl()), [], { execArgv: [...(opts.execArgv ?? [])], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-2048);
    });
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      settle(() => reject(new DiginfraError('VALIDATION_FAILED', `checking ${files[0]!.label} took longer than ${Math.round((opts.timeoutMs ?? VALIDATE_TIMEOUT_MS) / 1000)} s`)));
    }, opts.timeoutMs ?? VALIDATE_TIMEOUT_MS);
    child.once('message', (v: Verdict) => settle(() => resolve(v)));
    child.once('error', (err) => settle(() => reject(new DiginfraError('VALIDATION_FAILED', `checking ${files[0]!.label} failed: ${messageOf(err)}`, { cause: err }))));
    child.once('exit', (code, signal) =>
      settle(() => reject(new DiginfraError('VALIDATION_FAILED', `the rules file check exited (${signal ?? code}) before answering${stderr.trim() ? `: ${stderr.trim().split('\n').pop()}` : ''}`))),
    );
    child.send({ files: files.map((f) => ({ path: f.path, label: f.label })) });
  });
  if (!verdict.ok) throw new ValidationError(verdict.reason ?? 'invalid_yaml', verdict.message ?? 'invalid rules file');
}

/**
 * Runs `cmd` through /bin/sh with `path` appended as its last argument (quoted by the shell, never
 * interpolated). Exit 0 accepts; anything else, a timeout or a failure to start rejects.
 */
export async function runValidateCmd(cmd: string, path: string, label: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? VALIDATE_TIMEOUT_MS;
  const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string; error?: Error; timedOut: boolean }>((resolve) => {
    // Its own process group, so a timeout or a shutdown kills what the command started too.
    const child = spawn('/bin/sh', ['-c', `${cmd} "$@"`, 'sh', path], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    let timedOut = false;
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-4096);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const kill = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    opts.signal?.addEventListener('abort', kill, { once: true });
    if (opts.signal?.aborted) kill();
    let error: Error | undefined;
    child.once('error', (err) => (error = err));
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', kill);
      resolve({ code, signal, output, timedOut, ...(error && { error }) });
    });
  });
  if (opts.signal?.aborted) throw new DiginfraError('VALIDATION_FAILED', `validation of ${label} abandoned: shutting down`);
  if (result.code === 0) return;
  const tail = result.output.trim().split('\n').slice(-5).join(' | ');
  const why = result.timedOut
    ? `did not finish within ${Math.round(timeoutMs / 1000)} s`
    : result.error
      ? `could not run: ${messageOf(result.error)}`
      : result.code !== null
        ? `exited with ${result.code}`
        : `was killed by ${result.signal}`;
  throw new ValidationError('validate_cmd', `--validate-cmd rejected ${label}: \`${cmd}\` ${why}${tail ? `: ${tail}` : ''}`);
}
