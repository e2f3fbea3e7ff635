/**
 * The agent's metrics as operators use them: a real Prometheus server (Debian package `prometheus`)
 * on loopback scrapes a running agent every second and evaluates alert rules built on those metrics
 * ("check failing": the failure streak; "rules stale": time since the last successful check). The
 * registry goes away (its port refuses connections) and both alerts fire; it comes back and they
 * resolve. Without Prometheus the test is skipped and says why; with CI set it fails instead.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { freePort, listenOnLoopback } from '../helpers/net.js';
import { pushClient, pushRules } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { metricValue, scrape, startAgent, waitFor, type Agent } from '../follow/setup.js';

const PROMETHEUS = '/usr/bin/prometheus';
const PROMTOOL = '/usr/bin/promtool';
const missing = !existsSync(PROMETHEUS) || !existsSync(PROMTOOL);
if (missing && process.env.CI) throw new Error(`${PROMETHEUS} is missing: run \`bash scripts/bootstrap.sh\` (Debian package prometheus)`);

/** The registry as the agent sees it: a TCP relay on a port of its own that the test takes down and brings back. */
class Outage {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  port = 0;

  constructor(target: { host: string; port: number }) {
    this.#server = createServer((client) => {
      const upstream = connect(target.port, target.host);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => this.#sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
    });
  }

  async up(): Promise<void> {
    if (this.port === 0) this.port = await listenOnLoopback(this.#server);
    else await new Promise<void>((res, rej) => this.#server.once('error', rej).listen(this.port, '127.0.0.1', () => res()));
  }

  /** Connections are refused from now on, and those open are cut. */
  async down(): Promise<void> {
    const closed = new Promise<void>((res) => this.#server.close(() => res()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }
}

/** The alert rules under test: the two an operator needs first, on the agent's metric names. */
const RULES = {
  groups: [
    {
      name: 'diginfractl-e2e',
      rules: [
        {
          alert: 'DiginfraRulesCheckFailing',
          expr: 'max by (ref) (diginfractl_follow_consecutive_failures) >= 3',
          labels: { severity: 'warning' },
          annotations: { summary: '{{ $labels.ref }}: {{ $value }} checks failed in a row' },
        },
        {
          // 5 intervals of 1 s: the production rule says 2 intervals of 6h.
          alert: 'DiginfraRulesStale',
          expr: 'time() - max by (ref) (diginfractl_follow_last_success_timestamp_seconds) > 5',
          labels: { severity: 'warning' },
        },
      ],
    },
  ],
};

interface Alert {
  labels: Record<string, string>;
  state: string;
}

describe.skipIf(missing)('Prometheus scraping the agent: alerts fire when the registry goes away and resolve when it is back', () => {
  let reg: TestRegistry;
  let relay: Outage;
  let agent: Agent;
  let prometheus: ChildProcess | undefined;
  let dir: string;
  let api = '';

  beforeAll(async () => {
    reg = await startRegistry();
    const [host, port] = reg.host.split(':');
    relay = new Outage({ host: host!, port: Number(port) });
    await relay.up();
    dir = await tempDir('diginfractl-prometheus-');
  });
  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((res) => prometheus!.once('exit', res));
      prometheus.kill('SIGTERM');
      const timer = setTimeout(() => prometheus!.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await agent?.stop();
    await relay?.down().catch(() => undefined);
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const alerts = async (): Promise<Alert[]> => {
    const res = await request(`${api}/api/v1/alerts`);
    const body = (await res.body.json()) as { data: { alerts: Alert[] } };
    return body.data.alerts;
  };
  const firing = async (): Promise<string[]> => (await alerts()).filter((a) => a.state === 'firing').map((a) => a.labels.alertname!).sort();

  it('DiginfraRulesCheckFailing and DiginfraRulesStale fire within seconds of the outage and resolve after it', async () => {
    const ref = `127.0.0.1:${relay.port}/e2e/rules:stable`;
    await pushRules(pushClient(), `${reg.host}/e2e/rules:stable`, '1.0.0', { content: '- macro: e2e\n  condition: (evt.type = open)\n' });
    agent = startAgent([ref, '--every', '1s', '--jitter', '0', '--plain-http', '--rulesfiles-dir', join(dir, 'rules'), '--state-dir', join(dir, 'state'), '--metrics-addr', '127.0.0.1:0'], await cliEnv());
    const agentPort = await agent.port();
    await waitFor('installed', async () => metricValue(await scrape(agentPort), 'diginfractl_artifact_info', { ref }) === 1);

    const rules = join(dir, 'rules.yml');
    await writeFile(rules, stringify(RULES));
    const checked = spawnSync(PROMTOOL, ['check', 'rules', rules], { encoding: 'utf8' });
    expect(checked.status, checked.stdout + checked.stderr).toBe(0);
    await writeFile(
      join(dir, 'prometheus.yml'),
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [rules],
        scrape_configs: [{ job_name: 'diginfractl', static_configs: [{ targets: [`127.0.0.1:${agentPort}`] }] }],
      }),
    );
    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    let stderr = '';
    prometheus = spawn(PROMETHEUS, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
    prometheus.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-8_192)));
    prometheus.on('error', () => undefined);
    await waitFor('Prometheus ready', async () => (await request(`${api}/-/ready`)).statusCode === 200, 20_000, 200).catch((err: Error) => {
      throw new Error(`${err.message}\n${stderr}`);
    });
    // Scraped, evaluated, nothing firing while the registry answers.
    await waitFor('the agent scraped', async () => {
      const res = await request(`${api}/api/v1/query?query=${encodeURIComponent('diginfractl_follow_consecutive_failures')}`);
      const body = (await res.body.json()) as { data: { result: unknown[] } };
      return body.data.result.length > 0;
    }, 15_000, 200);
    expect(await firing()).toEqual([]);

    const outage = Date.now();
    await relay.down();
    await waitFor('both alerts firing', async () => (await firing()).join() === 'DiginfraRulesCheckFailing,DiginfraRulesStale', 20_000, 250);
    const fired = await alerts();
    expect(fired.every((a) => a.labels.ref === ref && a.labels.severity === 'warning')).toBe(true);
    expect(Date.now() - outage).toBeLessThan(15_000);

    await relay.up();
    await waitFor('alerts resolved', async () => (await firing()).length === 0, 15_000, 250);
    expect(metricValue(await scrape(agentPort), 'diginfractl_follow_consecutive_failures', { ref })).toBe(0);
  }, 60_000);
});
