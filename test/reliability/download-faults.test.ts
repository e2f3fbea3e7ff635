/**
 * Downloads that go wrong part way, through the tests' fault proxy in front of the real registry: a
 * connection closed mid-blob (the error names the registry, the repository and the blob), and a blob
 * that stalls (the idle-read timeout and the retry budget of `registry.timeouts` bound how long a
 * command waits).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AGENT_TIMEOUTS, COMMAND_TIMEOUTS, registryTimeouts } from '../../src/registry/timeouts.js';
import type { RegistryClient } from '../../src/registry/index.js';
import { requireCli, runCli } from '../helpers/cli.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { pushFiles, pushClient } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { leftoversIn, namesIn, node } from './setup.js';

let reg: TestRegistry;
let proxy: FaultProxy;
let client: RegistryClient;
/** A rules artifact of one ~1 MiB layer (random bytes: gzip keeps its size). */
let ref: string;
let layerDigest: string;
let layerSize: number;

beforeAll(async () => {
  requireCli('repo', ['pull']);
  requireCli('artifact', ['install']);
  requireCli('config', ['show']);
  reg = await startRegistry();
  proxy = await startFaultProxy(reg);
  client = pushClient();
  await pushFiles(client, `${reg.host}/faults/big:1.0.0`, '1.0.0', { 'big.yaml': `# ${randomBytes(768 * 1024).toString('base64')}\n` });
  const manifest = await client.fetchManifest({ registry: reg.host, repository: 'faults/big', tag: '1.0.0' });
  const layer = (manifest.json as { layers: { digest: string; size: number }[] }).layers[0]!;
  layerDigest = layer.digest;
  layerSize = layer.size;
  ref = `${proxy.host}/faults/big:1.0.0`;
}, 60_000);

afterAll(async () => {
  await client?.close();
  await proxy?.close();
  await reg?.stop();
});

beforeEach(() => proxy.setFault(undefined));

describe('a connection closed mid-blob', () => {
  it('repo pull names the registry, the repository and the blob, and writes nothing', async () => {
    proxy.setFault({ kind: 'truncate', afterBytes: 64 * 1024 });
    const n = await node([proxy.host]);
    const r = await runCli(['repo', 'pull', ref, '--dest', n.pulled], { env: n.env });
    expect(r.code).toBe(1);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(new RegExp(`^error: download of blob ${layerDigest} from ${proxy.host}/faults/big broke after \\d+ of ${layerSize} bytes: other side closed$`));
    expect(r.stderr).toContain(`hint: the connection to ${proxy.host} was closed or went silent mid-download`);
    expect(await namesIn(n.pulled)).toEqual([]);
  });

  it('artifact install starts over, and when every attempt breaks, says the same; a later good attempt installs', async () => {
    proxy.setFault({ kind: 'truncate', afterBytes: 64 * 1024 });
    const n = await node([proxy.host]);
    const layerGets = (): number => proxy.blobRequests.filter((q) => q.digest === layerDigest).length;
    const before = layerGets();
    const r = await runCli(['artifact', 'install', ref], { env: n.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`error: download of blob ${layerDigest} from ${proxy.host}/faults/big broke after \\d+ of ${layerSize} bytes: other side closed`));
    // Four attempts: the default retry budget.
    expect(layerGets() - before).toBe(4);
    expect(await namesIn(n.rules)).toEqual([]);

    proxy.setFault(undefined);
    const ok = await runCli(['artifact', 'install', ref], { env: n.env });
    expect(ok.code).toBe(0);
    expect(await namesIn(n.rules)).toEqual(['big.yaml', 'diginfractl.lock']);
    expect(await leftoversIn(n.rules)).toEqual([]);
  });
});

describe('a blob that stalls', () => {
  it('repo pull gives up after registry.timeouts.read (from the environment), naming the timeout', async () => {
    proxy.setFault({ kind: 'stall', afterBytes: 64 * 1024 }, layerDigest);
    const n = await node([proxy.host]);
    const started = Date.now();
    const r = await runCli(['repo', 'pull', ref, '--dest', n.pulled], { env: { ...n.env, DIGINFRACTL_REGISTRY_TIMEOUTS_READ: '2s' } });
    const took = Date.now() - started;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`error: download of blob ${layerDigest} from ${proxy.host}/faults/big broke after 65536 of ${layerSize} bytes: the registry sent nothing for 2 s \\(registry\\.timeouts\\.read\\)`));
    expect(took).toBeGreaterThanOrEqual(2_000);
    expect(took).toBeLessThan(10_000);
    expect(await namesIn(n.pulled)).toEqual([]);
  });

  it('artifact install tries registry.timeouts.attempts times (from the config file), then gives up', async () => {
    proxy.setFault({ kind: 'stall', afterBytes: 64 * 1024 }, layerDigest);
    const n = await node([proxy.host], { registry: { timeouts: { read: '2s', attempts: 2 } } });
    const layerGets = (): number => proxy.blobRequests.filter((q) => q.digest === layerDigest).length;
    const before = layerGets();
    const started = Date.now();
    const r = await runCli(['artifact', 'install', ref], { env: n.env });
    const took = Date.now() - started;
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('the registry sent nothing for 2 s (registry.timeouts.read)');
    expect(layerGets() - before).toBe(2);
    // Two silences of 2 s and one backoff, not 4 x 60 s.
    expect(took).toBeGreaterThanOrEqual(4_000);
    expect(took).toBeLessThan(12_000);
    expect(await namesIn(n.rules)).toEqual([]);
  });
});

describe('registry.timeouts', () => {
  it('defaults: a minute and four tries for commands, 20 s and two for the follow agent; set values apply to both', () => {
    expect(registryTimeouts({}, 'command')).toEqual(COMMAND_TIMEOUTS);
    expect(registryTimeouts({}, 'agent')).toEqual(AGENT_TIMEOUTS);
    expect(COMMAND_TIMEOUTS).toEqual({ readTimeoutMs: 60_000, attempts: 4 });
    expect(AGENT_TIMEOUTS).toEqual({ readTimeoutMs: 20_000, attempts: 2 });
    expect(registryTimeouts({ timeouts: { read: '1m30s' } }, 'agent')).toEqual({ readTimeoutMs: 90_000, attempts: 2 });
    expect(registryTimeouts({ timeouts: { attempts: 1 } }, 'command')).toEqual({ readTimeoutMs: 60_000, attempts: 1 });
  });

  it('config show prints the values in effect and where they come from', async () => {
    const n = await node([]);
    const shown = await runCli(['config', 'show'], { env: n.env });
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/timeouts:\n\s+read: 60s # default \(artifact follow: 20s\)\n\s+attempts: 4 # default \(artifact follow: 2\)/);
    const env = await runCli(['config', 'show', '-o', 'json'], { env: { ...n.env, DIGINFRACTL_REGISTRY_TIMEOUTS_READ: '15s' } });
    const json = JSON.parse(env.stdout) as { config: { registry: { timeouts: unknown } }; sources: Record<string, string>; registryTimeouts: unknown };
    expect(json.config.registry.timeouts).toEqual({ read: '15s', attempts: 4 });
    expect(json.sources['registry.timeouts.read']).toBe('env');
    expect(json.registryTimeouts).toEqual({ commands: { read: '15s', attempts: 4 }, follow: { read: '15s', attempts: 2 } });
  });

  it('refuses a read timeout under a second and attempts outside 1..10', async () => {
    const n = await node([], { registry: { timeouts: { read: '10ms', attempts: 0 } } });
    const r = await runCli(['config', 'show'], { env: n.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('registry.timeouts.read: "10ms" is shorter than 1s');
    expect(r.stderr).toContain('registry.timeouts.attempts must be between 1 and 10, not 0');
  });
});
