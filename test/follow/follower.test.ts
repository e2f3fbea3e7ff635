/**
 * The Follower in process, against a real registry: requests per check, floating tags, engine
 * requirements from a versions URL, a rules file that is not YAML, 429 Retry-After, plugins and
 * allowed types, files a new version no longer ships, rollback, a shutdown in the middle of a
 * validation, a swap that cannot take the dir lock, replaced registry clients, reserved file names,
 * the blob cache, and crash leftovers.
 */
import { spawn } from 'node:child_process';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { chmod, mkdir, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveArtifact } from '../../src/artifact/pull.js';
import { Follower, isFailure, type FollowSettings } from '../../src/follow/follower.js';
import { BlobCache } from '../../src/content/index.js';
import { parseOciReference } from '../../src/reference/reference.js';
import { rollbackRef } from '../../src/follow/rollback.js';
import { StateStore } from '../../src/follow/state.js';
import { createFollowMetrics, type FollowMetrics } from '../../src/metrics/follow-metrics.js';
import { RegistryClient } from '../../src/registry/index.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tempDir } from '../helpers/fs.js';
import { pushClient, pushFiles, pushRules } from '../helpers/push.js';
import { followSettings, memoryLogger, metricValue, waitFor } from './setup.js';

const RULES_V = (n: string): string => `- macro: version_${n.replace(/\W/g, '_')}\n  condition: (evt.type = open)\n`;

interface Rig {
  follower: Follower;
  client: CountingClient;
  metrics: FollowMetrics;
  lines: Record<string, unknown>[];
  requests: { method: string; status: number | 'error' }[];
  settings: FollowSettings;
  rules: string;
  plugins: string;
}

/** A registry client that counts its close() calls. */
class CountingClient extends RegistryClient {
  closes = 0;
  override async close(): Promise<void> {
    this.closes++;
    await super.close();
  }
}

function followClient(requests: { method: string; status: number | 'error' }[], metrics: FollowMetrics): CountingClient {
  return new CountingClient({
    hostSettings: () => ({ plainHttp: true }),
    retry: { attempts: 2, baseDelayMs: 5, maxRetryAfterMs: 0 },
    onResponse: (i) => {
      requests.push({ method: i.method, status: i.status });
      metrics.onResponse(i);
    },
  });
}

async function rig(refs: string[], extra: Partial<FollowSettings> = {}, deps: { lockTimeoutMs?: number } = {}): Promise<Rig> {
  const root = await tempDir();
  const requests: { method: string; status: number | 'error' }[] = [];
  const metrics = createFollowMetrics({ defaultMetrics: false });
  const client = followClient(requests, metrics);
  const { logger, lines } = memoryLogger();
  const settings = followSettings(root, refs, extra);
  return {
    follower: new Follower(settings, { logger, metrics, client, stopGraceMs: 2_000, ...deps }),
    client,
    metrics,
    lines,
    requests,
    settings,
    rules: settings.rulesfilesDir,
    plugins: settings.pluginsDir,
  };
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

  it('an unchanged fixed tag costs exactly one HEAD and no bytes; so does a floating tag (HEAD of the tag itself)', async () => {
    const fixed = `${reg.host}/req/fixed:stable`;
    await pushRules(push, fixed, '1.0.0', { content: RULES_V('1.0.0') });
    const floatRepo = `${reg.host}/req/float`;
    for (const v of ['1.0.0', '1.1.0', '2.0.0']) await pushRules(push, `${floatRepo}:${v}`, v, { content: RULES_V(v), addFloatingTags: true, fileName: 'float_rules.yaml' });
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
    expect(r.requests).toEqual([{ method: 'HEAD', status: 200 }]);
    expect(metricValue(await r.metrics.registry.metrics(), 'diginfractl_download_bytes_total')).toBe(bytes);

    // 1.2.0 appears (repo push moves the tag 1): the floating ref moves to it.
    await pushRules(push, `${floatRepo}:1.2.0`, '1.2.0', { content: RULES_V('1.2.0'), addFloatingTags: true, fileName: 'float_rules.yaml' });
    expect(await r.follower.check(`${floatRepo}:1`)).toMatchObject({ result: 'updated', version: '1.2.0' });
    expect(await readFile(join(r.rules, 'float_rules.yaml'), 'utf8')).toBe(RULES_V('1.2.0'));
  });

  it('a floating tag the repository does not have falls back to the tag list: the highest 1.x.y', async () => {
    const repo = `${reg.host}/req/nofloat`;
    for (const v of ['1.0.0', '1.3.0', '2.0.0']) await pushRules(push, `${repo}:${v}`, v, { content: RULES_V(v), fileName: 'nofloat_rules.yaml' });
    const r = await rig([`${repo}:1`]);
    followers.push(r.follower);
    expect(await r.follower.check(`${repo}:1`)).toMatchObject({ result: 'updated', version: '1.3.0' });
    r.requests.length = 0;
    expect((await r.follower.check(`${repo}:1`)).result).toBe('unchanged');
    expect(r.requests).toEqual([
      { method: 'HEAD', status: 404 },
      { method: 'GET', status: 200 },
      { method: 'HEAD', status: 200 },
    ]);
    // A line with no release at all: the 404 is the answer, with nothing installed.
    const none = await rig([`${repo}:3`]);
    followers.push(none.follower);
    expect(await none.follower.check(`${repo}:3`)).toMatchObject({ result: 'error', message: expect.stringMatching(/not found|NOT_FOUND|404/i) });
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
    await pushRules(push, ref, '1.0.0', { content: RULES_V('1.0.0'), requirements: [{ name: 'engine_version', version: '0.30.0' }] });
    const r = await rig([ref], { engineVersionsUrl: url });
    followers.push(r.follower);
    expect((await r.follower.check(ref)).result).toBe('updated');
    const live = join(r.rules, 'falco_rules.yaml');

    const d2 = await pushRules(push, ref, '2.0.0', { content: RULES_V('2.0.0'), requirements: [{ name: 'engine_version', version: '0.40.0' }] });
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

  it('refuses a version whose rules file is not valid YAML (invalid_yaml): the live file stays, and it is not downloaded again', async () => {
    const ref = `${reg.host}/req/broken:stable`;
    await pushRules(push, ref, '1.0.0', { content: RULES_V('1.0.0') });
    const r = await rig([ref]);
    followers.push(r.follower);
    expect((await r.follower.check(ref)).result).toBe('updated');
    const live = join(r.rules, 'falco_rules.yaml');

    const d2 = await pushRules(push, ref, '2.0.0', { content: '- macro: [unclosed\n' });
    const refused = await r.follower.check(ref);
    expect(refused).toMatchObject({ result: 'rejected', reason: 'invalid_yaml', digest: d2, version: '2.0.0', message: expect.stringContaining('falco_rules.yaml is not valid YAML') });
    expect(isFailure(refused)).toBe(true);
    expect(await readFile(live, 'utf8')).toBe(RULES_V('1.0.0'));
    expect((await readdir(r.rules)).filter((n) => n.startsWith('.diginfractl-staging'))).toEqual([]);
    expect(r.lines.find((l) => l.event === 'reject')).toMatchObject({ ref, reason: 'invalid_yaml', oldVersion: '1.0.0', newVersion: '2.0.0', newDigest: d2 });
    expect((await r.follower.store.read(ref)).rejected).toMatchObject({ digest: d2, reason: 'invalid_yaml' });
    expect(metricValue(await r.metrics.registry.metrics(), 'diginfractl_follow_rejected_total', { ref, reason: 'invalid_yaml' })).toBe(1);

    // The same digest again: one HEAD, refused from the state, nothing downloaded.
    r.requests.length = 0;
    expect(await r.follower.check(ref)).toMatchObject({ result: 'rejected', reason: 'invalid_yaml', digest: d2 });
    expect(r.requests).toEqual([{ method: 'HEAD', status: 200 }]);
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
    await pushRules(push, ref, '1.0.0', { content: RULES_V('1.0.0') });
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
    // The follower does not put 2.0.0 back: it was rolled back from. The ref is held there on purpose:
    // not a failure (--once exits 0).
    const held = await r.follower.check(ref);
    expect(held).toMatchObject({ result: 'rejected', reason: 'rollback', digest: d2, pinned: true });
    expect(isFailure(held)).toBe(false);
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
    await pushRules(push, ref, '1.0.0', { content: RULES_V('1.0.0') });
    const r = await rig([ref]);
    expect((await r.follower.check(ref)).result).toBe('updated');
    r.follower.reconfigure({ ...r.settings, validateCmd: slow });
    await pushRules(push, ref, '2.0.0', { content: RULES_V('2.0.0') });
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

  it('a swap that cannot take the dir lock is a counted check failure: no unhandled rejection, staging removed, the agent carries on', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    // Another install holds the lock of the rules dir: a live process on this host.
    const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const ref = `${reg.host}/req/locked:stable`;
      await pushRules(push, ref, '1.0.0', { content: RULES_V('1.0.0') });
      const r = await rig([ref], {}, { lockTimeoutMs: 300 });
      followers.push(r.follower);
      expect((await r.follower.check(ref)).result).toBe('updated');
      await pushRules(push, ref, '2.0.0', { content: RULES_V('2.0.0') });
      const lock = join(r.rules, '.diginfractl.lock');
      await writeFile(lock, JSON.stringify({ pid: holder.pid, host: hostname(), startedAt: new Date().toISOString() }));

      const failed = await r.follower.check(ref);
      await sleep(50); // an unhandled rejection is reported after the microtasks drain
      expect(unhandled).toEqual([]);
      expect(failed).toMatchObject({ result: 'error', message: expect.stringContaining('locked') });
      expect(isFailure(failed)).toBe(true);
      expect(metricValue(await r.metrics.registry.metrics(), 'diginfractl_follow_checks_total', { ref, result: 'error' })).toBe(1);
      expect(r.lines.some((l) => l.level === 40 && typeof l.msg === 'string' && l.msg.includes(`check of ${ref} failed`))).toBe(true);
      expect((await readdir(r.rules)).filter((n) => n.startsWith('.diginfractl-staging'))).toEqual([]);
      expect(await readFile(join(r.rules, 'falco_rules.yaml'), 'utf8')).toBe(RULES_V('1.0.0'));

      // The agent keeps going: its timer-driven checks fail (and back off) while the lock is held...
      const agent = await rig([ref], { rulesfilesDir: r.rules, stateDir: r.settings.stateDir, schedule: { kind: 'every', intervalMs: 200 } }, { lockTimeoutMs: 200 });
      followers.push(agent.follower);
      agent.follower.start();
      await waitFor('two failed checks', async () => metricValue(await agent.metrics.registry.metrics(), 'diginfractl_follow_checks_total', { ref, result: 'error' }) >= 2, 10_000);
      expect(agent.follower.healthy().ok).toBe(true);
      // ...and installs once the other install is done (its lock released).
      await rm(lock);
      await waitFor('2.0.0 installed', async () => (await readFile(join(r.rules, 'falco_rules.yaml'), 'utf8')) === RULES_V('2.0.0'), 10_000);
      await agent.follower.stop();
      expect(unhandled).toEqual([]);
      expect((await readdir(r.rules)).filter((n) => n.startsWith('.diginfractl-staging'))).toEqual([]);
    } finally {
      holder.kill('SIGKILL');
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('a replaced registry client is closed once the checks running on it finish; reloads do not pile clients up', async () => {
    const root = await tempDir();
    const slow = join(root, 'slow.sh');
    await writeFile(slow, '#!/bin/sh\nsleep 1\nexit 0\n');
    await chmod(slow, 0o755);
    const ref = `${reg.host}/req/reload:stable`;
    await pushRules(push, ref, '1.0.0', { content: RULES_V('1.0.0') });
    const r = await rig([ref]);
    followers.push(r.follower);
    const fresh = (): CountingClient => followClient(r.requests, r.metrics);

    // No check running: the old client is closed at once.
    const c1 = fresh();
    r.follower.reconfigure(r.settings, { client: c1 });
    expect(r.client.closes).toBe(1);
    expect((await r.follower.check(ref)).result).toBe('updated');

    // A check running on c1 (held in its validate command): c1 stays open until it ends.
    r.follower.reconfigure({ ...r.settings, validateCmd: slow }, {});
    await pushRules(push, ref, '2.0.0', { content: RULES_V('2.0.0') });
    const pending = r.follower.check(ref);
    await waitFor('staging dir', async () => (await readdir(r.rules)).some((n) => n.startsWith('.diginfractl-staging')), 5_000, 5);
    const c2 = fresh();
    r.follower.reconfigure(r.settings, { client: c2 });
    expect(c1.closes).toBe(0);
    expect(await pending).toMatchObject({ result: 'updated', version: '2.0.0' });
    expect(c1.closes).toBe(1);

    // Ten reloads with nothing running: each replaced client is closed right away.
    const replaced: CountingClient[] = [c2];
    for (let i = 0; i < 10; i++) {
      const next = fresh();
      r.follower.reconfigure(r.settings, { client: next });
      replaced.push(next);
    }
    const last = replaced.pop()!;
    expect(replaced.map((c) => c.closes)).toEqual(replaced.map(() => 1));
    expect(last.closes).toBe(0);
    expect((await r.follower.check(ref)).result).toBe('unchanged');
    await r.follower.stop();
    expect(last.closes).toBe(1);
    expect(replaced.map((c) => c.closes)).toEqual(replaced.map(() => 1));
  });

  it('refuses an artifact that ships a name the installer reserves (.diginfractl.lock, diginfractl.lock)', async () => {
    for (const name of ['.diginfractl.lock', 'diginfractl.lock']) {
      const ref = `${reg.host}/req/reserved-${name.replace(/\W/g, '')}:stable`;
      await pushFiles(push, ref, '1.0.0', { 'ok_rules.yaml': RULES_V('ok'), [name]: '{"pid":1,"host":"x"}' });
      const r = await rig([ref]);
      followers.push(r.follower);
      const out = await r.follower.check(ref);
      expect(out).toMatchObject({ result: 'error', message: expect.stringContaining(`ships a file named ${name}, which diginfractl reserves`) });
      expect((out.error as { code?: string }).code).toBe('UNSAFE_ARCHIVE');
      // Nothing was placed, no lock file was planted, nothing is left staged.
      expect(await readdir(r.rules).catch(() => [])).toEqual([]);
    }
  });

  it('reads layers from the blob cache of artifact install instead of downloading them, and never adds to it', async () => {
    const ref = `${reg.host}/req/cached:stable`;
    await pushRules(push, ref, '1.0.0', { content: RULES_V('cached') });
    const cacheRoot = await tempDir('diginfractl-cache-');
    // What `artifact install` leaves: the layer under <cache>/blobs/<algorithm>/<hex>.
    const artifact = await resolveArtifact(push, parseOciReference(ref), { os: 'linux', architecture: 'amd64' });
    const cache = new BlobCache(cacheRoot);
    for (const layer of artifact.layers) await cache.fetch(push, artifact.ref, layer);

    const r = await rig([ref], { cacheDir: cacheRoot });
    followers.push(r.follower);
    expect(await r.follower.check(ref)).toMatchObject({ result: 'updated', version: '1.0.0' });
    expect(await readFile(join(r.rules, 'falco_rules.yaml'), 'utf8')).toBe(RULES_V('cached'));
    expect(metricValue(await r.metrics.registry.metrics(), 'diginfractl_download_bytes_total')).toBe(0);

    // A version not in the cache is downloaded, and the cache is left as it was.
    const before = (await readdir(join(cacheRoot, 'blobs/sha256'))).sort();
    await pushRules(push, ref, '2.0.0', { content: RULES_V('fresh') });
    expect(await r.follower.check(ref)).toMatchObject({ result: 'updated', version: '2.0.0' });
    expect(metricValue(await r.metrics.registry.metrics(), 'diginfractl_download_bytes_total')).toBeGreaterThan(0);
    expect((await readdir(join(cacheRoot, 'blobs/sha256'))).sort()).toEqual(before);
  });

  it('before a swap, removes staging dirs a crash left in the target dir more than 10 minutes ago, and only those', async () => {
    const ref = `${reg.host}/req/leftovers:stable`;
    await pushRules(push, ref, '1.0.0', { content: RULES_V('1.0.0') });
    const r = await rig([ref]);
    followers.push(r.follower);
    await mkdir(r.rules, { recursive: true });
    const old = join(r.rules, '.diginfractl-staging-crash1');
    const young = join(r.rules, '.diginfractl-staging-young1');
    await mkdir(join(old, 'sub'), { recursive: true });
    await writeFile(join(old, 'sub/falco_rules.yaml'), 'half written');
    await mkdir(young);
    await writeFile(join(young, 'falco_rules.yaml'), 'in progress');
    const longAgo = new Date(Date.now() - 20 * 60_000);
    for (const p of [join(old, 'sub/falco_rules.yaml'), join(old, 'sub'), old]) await utimes(p, longAgo, longAgo);

    expect((await r.follower.check(ref)).result).toBe('updated');
    expect((await readdir(r.rules)).sort()).toEqual(['.diginfractl-staging-young1', 'falco_rules.yaml']);
    expect(r.lines.find((l) => Array.isArray(l.removed) && (l.removed as string[]).includes(old))).toBeDefined();
  });
});
