/**
 * The Follower in process, against a real registry: requests per check, floating tags, engine
 * requirements from a versions URL, 429 Retry-After, plugins and allowed types, files a new version no
 * longer ships, rollback, and a shutdown in the middle of a validation.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Follower, type FollowSettings } from '../../src/follow/follower.js';
import { rollbackRef } from '../../src/follow/rollback.js';
import { StateStore } from '../../src/follow/state.js';
import { createFollowMetrics, type FollowMetrics } from '../../src/metrics/follow-metrics.js';
import { RegistryClient } from '../../src/registry/client.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { memoryLogger, metricValue, pushClient, pushFiles, pushRules, tempDir, waitFor } from './setup.js';

const RULES_V = (n: string): string => `- macro: version_${n.replace(/\W/g, '_')}\n  condition: (evt.type = open)\n`;

interface Rig {
  follower: Follower;
  metrics: FollowMetrics;
  lines: Record<string, unknown>[];
  requests: { method: string; status: number | 'error' }[];
  settings: FollowSettings;
  rules: string;
  plugins: string;
}

async function rig(refs: string[], extra: Partial<FollowSettings> = {}): Promise<Rig> {
  const root = await tempDir();
  const requests: { method: string; status: number | 'error' }[] = [];
  const metrics = createFollowMetrics({ defaultMetrics: false });
  const client = new RegistryClient({
    hostSettings: () => ({ plainHttp: true }),
    retry: { attempts: 2, baseDelayMs: 5, maxRetryAfterMs: 0 },
    onResponse: (i) => {
      requests.push({ method: i.method, status: i.status });
      metrics.onResponse(i);
    },
  });
  const { logger, lines } = memoryLogger();
  const settings: FollowSettings = {
    refs,
    schedule: { kind: 'every', intervalMs: 60_000 },
    jitter: 0,
    rulesfilesDir: join(root, 'rules'),
    pluginsDir: join(root, 'plugins'),
    stateDir: join(root, 'state'),
    allowedTypes: ['rulesfile'],
    platform: { os: 'linux', architecture: 'amd64' },
    ...extra,
  };
  return { follower: new Follower(settings, { logger, metrics, client, stopGraceMs: 2_000 }), metrics, lines, requests, settings, rules: settings.rulesfilesDir, plugins: settings.pluginsDir };
}

describe('Follower', () => {
  let reg: TestRegistry;
  const push = pushClient();
  const followers: Follower[] = [];
  const servers: Server[] = [];

  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    for (const f of followers) await f.stop();
    for (const s of servers) s.close();
    await reg?.stop();
  });

  it('an unchanged fixed tag costs exactly one HEAD and no bytes; a floating tag a tag list and a HEAD', async () => {
    const fixed = `${reg.host}/req/fixed:stable`;
    await pushRules(push, fixed, '1.0.0', RULES_V('1.0.0'));
    const floatRepo = `${reg.host}/req/float`;
    for (const v of ['1.0.0', '1.1.0', '2.0.0']) await pushRules(push, `${floatRepo}:${v}`, v, RULES_V(v), { addFloatingTags: true, fileName: 'float_rules.yaml' });
    const r = await rig([fixed, `${floatRepo}:1`]);
    followers.push(r.follower);
    expect((await r.follower.check(fixed)).result).toBe('updated');
    const floating = await r.follower.check(`${floatRepo}:1`);
    expect(floating).toMatchObject({ result: 'updated', version: '1.1.0' });
    expect(await readFile(join(r.rules, 'float_rules.yaml'), 'utf8')).toBe(RULES_V('1.1.0'));

    const bytes = metricValue(await r.metrics.registry.metrics(), 'diginfractl_download_bytes_total');
    r.requests.length = 0;
    expect((await r.follower.check(fixed)).result).toBe('unchanged');
    expect(r.requests).toEqual([{ method: 'HEAD', status: 200 }]);
    r.requests.length = 0;
    expect((await r.follower.check(`${floatRepo}:1`)).result).toBe('unchanged');
    expect(r.requests).toEqual([{ method: 'GET', status: 200 }, { method: 'HEAD', status: 200 }]);
    expect(metricValue(await r.metrics.registry.metrics(), 'diginfractl_download_bytes_total')).toBe(bytes);

    // 1.2.0 appears: the floating ref moves to it.
    await pushRules(push, `${floatRepo}:1.2.0`, '1.2.0', RULES_V('1.2.0'), { addFloatingTags: true, fileName: 'float_rules.yaml' });
    expect(await r.follower.check(`${floatRepo}:1`)).toMatchObject({ result: 'updated', version: '1.2.0' });
  });

  it('keeps the current file when the engine is too old (versions URL), installs once it is upgraded, and reports an unreachable URL', async () => {
    let engine: string | undefined = '0.39.0';
    const server = createServer((_req, res) => {
      if (engine === undefined) {
        res.writeHead(503).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ engine_version: engine, other: 'ignored' }));
    });
    servers.push(server);
    await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/versions`;
    const ref = `${reg.host}/req/engine:stable`;
    await pushRules(push, ref, '1.0.0', RULES_V('1.0.0'), { requirements: [{ name: 'engine_version', version: '0.30.0' }] });
    const r = await rig([ref], { engineVersionsUrl: url });
    followers.push(r.follower);
    expect((await r.follower.check(ref)).result).toBe('updated');
    const live = join(r.rules, 'falco_rules.yaml');

    const d2 = await pushRules(push, ref, '2.0.0', RULES_V('2.0.0'), { requirements: [{ name: 'engine_version', version: '0.40.0' }] });
    expect(await r.follower.check(ref)).toMatchObject({ result: 'rejected', reason: 'requirements', digest: d2 });
    expect(await readFile(live, 'utf8')).toBe(RULES_V('1.0.0'));
    expect(r.lines.find((l) => l.event === 'reject')).toMatchObject({ ref, reason: 'requirements', oldVersion: '1.0.0', newVersion: '2.0.0', newDigest: d2 });
    // Checked again without downloading anything while the engine stays old.
    r.requests.length = 0;
    expect((await r.follower.check(ref)).result).toBe('rejected');
    expect(r.requests).toEqual([{ method: 'HEAD', status: 200 }]);
    expect(metricValue(await r.metrics.registry.metrics(), 'diginfractl_follow_rejected_total', { ref, reason: 'requirements' })).toBe(1);

    // The URL is down: the check fails, the file stays.
    engine = undefined;
    const down = await r.follower.check(ref);
    expect(down.result).toBe('error');
    expect(down.message).toContain('engine versions URL');
    expect(await readFile(live, 'utf8')).toBe(RULES_V('1.0.0'));

    // The engine was upgraded: 2.0.0 goes in.
    engine = '0.40.1';
    expect(await r.follower.check(ref)).toMatchObject({ result: 'updated', version: '2.0.0' });
    expect(await readFile(live, 'utf8')).toBe(RULES_V('2.0.0'));
  });

  it('honours a 429 Retry-After from the registry in the next check time', async () => {
    let limit = false;
    const proxy = createServer((req, res) => {
      if (limit) {
        res.writeHead(429, { 'retry-after': '3', 'content-type': 'application/json' }).end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
        return;
      }
      const up = httpRequest({ host: '127.0.0.1', port: Number(reg.host.split(':')[1]), method: req.method, path: req.url, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      req.pipe(up);
    });
    servers.push(proxy);
    await new Promise<void>((res) => proxy.listen(0, '127.0.0.1', res));
    const host = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const ref = `${host}/req/limited:stable`;
    await pushRules(push, ref, '1.0.0', RULES_V('1.0.0'));
    const r = await rig([ref], { schedule: { kind: 'every', intervalMs: 500 } });
    followers.push(r.follower);
    r.follower.start();
    await waitFor('first install', () => r.follower.ready().ok);
    limit = true;
    const failedAt = await waitFor('a rate-limited check', () => (r.follower.status()[0]!.failures > 0 ? Date.now() : 0), 5_000, 5);
    const next = r.follower.status()[0]!.nextAt!;
    // Interval 500 ms, first backoff 1 s capped at 500 ms: only the Retry-After explains ~3 s.
    expect(next - failedAt).toBeGreaterThan(2_500);
    const out = r.lines.find((l) => typeof l.msg === 'string' && (l.msg as string).includes('rate limiting'));
    expect(out).toBeDefined();
    limit = false;
    await r.follower.stop();
  });

  it('installs plugins only when allowed, into the plugins dir, and says the engine must restart', async () => {
    const ref = `${reg.host}/req/plugin:stable`;
    const dir = await tempDir('diginfractl-src-');
    const so = join(dir, 'libdemo.so');
    await writeFile(so, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 1, 2, 3]));
    const { pushArtifact } = await import('../../src/artifact/push.js');
    const { parseOciReference } = await import('../../src/reference/reference.js');
    await pushArtifact(push, parseOciReference(ref), { type: 'plugin', version: '0.1.0', files: [so], platforms: [{ os: 'linux', architecture: 'amd64' }] });

    const denied = await rig([ref]);
    followers.push(denied.follower);
    expect(await denied.follower.check(ref)).toMatchObject({ result: 'rejected', reason: 'type_not_allowed' });
    expect(await readdir(denied.plugins).catch(() => [])).toEqual([]);

    const allowed = await rig([ref], { allowedTypes: ['rulesfile', 'plugin'] });
    followers.push(allowed.follower);
    expect((await allowed.follower.check(ref)).result).toBe('updated');
    const st = await import('node:fs/promises').then((fs) => fs.stat(join(allowed.plugins, 'libdemo.so')));
    expect(st.mode & 0o777).toBe(0o755);
    expect(allowed.lines.some((l) => typeof l.msg === 'string' && (l.msg as string).includes('the engine must be restarted'))).toBe(true);
  });

  it('deletes files the new version no longer ships; rollback puts the previous bytes back and holds them', async () => {
    const ref = `${reg.host}/req/multi:stable`;
    await pushFiles(push, ref, '1.0.0', { 'a_rules.yaml': RULES_V('a1'), 'b_rules.yaml': RULES_V('b1') });
    const r = await rig([ref]);
    followers.push(r.follower);
    expect((await r.follower.check(ref)).result).toBe('updated');
    const d2 = await pushFiles(push, ref, '2.0.0', { 'a_rules.yaml': RULES_V('a2') });
    expect((await r.follower.check(ref)).result).toBe('updated');
    expect((await readdir(r.rules)).filter((n) => n.endsWith('.yaml')).sort()).toEqual(['a_rules.yaml']);

    const store = new StateStore(r.settings.stateDir);
    const rb = await rollbackRef(store, ref);
    expect(rb.from.version).toBe('2.0.0');
    expect(rb.to.version).toBe('1.0.0');
    expect(await readFile(join(r.rules, 'a_rules.yaml'), 'utf8')).toBe(RULES_V('a1'));
    expect(await readFile(join(r.rules, 'b_rules.yaml'), 'utf8')).toBe(RULES_V('b1'));
    // The follower does not put 2.0.0 back: it was rolled back from.
    expect(await r.follower.check(ref)).toMatchObject({ result: 'rejected', reason: 'rollback', digest: d2 });
    expect(await readFile(join(r.rules, 'a_rules.yaml'), 'utf8')).toBe(RULES_V('a1'));
    // A new version is installed as usual.
    await pushFiles(push, ref, '3.0.0', { 'a_rules.yaml': RULES_V('a3') });
    expect(await r.follower.check(ref)).toMatchObject({ result: 'updated', version: '3.0.0' });
    expect((await readdir(r.rules)).filter((n) => n.endsWith('.yaml')).sort()).toEqual(['a_rules.yaml']);
    // Only the current and previous versions are kept in the state dir.
    const versions = await readdir(join(store.refDir(ref), 'versions'));
    expect(versions).toHaveLength(2);
    await expect(rollbackRef(store, `${reg.host}/req/never:1`)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('a stop during validation abandons the update: live file untouched, staging removed', async () => {
    const root = await tempDir();
    const slow = join(root, 'slow.sh');
    await writeFile(slow, '#!/bin/sh\nsleep 5\nexit 0\n');
    await chmod(slow, 0o755);
    const ref = `${reg.host}/req/slow:stable`;
    await pushRules(push, ref, '1.0.0', RULES_V('1.0.0'));
    const r = await rig([ref]);
    expect((await r.follower.check(ref)).result).toBe('updated');
    r.follower.reconfigure({ ...r.settings, validateCmd: slow });
    await pushRules(push, ref, '2.0.0', RULES_V('2.0.0'));
    const pending = r.follower.check(ref);
    await waitFor('staging dir', async () => (await readdir(r.rules)).some((n) => n.startsWith('.diginfractl-staging')), 5_000, 5);
    const t0 = Date.now();
    await r.follower.stop();
    const outcome = await pending;
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect(outcome.result).toBe('error');
    expect(await readFile(join(r.rules, 'falco_rules.yaml'), 'utf8')).toBe(RULES_V('1.0.0'));
    expect((await readdir(r.rules)).filter((n) => n.startsWith('.diginfractl-staging'))).toEqual([]);
  });
});
