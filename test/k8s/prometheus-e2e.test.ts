/**
 * The chart's staleness alert end to end: a real Prometheus server (Debian package `prometheus`) on
 * loopback scrapes a running agent (the built CLI's `artifact follow`) and evaluates the rules the chart
 * renders. The registry goes away, and DiginfraRulesStale fires; it comes back, and the alert resolves.
 *
 * The agent checks every 2s (the chart renders a 2 x 2s threshold for that) and the rule's `for: 30m`
 * is set to 0s here, so the test takes seconds: the expression under test is the chart's own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { cliEnv, requireCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { ensureK8sTools } from '../helpers/helm.js';
import { freePort } from '../helpers/net.js';
import { pushClient, pushRules } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { httpGet, startAgent, waitFor, type Agent } from '../follow/setup.js';
import { helmTemplate, parseManifests } from './support.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- the rule and the API answers are untyped */
const PROMETHEUS = '/usr/bin/prometheus';

/** A TCP forwarder in front of the registry that can stop (refusing connections) and start again on its port. */
class Forwarder {
  readonly #target: number;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  port = 0;

  constructor(target: number) {
    this.#target = target;
  }

  async start(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.#target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
        s.on('close', () => this.#sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
    });
    server.on('error', () => server.close());
    await new Promise<void>((ok) => server.listen(this.port, '127.0.0.1', () => ok()));
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((ok) => (this.#server ? this.#server.close(() => ok()) : ok()));
    this.#server = undefined;
  }
}

let reg: TestRegistry;
let forwarder: Forwarder;
let agent: Agent | undefined;
let prometheus: ChildProcess | undefined;
let promPort: number;
let promLog = '';
let root: string | undefined;

/** The alerts Prometheus holds now, by name and state. */
async function alerts(): Promise<{ name: string; state: string; labels: Record<string, string> }[]> {
  const r = await httpGet(promPort, '/api/v1/alerts');
  if (r.status !== 200) return [];
  return JSON.parse(r.body).data.alerts.map((a: any) => ({ name: a.labels.alertname, state: a.state, labels: a.labels }));
}

beforeAll(async () => {
  requireCli('artifact', ['follow']);
  await ensureK8sTools();
  root = await tempDir('diginfractl-prometheus-e2e-');
  reg = await startRegistry();
  forwarder = new Forwarder(Number(reg.host.split(':')[1]));
  await forwarder.start();
  const client = pushClient();
  try {
    await pushRules(client, `${reg.host}/rules/e2e:1.0.0`, '1.0.0');
  } finally {
    await client.close();
  }
  const ref = `127.0.0.1:${forwarder.port}/rules/e2e:1.0.0`;
  agent = startAgent([ref, '--every', '2s', '--jitter', '0', '--plain-http', '--rulesfiles-dir', join(root, 'rules'), '--state-dir', join(root, 'state'), '--metrics-addr', '127.0.0.1:0', '--engine-version', '0.60.0'], await cliEnv());
  const agentPort = await agent.port();
  await waitFor('the agent is ready', async () => (await httpGet(agentPort, '/readyz')).status === 200, 30_000);

  // The chart's rules for a 2s interval, with `for` at 0s.
  const r = await helmTemplate({ set: ['prometheusRule.enabled=true', 'artifacts.follow.every=2s'] });
  expect(r.code, r.stderr).toBe(0);
  const rule = parseManifests(r.stdout).find((o) => o.kind === 'PrometheusRule')!;
  for (const group of rule.spec.groups) for (const x of group.rules) x.for = '0s';
  await writeFile(join(root, 'rules.yaml'), stringify({ groups: rule.spec.groups }));
  // The labels a ServiceMonitor would add, so the rules' namespace selector matches.
  await writeFile(join(root, 'prometheus.yml'), stringify({
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    rule_files: [join(root, 'rules.yaml')],
    scrape_configs: [{ job_name: 'diginfractl', static_configs: [{ targets: [`127.0.0.1:${agentPort}`], labels: { namespace: 'diginfra', pod: 'diginfractl-e2e' } }] }],
  }));
  promPort = await freePort();
  prometheus = spawn(PROMETHEUS, [`--config.file=${join(root, 'prometheus.yml')}`, `--storage.tsdb.path=${join(root, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  prometheus.on('error', (err) => (promLog += `spawn failed: ${err.message} (run scripts/bootstrap.sh)\n`));
  prometheus.stderr!.setEncoding('utf8').on('data', (d: string) => (promLog = (promLog + d).slice(-8_000)));
  await waitFor('Prometheus is ready', async () => (await httpGet(promPort, '/-/ready').catch(() => ({ status: 0 }))).status === 200, 30_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${promLog}`);
  });
}, 90_000);

afterAll(async () => {
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((ok) => prometheus!.once('exit', ok));
    prometheus.kill('SIGTERM');
    await exited;
  }
  await agent?.stop();
  await forwarder?.stop();
  await reg?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('DiginfraRulesStale with a real Prometheus and a running agent', () => {
  it('stays quiet while checks succeed, fires when the registry goes away, resolves when it is back', async () => {
    // A few scrapes and evaluations with the registry up: nothing fires.
    await waitFor('Prometheus scraped the agent', async () => {
      const r = await httpGet(promPort, '/api/v1/query?query=diginfractl_follow_last_success_timestamp_seconds');
      return JSON.parse(r.body).data?.result?.length > 0;
    }, 30_000);
    await sleep(6_000);
    expect((await alerts()).filter((a) => a.name === 'DiginfraRulesStale')).toEqual([]);

    await forwarder.stop();
    const firing = await waitFor('DiginfraRulesStale firing', async () => (await alerts()).find((a) => a.name === 'DiginfraRulesStale' && a.state === 'firing'), 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${promLog}`);
    });
    expect(firing.labels).toMatchObject({ namespace: 'diginfra', pod: 'diginfractl-e2e', ref: expect.stringContaining('/rules/e2e:1.0.0'), severity: 'warning' });

    await forwarder.start();
    await waitFor('DiginfraRulesStale resolved', async () => !(await alerts()).some((a) => a.name === 'DiginfraRulesStale'), 60_000);
  }, 150_000);
});
