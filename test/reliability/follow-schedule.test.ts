/**
 * `artifact follow --every 1ms` sent a registry 1,911 HEADs in 8 s. The built CLI now refuses an
 * interval below 1 s (flag or config) as a usage error, one line, exit 2, before any request.
 */
import { createServer } from 'node:http';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireCli, runCli } from '../helpers/cli.js';
import { listenOnLoopback } from '../helpers/net.js';
import { node } from './setup.js';

let requests = 0;
const registry = createServer((_req, res) => {
  requests++;
  res.writeHead(404).end();
});
let host: string;

beforeAll(async () => {
  requireCli('artifact', ['follow']);
  host = `127.0.0.1:${await listenOnLoopback(registry)}`;
});

afterAll(async () => {
  await new Promise((resolve) => registry.close(resolve));
});

describe('artifact follow refuses checks less than a second apart', () => {
  it.each(['1ms', '999ms', '0.5s'])('--every %s: one-line usage error, exit 2, no request', async (every) => {
    const n = await node([host]);
    requests = 0;
    const r = await runCli(['artifact', 'follow', `${host}/acme/rules:1`, '--rulesfiles-dir', n.rules, '--state-dir', join(n.env.HOME, 'state'), '--every', every], { env: n.env, timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([`error: --every "${every}" is too short: checks must be at least 1s apart (use a duration like 30s, 5m or 6h)`]);
    expect(requests).toBe(0);
  });

  it('follow.every in the config: the same', async () => {
    const n = await node([host]);
    await writeFile(n.config, stringify({ indexes: [], registry: { plainHttp: [host] }, follow: { every: '10ms', refs: [`${host}/acme/rules:1`], rulesfilesDir: n.rules, stateDir: join(n.env.HOME, 'state') } }));
    requests = 0;
    const r = await runCli(['artifact', 'follow'], { env: n.env, timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('--every "10ms" is too short');
    expect(requests).toBe(0);
  });

  it('--every 1s is accepted', async () => {
    const n = await node([host]);
    const r = await runCli(['artifact', 'follow', `${host}/acme/rules:1`, '--rulesfiles-dir', n.rules, '--state-dir', join(n.env.HOME, 'state'), '--every', '1s', '--once'], { env: n.env, timeoutMs: 20_000 });
    expect(r.stderr).not.toContain('too short');
    expect(requests).toBeGreaterThan(0);
  });
});
