/**
 * `artifact follow` end to end: the built CLI as a child process against a real registry, with real
 * time (--every 1s --jitter 0). Readiness after a first check that failed, and after the first
 * install, an update seen within two intervals, invalid updates rejected (not YAML; refused by a real --validate-cmd script) with the
 * live file kept and the rejection counted in /metrics, `artifact rollback`, SIGTERM exiting 0, a
 * restart that downloads nothing, `--once` after a rollback, and a swap that fails on disk.
 */
import { chmod, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tempDir } from '../helpers/fs.js';
import { pushClient, pushRules, RULES_FIXTURE } from '../helpers/push.js';
import { httpGet, metricValue, scrape, startAgent, waitFor, type Agent } from './setup.js';

const INTERVAL_MS = 1_000;

describe('artifact follow (built CLI, real registry)', () => {
  let reg: TestRegistry;
  let root: string;
  let env: NodeJS.ProcessEnv;
  const agents: Agent[] = [];

  beforeAll(async () => {
    reg = await startRegistry();
    root = await tempDir();
    env = await cliEnv();
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
    await reg?.stop();
  });

  it('installs, updates within two intervals, rejects bad versions, rolls back, stops on SIGTERM and restarts without downloading', async () => {
    const client = pushClient();
    const ref = `${reg.host}/rules/falco:stable`;
    const rules = join(root, 'etc/diginfra');
    const state = join(root, 'state');
    const live = join(rules, 'falco_rules.yaml');
    // A real validator: refuses a rules file that mentions FORBIDDEN; the staged path is its last argument.
    const script = join(root, 'validate.sh');
    await writeFile(script, '#!/bin/sh\nfor last in "$@"; do :; done\nif grep -q FORBIDDEN "$last"; then echo "forbidden rule in $last" >&2; exit 3; fi\nexit 0\n');
    await chmod(script, 0o755);
    const args = [ref, '--every', '1s', '--jitter', '0', '--rulesfiles-dir', rules, '--state-dir', state, '--metrics-addr', '127.0.0.1:0', '--plain-http', '--validate-cmd', `${script} --strict`];

    // Nothing pushed yet: the first check fails (not found). The agent runs and is healthy, and it is
    // ready once that check has ended (readiness is "the start-up work is done", never "the registry
    // answered"); the body says that nothing is installed for the ref.
    const agent = startAgent(args, env);
    agents.push(agent);
    const port = await agent.port();
    expect((await httpGet(port, '/healthz')).status).toBe(200);
    const settled = await waitFor('/readyz after the first check', async () => {
      const r = await httpGet(port, '/readyz');
      return r.status === 200 ? r : undefined;
    });
    expect(settled.body).toContain(`nothing installed yet for ${ref}`);

    // v1 appears, and the agent becomes ready.
    const v1 = await readFile(RULES_FIXTURE);
    const d1 = await pushRules(client, ref, '1.0.0', { content: v1 });
    await waitFor('v1 installed', async () => (await readFile(live).catch(() => Buffer.alloc(0))).equals(v1));
    await waitFor('/readyz 200', async () => (await httpGet(port, '/readyz')).status === 200);

    // v2: the bytes change within two intervals of the push.
    const v2 = Buffer.concat([v1, Buffer.from('\n- macro: follow_test_v2\n  condition: (evt.type = open)\n')]);
    const d2 = await pushRules(client, ref, '2.0.0', { content: v2 });
    const pushed = Date.now();
    await waitFor('v2 installed', async () => (await readFile(live)).equals(v2), 2 * INTERVAL_MS, 10);
    const seenAfter = Date.now() - pushed;
    expect(seenAfter).toBeLessThanOrEqual(2 * INTERVAL_MS);
    // The metrics follow the rename (state written first): wait for them.
    let text = await waitFor('updates_total 2', async () => {
      const t = await scrape(port);
      return metricValue(t, 'diginfractl_follow_updates_total', { ref }) === 2 ? t : undefined;
    });
    expect(metricValue(text, 'diginfractl_artifact_info', { ref, digest: d2, version: '2.0.0' })).toBe(1);
    expect(metricValue(text, 'diginfractl_artifact_info', { ref, digest: d1 })).toBe(0);
    expect(metricValue(text, 'diginfractl_follow_last_success_timestamp_seconds', { ref })).toBeGreaterThan(Date.now() / 1000 - 10);
    expect(metricValue(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    const swapLog = agent.logs.find((l) => l.event === 'swap' && l.newVersion === '2.0.0');
    expect(swapLog).toMatchObject({ ref, oldDigest: d1, newDigest: d2, oldVersion: '1.0.0', newVersion: '2.0.0' });

    // v3, not YAML: rejected, v2 stays, the rejection is counted.
    const d3a = await pushRules(client, ref, '3.0.0', { content: '- rule: broken\n  condition: [unclosed\n  : :\n' });
    await waitFor('invalid_yaml rejection', async () => metricValue(await scrape(port), 'diginfractl_follow_rejected_total', { ref, reason: 'invalid_yaml' }) >= 1, 4 * INTERVAL_MS);
    expect(await readFile(live)).toEqual(v2);
    expect(agent.logs.find((l) => l.event === 'reject' && l.newDigest === d3a)).toMatchObject({ ref, reason: 'invalid_yaml', oldDigest: d2, oldVersion: '2.0.0', newVersion: '3.0.0' });

    // v3, valid YAML list the validator refuses: rejected, v2 stays.
    const d3b = await pushRules(client, ref, '3.0.1', { content: `${v2.toString()}\n- macro: FORBIDDEN\n  condition: (evt.type = close)\n` });
    await waitFor('validate_cmd rejection', async () => metricValue(await scrape(port), 'diginfractl_follow_rejected_total', { ref, reason: 'validate_cmd' }) >= 1, 4 * INTERVAL_MS);
    expect(await readFile(live)).toEqual(v2);
    expect(agent.logs.find((l) => l.event === 'reject' && l.newDigest === d3b)).toMatchObject({ reason: 'validate_cmd', oldDigest: d2 });
    // A rejected digest is not downloaded again at every check: the counter stays at one.
    await new Promise((r) => setTimeout(r, 2 * INTERVAL_MS));
    text = await scrape(port);
    expect(metricValue(text, 'diginfractl_follow_rejected_total', { ref, reason: 'validate_cmd' })).toBe(1);
    expect(metricValue(text, 'diginfractl_follow_checks_total', { ref, result: 'rejected' })).toBeGreaterThanOrEqual(2);
    // No staging dir is left behind in the rules dir.
    expect((await readdir(rules)).filter((n) => n.startsWith('.diginfractl-staging'))).toEqual([]);

    // Rollback (while the agent runs) puts v1's bytes back; the agent leaves them alone.
    const rb = await runCli(['artifact', 'rollback', ref, '--state-dir', state], { env });
    expect(rb.stderr).not.toContain('error:');
    expect(rb.code).toBe(0);
    expect(rb.stdout).toContain('from 2.0.0');
    expect(await readFile(live)).toEqual(v1);
    await new Promise((r) => setTimeout(r, 2 * INTERVAL_MS));
    expect(await readFile(live)).toEqual(v1);

    // SIGTERM: exit 0.
    const exit = await agent.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(agent.logs.some((l) => l.event === 'stopped')).toBe(true);

    // Restart: ready at once, checks run, nothing but HEADs and no bytes downloaded.
    const again = startAgent(args, env);
    agents.push(again);
    const port2 = await again.port();
    await waitFor('/readyz 200 after restart', async () => (await httpGet(port2, '/readyz')).status === 200, 5_000);
    await waitFor('three checks after restart', async () => metricValue(await scrape(port2), 'diginfractl_follow_checks_total', { ref }) >= 3, 6 * INTERVAL_MS);
    text = await scrape(port2);
    expect(metricValue(text, 'diginfractl_registry_requests_total', { method: 'GET' })).toBe(0);
    expect(metricValue(text, 'diginfractl_registry_requests_total', { method: 'HEAD' })).toBeGreaterThanOrEqual(3);
    expect(metricValue(text, 'diginfractl_download_bytes_total')).toBe(0);
    expect(metricValue(text, 'diginfractl_follow_updates_total')).toBe(0);
    expect(await readFile(live)).toEqual(v1);
    expect((await again.stop()).code).toBe(0);
  }, 90_000);

  it('--once checks every ref once and exits 0, or 1 when a ref fails', async () => {
    const client = pushClient();
    const ref = `${reg.host}/rules/once:1.0.0`;
    await pushRules(client, ref, '1.0.0', { content: await readFile(RULES_FIXTURE) });
    const rules = join(root, 'once/rules');
    const common = ['--rulesfiles-dir', rules, '--state-dir', join(root, 'once/state'), '--plain-http'];
    const ok = await runCli(['artifact', 'follow', ref, '--once', ...common], { env });
    expect(ok.stderr).not.toContain('error:');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`${ref}: updated 1.0.0`);
    const again = await runCli(['artifact', 'follow', ref, '--once', '-o', 'json', ...common], { env });
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject([{ ref, result: 'unchanged', version: '1.0.0' }]);
    const missing = await runCli(['artifact', 'follow', ref, `${reg.host}/rules/missing:1`, '--once', ...common], { env });
    expect(missing.code).toBe(1);
    expect(missing.stdout).toContain(`${reg.host}/rules/missing:1: error`);
    const both = await runCli(['artifact', 'follow', ref, '--once', '--every', '1s', '--cron', '@hourly', ...common], { env });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--every or --cron');
  }, 60_000);

  it('--once after artifact rollback: the held ref is not a failure (exit 0)', async () => {
    const client = pushClient();
    const ref = `${reg.host}/rules/once-rollback:stable`;
    const v1 = await readFile(RULES_FIXTURE);
    await pushRules(client, ref, '1.0.0', { content: v1 });
    const rules = join(root, 'once-rollback/rules');
    const state = join(root, 'once-rollback/state');
    const common = [ref, '--once', '--rulesfiles-dir', rules, '--state-dir', state, '--plain-http'];
    expect((await runCli(['artifact', 'follow', ...common], { env })).code).toBe(0);
    const d2 = await pushRules(client, ref, '2.0.0', { content: Buffer.concat([v1, Buffer.from('\n- list: once_rollback_v2\n  items: []\n')]) });
    expect((await runCli(['artifact', 'follow', ...common], { env })).stdout).toContain(`${ref}: updated 2.0.0`);
    expect((await runCli(['artifact', 'rollback', ref, '--state-dir', state], { env })).code).toBe(0);

    const held = await runCli(['artifact', 'follow', ...common], { env });
    expect(held.stderr).not.toContain('error:');
    expect(held.stdout).toContain(`${ref}: rejected (rollback, held) 2.0.0 ${d2}`);
    expect(held.code).toBe(0);
    const json = await runCli(['artifact', 'follow', ...common, '-o', 'json'], { env });
    expect(JSON.parse(json.stdout)).toMatchObject([{ ref, result: 'rejected', reason: 'rollback', pinned: true }]);
    expect(json.code).toBe(0);
    expect(await readFile(join(rules, 'falco_rules.yaml'))).toEqual(v1);
    // A new version is installed again, as usual.
    await pushRules(client, ref, '3.0.0', { content: Buffer.concat([v1, Buffer.from('\n- list: once_rollback_v3\n  items: []\n')]) });
    const next = await runCli(['artifact', 'follow', ...common], { env });
    expect(next.stdout).toContain(`${ref}: updated 3.0.0`);
    expect(next.code).toBe(0);
  }, 60_000);

  it('a swap that fails on disk: --once exits 1 with one line and no stack trace; the agent keeps running and installs once it can', async () => {
    const client = pushClient();
    const ref = `${reg.host}/rules/swapfail:stable`;
    const v1 = await readFile(RULES_FIXTURE);
    await pushRules(client, ref, '1.0.0', { content: v1 });
    const rules = join(root, 'swapfail/rules');
    const state = join(root, 'swapfail/state');
    // A directory where the rules file goes: its rename(2) fails (EISDIR) inside the locked swap.
    await mkdir(join(rules, 'falco_rules.yaml', 'in-the-way'), { recursive: true });
    const common = ['--rulesfiles-dir', rules, '--state-dir', state, '--plain-http'];

    const once = await runCli(['artifact', 'follow', ref, '--once', ...common], { env });
    expect(once.code).toBe(1);
    const lines = once.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: error: cannot place .*falco_rules\\.yaml`));
    expect(once.stderr).not.toMatch(/^\s+at /m);
    expect(once.stderr).not.toContain('Unhandled');
    expect((await readdir(rules)).filter((n) => n.startsWith('.diginfractl-staging'))).toEqual([]);

    // The agent: the failing check is counted and retried, the process stays up.
    const agent = startAgent([ref, '--every', '1s', '--jitter', '0', ...common, '--metrics-addr', '127.0.0.1:0'], env);
    agents.push(agent);
    const port = await agent.port();
    await waitFor('two failed checks', async () => metricValue(await scrape(port), 'diginfractl_follow_checks_total', { ref, result: 'error' }) >= 2, 15_000);
    expect(agent.child.exitCode).toBeNull();
    expect((await httpGet(port, '/healthz')).status).toBe(200);
    expect(agent.stderr()).not.toMatch(/^\s+at /m);
    // The obstacle goes: the next check installs v1.
    await rm(join(rules, 'falco_rules.yaml'), { recursive: true });
    await waitFor('v1 installed', async () => (await readFile(join(rules, 'falco_rules.yaml')).catch(() => Buffer.alloc(0))).equals(v1), 15_000);
    // The swap removes its staging dir right after the rename: gone shortly, not left behind.
    await waitFor('staging removed', async () => (await readdir(rules)).filter((n) => n.startsWith('.diginfractl-staging')).length === 0, 5_000);
    expect(await agent.stop()).toEqual({ code: 0, signal: null });
  }, 60_000);
});
