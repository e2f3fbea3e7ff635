/**
 * The follow agent's registry timeouts (docs/reliability.md#timeouts): its client has the agent's
 * role (AGENT_TIMEOUTS, 20 s of silence and 2 tries, or the configured `registry.timeouts`), and a
 * blob that stalls mid-download is started over within that budget, so a check gives up after about
 * read x attempts. The built `artifact follow --once` against a blob the tests' fault proxy stalls.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireCli, runCli } from '../helpers/cli.js';
import { namesIn, node, proxiedArtifact, type ProxiedArtifact } from './setup.js';

let fixture: ProxiedArtifact;

beforeAll(async () => {
  requireCli('artifact', ['follow']);
  fixture = await proxiedArtifact('timeouts/follow', { 'rules.yaml': `- rule: r\n  desc: ${randomBytes(256 * 1024).toString('base64')}\n` });
  fixture.proxy.setFault({ kind: 'stall', afterBytes: 16 * 1024 }, fixture.layerDigest);
}, 60_000);

afterAll(async () => {
  await fixture?.close();
});

describe('a follow check against a blob that stalls', () => {
  it.each([1, 3])('registry.timeouts read 1s, attempts %i: the check gives up after about read x attempts', async (attempts) => {
    const n = await node([fixture.proxy.host], { registry: { timeouts: { read: '1s', attempts } } });
    const from = fixture.proxy.blobRequests.length;
    const started = Date.now();
    const r = await runCli(['artifact', 'follow', fixture.ref, '--once', '--rulesfiles-dir', n.rules, '--state-dir', join(n.env.HOME, 'state')], { env: n.env, timeoutMs: 30_000 });
    const took = Date.now() - started;
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toContain('the registry sent nothing for 1 s (registry.timeouts.read)');
    // One download per attempt, each given up after the read timeout; nothing is left behind.
    expect(fixture.proxy.blobRequests.slice(from).filter((b) => b.digest === fixture.layerDigest)).toHaveLength(attempts);
    expect(took).toBeGreaterThanOrEqual(attempts * 1000);
    expect(took).toBeLessThan(attempts * 1000 + 4_000);
    expect(await namesIn(n.rules)).toEqual([]);
  }, 40_000);
});
