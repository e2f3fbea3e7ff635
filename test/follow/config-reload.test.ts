/**
 * Live config: the config file is mounted like a Kubernetes ConfigMap (diginfractl.yaml ->
 * ..data/diginfractl.yaml, ..data -> ..<timestamp>), and updated the way the kubelet does it: a new
 * timestamped dir, a `..data_tmp` symlink to it renamed over `..data`. The running agent must notice,
 * start the added ref, keep the last good config when the new one is invalid, and stop a removed ref.
 */
import { mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tempDir } from '../helpers/fs.js';
import { freePort } from '../helpers/net.js';
import { pushClient, pushRules } from '../helpers/push.js';
import { httpGet, metricValue, scrape, startAgent, waitFor, type Agent } from './setup.js';

/** Publishes `text` as the ConfigMap's diginfractl.yaml the way the kubelet does. */
async function configMapUpdate(dir: string, generation: number, text: string): Promise<void> {
  const gen = `..2024_01_01_00_00_0${generation}.000000001`;
  await mkdir(join(dir, gen));
  await writeFile(join(dir, gen, 'diginfractl.yaml'), text);
  await symlink(gen, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  if (generation > 1) await rm(join(dir, `..2024_01_01_00_00_0${generation - 1}.000000001`), { recursive: true, force: true });
}

describe('artifact follow: live config through a ConfigMap-style symlink swap', () => {
  let reg: TestRegistry;
  let agent: Agent | undefined;

  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    await agent?.stop();
    await reg?.stop();
  });

  it('follows an added ref, keeps the last good config when the new one is invalid, and stops a removed ref', async () => {
    const client = pushClient();
    const a = `${reg.host}/rules/a:stable`;
    const b = `${reg.host}/rules/b:stable`;
    await pushRules(client, a, '1.0.0', { content: '- macro: a\n  condition: (evt.type = open)\n', fileName: 'a_rules.yaml' });
    await pushRules(client, b, '1.0.0', { content: '- macro: b\n  condition: (evt.type = close)\n', fileName: 'b_rules.yaml' });

    const root = await tempDir();
    const rules = join(root, 'rules');
    const cm = join(root, 'configmap');
    await mkdir(cm);
    const config = (refs: string[]): string =>
      stringify({ follow: { refs, every: '1s', jitter: 0, rulesfilesDir: rules, stateDir: join(root, 'state'), metricsAddr: '127.0.0.1:0' }, registry: { plainHttp: [reg.host] } });
    await configMapUpdate(cm, 1, config([a]));
    await symlink('..data/diginfractl.yaml', join(cm, 'diginfractl.yaml'));

    const env = await cliEnv();
    agent = startAgent(['--config', join(cm, 'diginfractl.yaml')], env);
    const port = await agent.port();
    await waitFor('a installed', async () => (await readFile(join(rules, 'a_rules.yaml'), 'utf8')).includes('macro: a'));

    // Add b: the swap of ..data is noticed (the fallback poll is 60 s; this must come from the watch).
    const t0 = Date.now();
    await configMapUpdate(cm, 2, config([a, b]));
    await waitFor('b installed', async () => (await readFile(join(rules, 'b_rules.yaml'), 'utf8')).includes('macro: b'), 10_000);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const reloaded = agent.logs.find((l) => l.event === 'config-reloaded');
    expect(reloaded).toMatchObject({ added: [b], removed: [] });

    // An invalid config: logged, the last good one kept (both refs still checked).
    await configMapUpdate(cm, 3, stringify({ follow: { refs: [a], every: 'banana' } }));
    await waitFor('config-invalid logged', () => agent!.logs.some((l) => l.event === 'config-invalid'), 10_000);
    const before = metricValue(await scrape(port), 'diginfractl_follow_checks_total', { ref: b });
    await waitFor('b still checked', async () => metricValue(await scrape(port), 'diginfractl_follow_checks_total', { ref: b }) >= before + 2, 5_000);

    // Remove a: its checks stop and its series go away.
    await configMapUpdate(cm, 4, config([b]));
    await waitFor('a removed', () => agent!.logs.some((l) => l.event === 'config-reloaded' && (l.removed as string[]).includes(a)), 10_000);
    const aChecks = metricValue(await scrape(port), 'diginfractl_follow_checks_total', { ref: a });
    await new Promise((r) => setTimeout(r, 2_500));
    const text = await scrape(port);
    expect(metricValue(text, 'diginfractl_follow_checks_total', { ref: a })).toBe(aChecks);
    expect(metricValue(text, 'diginfractl_artifact_info', { ref: a })).toBe(0);
    expect(metricValue(text, 'diginfractl_artifact_info', { ref: b })).toBe(1);
    expect((await agent.stop()).code).toBe(0);
  }, 60_000);

  it('moves the metrics server when follow.metricsAddr changes, without a restart', async () => {
    const root = await tempDir();
    const cm = join(root, 'configmap');
    await mkdir(cm);
    const config = (metricsAddr?: string): string =>
      stringify({ follow: { refs: [], every: '1h', stateDir: join(root, 'state'), rulesfilesDir: join(root, 'rules'), ...(metricsAddr && { metricsAddr }) } });
    await configMapUpdate(cm, 1, config('127.0.0.1:0'));
    await symlink('..data/diginfractl.yaml', join(cm, 'diginfractl.yaml'));
    agent = startAgent(['--config', join(cm, 'diginfractl.yaml')], await cliEnv());
    const first = await agent.port();
    expect((await httpGet(first, '/healthz')).status).toBe(200);

    const free = await freePort();
    await configMapUpdate(cm, 2, config(`127.0.0.1:${free}`));
    await waitFor('listening on the new port', () => agent!.logs.some((l) => l.event === 'listening' && l.port === free), 10_000);
    expect((await httpGet(free, '/healthz')).status).toBe(200);
    expect(await httpGet(first, '/healthz').then(() => 'answered', (err: NodeJS.ErrnoException) => err.code)).toBe('ECONNREFUSED');

    // The same port on another host: the old server makes way for the new one.
    await configMapUpdate(cm, 3, config(`0.0.0.0:${free}`));
    await waitFor('listening on 0.0.0.0', () => agent!.logs.some((l) => l.event === 'listening' && l.port === free && l.address === '0.0.0.0'), 10_000);
    expect((await httpGet(free, '/healthz')).status).toBe(200);
    expect(agent.logs.some((l) => l.event === 'metrics-move-failed')).toBe(false);

    await configMapUpdate(cm, 4, config());
    await waitFor('metrics off', () => agent!.logs.some((l) => l.event === 'metrics-off'), 10_000);
    expect(await httpGet(free, '/healthz').then(() => 'answered', (err: NodeJS.ErrnoException) => err.code)).toBe('ECONNREFUSED');
    expect((await agent.stop()).code).toBe(0);
  }, 60_000);
});
