/**
 * SIGTERM during a download of `artifact follow` (the built CLI), against a throttled and a stalled
 * blob served by the tests' fault proxy in front of the real registry: docs/follow.md promises the
 * check is abandoned within 5 s, its staging dir removed, and the agent exits 0.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireCli, spawnCli } from '../helpers/cli.js';
import type { BlobFault } from '../helpers/fault-proxy.js';
import { namesIn, node, proxiedArtifact, type ProxiedArtifact } from './setup.js';

let fixture: ProxiedArtifact;

beforeAll(async () => {
  requireCli('artifact', ['follow']);
  // 8 MiB that gzip cannot shrink: a download that takes a while when throttled.
  fixture = await proxiedArtifact('signals/follow', { 'big.yaml': `# ${randomBytes(6 * 1024 * 1024).toString('base64')}\n` });
}, 60_000);

afterAll(async () => {
  await fixture?.close();
});

const FAULTS: Record<string, BlobFault> = {
  throttled: { kind: 'throttle', bytesPerSecond: 256 * 1024 },
  stalled: { kind: 'stall', afterBytes: 256 * 1024 },
};

describe('SIGTERM while artifact follow downloads', () => {
  it.each(['throttled', 'stalled'] as const)('%s blob: the check is abandoned, the agent exits 0 within 5 s, no staging dir is left', async (fault) => {
    fixture.proxy.setFault(FAULTS[fault], fixture.layerDigest);
    const n = await node([fixture.proxy.host]);
    const state = join(n.env.HOME, 'state');
    const from = fixture.proxy.blobRequests.length;
    const child = spawnCli(['artifact', 'follow', fixture.ref, '--rulesfiles-dir', n.rules, '--state-dir', state, '--every', '1h'], { env: n.env });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
      child.once('exit', (code, sig) => resolve({ code, signal: sig, at: Date.now() })),
    );
    const download = await fixture.proxy.waitForBytes(128 * 1024, { from, timeoutMs: 30_000 });
    expect(download.digest).toBe(fixture.layerDigest);
    const sentAt = Date.now();
    child.kill('SIGTERM');
    const exit = await exited;

    expect(exit.at - sentAt, stderr).toBeLessThan(5_000);
    expect(exit.signal).toBeNull();
    expect(exit.code, stderr).toBe(0);
    // The transfer itself was dropped, not left to run out.
    expect(download.closedAt).toBeDefined();
    expect(download.closedAt! - sentAt).toBeLessThan(5_000);
    expect(download.sent).toBeLessThan(8 * 1024 * 1024);
    // No staging dir (nor anything else) in the rules dir: the version never went in.
    expect(await namesIn(n.rules)).toEqual([]);
  }, 60_000);
});
