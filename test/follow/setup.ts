/**
 * Shared setup of the follow tests: running the built CLI's `artifact follow` as a child process, and
 * reading its JSON logs and its /metrics (test/helpers/push.ts publishes what it follows).
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino, type Logger } from 'pino';
import { request } from 'undici';
import type { FollowSettings } from '../../src/follow/follower.js';
import { spawnCli } from '../helpers/cli.js';

/** A logger that keeps every line as parsed JSON (in-process follower tests). */
export function memoryLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    {
      write(chunk: string) {
        lines.push(JSON.parse(chunk) as Record<string, unknown>);
      },
    },
  );
  return { logger, lines };
}

/** Polls `fn` until it returns a truthy value; throws after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => Promise<T> | T, timeoutMs = 15_000, everyMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(everyMs);
  }
}

export interface Agent {
  child: ChildProcess;
  /** Parsed JSON log lines so far. */
  logs: Record<string, unknown>[];
  /** Raw stderr (non-JSON lines too). */
  stderr: () => string;
  stdout: () => string;
  port: () => Promise<number>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM and wait (SIGKILL after 10 s). */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startAgent(args: string[], env: NodeJS.ProcessEnv): Agent {
  const child = spawnCli(['artifact', 'follow', ...args], { env });
  const logs: Record<string, unknown>[] = [];
  let err = '';
  let out = '';
  let partial = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      try {
        logs.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // not JSON
      }
    }
  });
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })));
  return {
    child,
    logs,
    stderr: () => err,
    stdout: () => out,
    port: async () => {
      const line = await waitFor('the metrics listener', () => logs.find((l) => l.event === 'listening'), 15_000).catch((e: Error) => {
        throw new Error(`${e.message}\nstderr:\n${err}`);
      });
      return line.port as number;
    },
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
  };
}

export async function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await request(`http://127.0.0.1:${port}${path}`);
  return { status: res.statusCode, body: await res.body.text() };
}

/** Sum of the samples of `name` whose labels include all of `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const lm of (m[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) got[lm[1]!] = lm[2]!;
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum += Number(m[4]);
  }
  return sum;
}

export async function scrape(port: number): Promise<string> {
  const r = await httpGet(port, '/metrics');
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
  return r.body;
}

/** Follower settings for in-process tests: every directory under `root`, rules files only, checked every minute. */
export function followSettings(root: string, refs: string[], extra: Partial<FollowSettings> = {}): FollowSettings {
  return {
    refs,
    schedule: { kind: 'every', intervalMs: 60_000 },
    jitter: 0,
    rulesfilesDir: join(root, 'rules'),
    pluginsDir: join(root, 'plugins'),
    dirs: {},
    stateDir: join(root, 'state'),
    installLockfiles: [join(root, 'rules', 'diginfractl.lock')],
    allowedTypes: ['rulesfile'],
    platform: { os: 'linux', architecture: 'amd64' },
    ...extra,
  };
}
