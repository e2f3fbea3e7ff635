/**
 * Health that tells the truth, and the metrics that say what health does not. The Follower in
 * process: /healthz fails only when the agent is stuck (a check that makes no progress for several
 * intervals, an event loop blocked for seconds), never because the registry fails, which the metrics
 * report instead: the failure streak and the last success per ref, registry requests by code and
 * source (origin or mirror), bytes downloaded per ref.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Follower } from '../../src/follow/follower.js';
import { createFollowMetrics, type FollowMetrics } from '../../src/metrics/follow-metrics.js';
import { RegistryClient } from '../../src/registry/index.js';
import type { HostSettings } from '../../src/registry/transport.js';
import { tempDir } from '../helpers/fs.js';
import { deadPort, listenOnLoopback } from '../helpers/net.js';
import { pushClient, pushRules } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { followSettings, memoryLogger, metricValue, waitFor } from './setup.js';

interface Agent {
  follower: Follower;
  metrics: FollowMetrics;
  client: RegistryClient;
  rules: string;
}

async function agent(refs: string[], opts: { hostSettings?: (host: string) => Partial<HostSettings>; minStuckMs?: number; loopWatch?: { stallMs: number; reportMs: number } } = {}): Promise<Agent> {
  const root = await tempDir();
  const metrics = createFollowMetrics({ defaultMetrics: false });
  const client = new RegistryClient({
    hostSettings: opts.hostSettings ?? (() => ({ plainHttp: true })),
    retry: { attempts: 1, maxRetryAfterMs: 0 },
    onResponse: (i) => metrics.onResponse(i),
  });
  const settings = followSettings(root, refs, { schedule: { kind: 'every', intervalMs: 1_000 } });
  const follower = new Follower(settings, {
    logger: memoryLogger().logger,
    metrics,
    client,
    stopGraceMs: 500,
    ...(opts.minStuckMs !== undefined && { minStuckMs: opts.minStuckMs }),
    ...(opts.loopWatch !== undefined && { loopWatch: opts.loopWatch }),
  });
  return { follower, metrics, client, rules: settings.rulesfilesDir };
}

describe('follow: health and metrics', () => {
  let reg: TestRegistry;
  const agents: Agent[] = [];
  const push = pushClient();
  let silent: Server;
  const held: Socket[] = [];

  beforeAll(async () => {
    reg = await startRegistry();
    // A "registry" that takes the connection and never answers: a check on it hangs.
    silent = createServer((socket) => {
      held.push(socket);
      socket.on('error', () => undefined);
    });
    await listenOnLoopback(silent);
  });
  afterAll(async () => {
    for (const s of held) s.destroy();
    silent?.close();
    for (const a of agents) await a.follower.stop();
    await reg?.stop();
  });

  it('while every check fails, /healthz stays 200 and /readyz turns 200 after the first check; the metrics count the failure streak', async () => {
    const ref = `127.0.0.1:${await deadPort()}/rules/down:stable`;
    const a = await agent([ref]);
    agents.push(a);
    expect(a.follower.ready().ok).toBe(false);
    a.follower.start();
    await waitFor('three failed checks', async () => metricValue(await a.metrics.registry.metrics(), 'diginfractl_follow_consecutive_failures', { ref }) >= 3, 15_000);
    expect(a.follower.healthy()).toEqual({ ok: true });
    expect(a.follower.ready()).toEqual({ ok: true, detail: `nothing installed yet for ${ref}` });
    const text = await a.metrics.registry.metrics();
    expect(metricValue(text, 'diginfractl_follow_checks_total', { ref, result: 'error' })).toBeGreaterThanOrEqual(3);
    expect(metricValue(text, 'diginfractl_registry_requests_total', { code: 'error', source: 'origin' })).toBeGreaterThanOrEqual(3);
    // Never a success: no timestamp (the staleness alert covers refs that did succeed once).
    expect(text).not.toMatch(/diginfractl_follow_last_success_timestamp_seconds\{/);
  });

  it('a check that makes no progress for several intervals fails /healthz, naming the ref', async () => {
    const ref = `127.0.0.1:${(silent.address() as { port: number }).port}/rules/hung:stable`;
    const a = await agent([ref], { minStuckMs: 500 });
    agents.push(a);
    a.follower.start();
    expect(a.follower.healthy().ok).toBe(true);
    // Interval 1 s: stuck after 3 intervals without progress (a floor of 0.5 s here instead of 5 min).
    const probe = await waitFor('/healthz failing', () => {
      const p = a.follower.healthy();
      return p.ok ? undefined : p;
    }, 10_000);
    expect(probe.detail).toMatch(new RegExp(`check of ${ref.replace(/[.:/]/g, '\\$&')} made no progress for [3-9] s`));
    for (const s of held) s.destroy();
  });

  it('an event loop blocked for longer than its limit fails /healthz for a while, then it recovers', async () => {
    const a = await agent([], { loopWatch: { stallMs: 200, reportMs: 1_000 } });
    agents.push(a);
    a.follower.start();
    await new Promise((r) => setTimeout(r, 100));
    expect(a.follower.healthy().ok).toBe(true);
    const until = Date.now() + 500;
    while (Date.now() < until) {
      // blocking the event loop on purpose
    }
    const probe = a.follower.healthy();
    expect(probe.ok).toBe(false);
    expect(probe.detail).toMatch(/event loop was blocked for 0\.[5-9] s/);
    await waitFor('/healthz 200 again', () => a.follower.healthy().ok, 3_000);
  });

  it('counts registry requests by source: the mirror for a mirrored registry, the origin otherwise; bytes downloaded per ref', async () => {
    // origin.invalid is served by its mirror (the test registry); the direct ref goes to the registry itself.
    const mirrored = 'origin.invalid/rules/mirrored:stable';
    const direct = `${reg.host}/rules/direct:stable`;
    await pushRules(push, `${reg.host}/rules/mirrored:stable`, '1.0.0', { fileName: 'mirrored_rules.yaml', content: '- macro: m\n  condition: (evt.type = open)\n' });
    await pushRules(push, direct, '1.0.0', { fileName: 'direct_rules.yaml', content: '- macro: d\n  condition: (evt.type = open)\n' });
    const a = await agent([mirrored, direct], { hostSettings: (host) => (host === 'origin.invalid' ? { plainHttp: true, mirror: reg.host } : { plainHttp: true }) });
    agents.push(a);
    expect((await a.follower.check(mirrored)).result).toBe('updated');
    expect((await a.follower.check(direct)).result).toBe('updated');
    const text = await a.metrics.registry.metrics();
    expect(metricValue(text, 'diginfractl_registry_requests_total', { registry: 'origin.invalid', source: reg.host })).toBeGreaterThanOrEqual(3);
    expect(metricValue(text, 'diginfractl_registry_requests_total', { registry: 'origin.invalid', source: 'origin' })).toBe(0);
    expect(metricValue(text, 'diginfractl_registry_requests_total', { registry: reg.host, source: 'origin' })).toBeGreaterThanOrEqual(3);
    expect(metricValue(text, 'diginfractl_download_bytes_total', { ref: mirrored })).toBeGreaterThan(0);
    expect(metricValue(text, 'diginfractl_download_bytes_total', { ref: direct })).toBeGreaterThan(0);
    expect(metricValue(text, 'diginfractl_follow_consecutive_failures', { ref: mirrored })).toBe(0);
    expect(metricValue(text, 'diginfractl_follow_last_success_timestamp_seconds', { ref: direct })).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(metricValue(text, 'diginfractl_artifact_info', { ref: direct, version: '1.0.0' })).toBe(1);
  });
});
