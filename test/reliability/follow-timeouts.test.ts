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
import type { FaultProxy } from '../helpers/fault-proxy.js';
import { pushFiles } from '../helpers/push.js';
import { namesIn, node, proxiedRegistry } from './setup.js';

let fixture: Awaited<ReturnType<typeof proxiedRegistry>>;
let proxy: FaultProxy;
let ref: string;
let layerDigest: string;

beforeAll(async () => {
  requireCli('artifact', ['follow']);
  fixture = await proxiedRegistry();
  ({ proxy } = fixture);
  const { reg, client } = fixture;
  await pushFiles(client, `${reg.host}/timeouts/follow:1.0.0`, '1.0.0', { 'rules.yaml': `- rule: r\n  desc: ${randomBytes(256 * 1024).toString('base64')}\n` });
  layerDigest = await fixture.layerDigest({ registry: reg.host, repository: 'timeouts/follow', tag: '1.0.0' });
  ref = `${proxy.host}/timeouts/follow:1.0.0`;
  proxy.setFault({ kind: 'stall', afterBytes: 16 * 1024 }, layerDigest);
}, 60_000);

afterAll(async () => {
  await fixture?.close();
});

describe('a follow check against a blob that stalls', () => {
  it.each([1, 3])('registry.timeouts read 1s, attempts %i: the check gives up after about read x attempts', async (attempts) => {
    const n = await node([proxy.host], { registry: { timeouts: { read: '1s', attempts } } });
    const from = proxy.blobRequests.length;
    const started = Date.now();
    const r = await runCli(['artifact', 'follow', ref, '--once', '--rulesfiles-dir', n.rules, '--state-dir', join(n.env.HOME, 'state')], { env: n.env, timeoutMs: 30_000 });
    const took = Date.now() - started;
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toContain('the registry sent nothing for 1 s (registry.timeouts.read)');
    // One download per attempt, each given up after the read timeout; nothing is left behind.
    expect(proxy.blobRequests.slice(from).filter((b) => b.digest === layerDigest)).toHaveLength(attempts);
    expect(took).toBeGreaterThanOrEqual(attempts * 1000);
    expect(took).toBeLessThan(attempts * 1000 + 4_000);
    expect(await namesIn(n.rules)).toEqual([]);
  }, 40_000);
});
