/**
 * Start-up in the engine's own pod (native-sidecar mode): the install init container placed the rules,
 * then the follower starts, and the engine, whose versions URL the follower is given, starts only once
 * the follower's /readyz answers 200. The follower must never wait for the engine: with the URL
 * unreachable, a followed ref that install did not place, and a newer version published between the
 * install and the follower's start, /readyz becomes 200 once the first checks end. The built CLI, a
 * real registry, and a dead port for the engine.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { deadPort } from '../helpers/net.js';
import { pushClient, pushRules } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { httpGet, metricValue, scrape, startAgent, waitFor, type Agent } from './setup.js';

const RULES = (name: string, v: string): string => `- macro: ${name}_${v.replace(/\W/g, '_')}\n  condition: (evt.type = open)\n`;
const NEEDS_ENGINE = [{ name: 'engine_version', version: '0.40.0' }];

describe('artifact follow in the engine pod: start-up never waits for the engine', () => {
  let reg: TestRegistry;
  const agents: Agent[] = [];
  const push = pushClient();

  beforeAll(async () => {
    reg = await startRegistry();
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
    await reg?.stop();
  });

  /**
   * The pod as the chart renders it, up to the follower's start: `placed` installed by the init
   * container (v1), then v2 of it and `followOnly` (which install does not place) published, both
   * needing engine 0.40.0.
   */
  async function pod(name: string, installEngineVersion?: string) {
    const root = await tempDir();
    const rules = join(root, 'rules');
    const placed = `${reg.host}/${name}/placed:stable`;
    const followOnly = `${reg.host}/${name}/follow-only:stable`;
    const env = await cliEnv();
    const versionsUrl = `http://127.0.0.1:${await deadPort()}/versions`;
    await writeFile(
      env.DIGINFRACTL_CONFIG!,
      stringify({
        registry: { plainHttp: [reg.host] },
        install: { rulesfilesDir: rules, ...(installEngineVersion !== undefined && { engineVersion: installEngineVersion }) },
        follow: { refs: [placed, followOnly], every: '1h', jitter: 0, rulesfilesDir: rules, stateDir: join(root, 'state'), engineVersionsUrl: versionsUrl },
      }),
    );
    await pushRules(push, placed, '1.0.0', { content: RULES('placed', '1.0.0'), fileName: 'placed_rules.yaml', requirements: [{ name: 'engine_version', version: '0.30.0' }] });
    const install = await runCli(['artifact', 'install', placed], { env });
    expect(install.code, install.stderr).toBe(0);
    await pushRules(push, placed, '2.0.0', { content: RULES('placed', '2.0.0'), fileName: 'placed_rules.yaml', requirements: NEEDS_ENGINE });
    await pushRules(push, followOnly, '1.0.0', { content: RULES('follow_only', '1.0.0'), fileName: 'follow_only_rules.yaml', requirements: NEEDS_ENGINE });
    const agent = startAgent(['--metrics-addr', '127.0.0.1:0'], env);
    agents.push(agent);
    return { agent, port: await agent.port(), rules, placed, followOnly };
  }

  const ready = async (port: number) =>
    waitFor('/readyz 200', async () => {
      const r = await httpGet(port, '/readyz');
      return r.status === 200 ? r : undefined;
    }, 15_000);

  it('with the engine unreachable and no version to fall back on: ready once the first checks end, the installed files kept, the failures in the metrics', async () => {
    const { agent, port, rules, placed, followOnly } = await pod('nofallback');
    const probe = await ready(port);
    expect(probe.body).toContain(`nothing installed yet for ${followOnly}`);
    expect(probe.body).not.toContain(placed);
    // The engine (once started) gets what install placed; the requirement was not checked against nothing.
    expect(await readFile(join(rules, 'placed_rules.yaml'), 'utf8')).toBe(RULES('placed', '1.0.0'));
    await expect(readFile(join(rules, 'follow_only_rules.yaml'))).rejects.toMatchObject({ code: 'ENOENT' });
    const text = await waitFor('both failures counted', async () => {
      const t = await scrape(port);
      return metricValue(t, 'diginfractl_follow_consecutive_failures', { ref: placed }) >= 1 && metricValue(t, 'diginfractl_follow_consecutive_failures', { ref: followOnly }) >= 1 ? t : undefined;
    });
    expect(metricValue(text, 'diginfractl_follow_checks_total', { ref: followOnly, result: 'error' })).toBeGreaterThanOrEqual(1);
    expect(agent.logs.some((l) => typeof l.err === 'string' && l.err.includes('engine versions URL'))).toBe(true);
    expect((await httpGet(port, '/healthz')).status).toBe(200);
  });

  it("with install.engineVersion to fall back on: ready, both refs brought up to date against it, with a warning", async () => {
    const { agent, port, rules, followOnly } = await pod('fallback', '0.40.0');
    await ready(port);
    await waitFor('follow-only installed', async () => (await readFile(join(rules, 'follow_only_rules.yaml'), 'utf8').catch(() => '')) === RULES('follow_only', '1.0.0'));
    await waitFor('placed updated to 2.0.0', async () => (await readFile(join(rules, 'placed_rules.yaml'), 'utf8')) === RULES('placed', '2.0.0'));
    const warning = agent.logs.find((l) => l.event === 'engine-version-fallback');
    expect(warning).toMatchObject({ level: 40, version: '0.40.0', from: expect.stringContaining('install.engineVersion') });
    expect(String(warning!.msg)).toContain('cannot read the engine version yet');
    const probe = await httpGet(port, '/readyz');
    expect(probe).toMatchObject({ status: 200, body: 'ok\n' });
    expect(metricValue(await scrape(port), 'diginfractl_follow_consecutive_failures', { ref: followOnly })).toBe(0);
  });
});
