/**
 * Downloads that go wrong part way, through the tests' fault proxy in front of the real registry: a
 * connection closed mid-blob (the error names the registry, the repository and the blob), and a blob
 * that stalls (the idle-read timeout and the retry budget of `registry.timeouts` bound how long a
 * command waits).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
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
