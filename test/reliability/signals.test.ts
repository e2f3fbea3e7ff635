/**
 * SIGTERM and SIGINT during a download, for `artifact install` and `repo pull` run as a user runs
 * them (the built CLI), against a throttled and a stalled blob served by the tests' fault proxy in
 * front of the real registry: the transfer is abandoned, staging and temp files are removed, and the
 * command exits within 5 s with 128 + the signal's number (143 for SIGTERM, 130 for SIGINT).
 */
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistryClient } from '../../src/registry/index.js';
import { requireCli, spawnCli } from '../helpers/cli.js';
import { startFaultProxy, type BlobFault, type FaultProxy } from '../helpers/fault-proxy.js';
import { pushClient, pushFiles } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { namesIn, node, type Node } from './setup.js';

let reg: TestRegistry;
let proxy: FaultProxy;
let client: RegistryClient;
let ref: string;
let layerDigest: string;

beforeAll(async () => {
  requireCli('artifact', ['install']);
  requireCli('repo', ['pull']);
  reg = await startRegistry();
  proxy = await startFaultProxy(reg);
  client = pushClient();
  // 8 MiB that gzip cannot shrink: a download that takes a while when throttled.
  await pushFiles(client, `${reg.host}/signals/big:1.0.0`, '1.0.0', { 'big.yaml': `# ${randomBytes(6 * 1024 * 1024).toString('base64')}\n` });
  const manifest = await client.fetchManifest({ registry: reg.host, repository: 'signals/big', tag: '1.0.0' });
  layerDigest = (manifest.json as { layers: { digest: string }[] }).layers[0]!.digest;
  ref = `${proxy.host}/signals/big:1.0.0`;
}, 60_000);

afterAll(async () => {
  await client?.close();
  await proxy?.close();
  await reg?.stop();
});

/** Temp files of the blob cache (unfinished downloads), under the node's XDG cache dir. */
async function cacheTempFiles(n: Node): Promise<string[]> {
  const dir = join(n.env.XDG_CACHE_HOME!, 'diginfractl', 'blobs', 'sha256');
  return (await readdir(dir).catch(() => [] as string[])).filter((f) => f.startsWith('.'));
}

const FAULTS: Record<string, BlobFault> = {
  throttled: { kind: 'throttle', bytesPerSecond: 256 * 1024 },
  stalled: { kind: 'stall', afterBytes: 256 * 1024 },
};

const CASES = [
  { command: 'artifact install', fault: 'throttled', signal: 'SIGTERM' },
  { command: 'artifact install', fault: 'stalled', signal: 'SIGINT' },
  { command: 'artifact install', fault: 'stalled', signal: 'SIGTERM' },
  { command: 'repo pull', fault: 'throttled', signal: 'SIGINT' },
  { command: 'repo pull', fault: 'stalled', signal: 'SIGTERM' },
  { command: 'repo pull', fault: 'throttled', signal: 'SIGTERM' },
] as const;

describe('a signal during a download', () => {
  it.each(CASES)('$command, $fault blob, $signal: abandoned within 5 s, nothing left behind', async ({ command, fault, signal }) => {
    proxy.setFault(FAULTS[fault], layerDigest);
    const n = await node([proxy.host]);
    const args = command === 'artifact install' ? ['artifact', 'install', ref] : ['repo', 'pull', ref, '--dest', n.pulled];
    const from = proxy.blobRequests.length;
    const child = spawnCli(args, { env: n.env });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
      child.once('exit', (code, sig) => resolve({ code, signal: sig, at: Date.now() })),
    );
    const download = await proxy.waitForBytes(128 * 1024, { from });
    expect(download.digest).toBe(layerDigest);
    const sentAt = Date.now();
    child.kill(signal);
    const exit = await exited;

    expect(exit.at - sentAt, stderr).toBeLessThan(5_000);
    expect(exit.signal).toBeNull();
    expect(exit.code, stderr).toBe(signal === 'SIGINT' ? 130 : 143);
    expect(stderr).toContain(`error: interrupted by ${signal}: the download in progress was abandoned and its staging removed`);
    // The transfer itself was dropped, not left to run out in the background.
    expect(download.closedAt).toBeDefined();
    expect(download.closedAt! - sentAt).toBeLessThan(5_000);
    expect(download.sent).toBeLessThan(8 * 1024 * 1024);
    // No staging dir, temp file, lock or partial file anywhere.
    expect(await namesIn(n.pulled)).toEqual([]);
    expect(await namesIn(n.rules)).toEqual([]);
    expect(await cacheTempFiles(n)).toEqual([]);
  });
});
