/**
 * What the alerts and the dashboard may name: the metrics a running agent exports (the built CLI's
 * `artifact follow` against a real registry, scraped), and the metric names a PromQL expression uses.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { stringify } from 'yaml';
import { requireCli, cliEnv } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { pushClient, pushRules } from '../helpers/push.js';
import { startRegistry } from '../helpers/registry.js';
import { httpGet, scrape, startAgent, waitFor } from '../follow/setup.js';

/** Series names of each metric type in the Prometheus text format. */
const SERIES_OF: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['', '_sum', '_count'] };

/** Every series name in a /metrics page, from its `# TYPE` lines (histograms: _bucket, _sum, _count). */
export function seriesNames(page: string): Set<string> {
  const names = new Set<string>();
  for (const m of page.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    for (const suffix of SERIES_OF[m[2]!] ?? ['']) names.add(`${m[1]}${suffix}`);
  }
  return names;
}

/**
 * Starts `artifact follow` on one rules file in a fresh registry, waits until it is ready, and returns
 * the series names of its /metrics page. Every metric the agent registers is listed there (prom-client
 * prints HELP and TYPE for a metric before its first sample).
 */
export async function scrapeRunningAgent(): Promise<Set<string>> {
  requireCli('artifact', ['follow']);
  const reg = await startRegistry();
  const root = await tempDir('diginfractl-agent-metrics-');
  const client = pushClient();
  const ref = `${reg.host}/rules/agent-metrics:1`;
  try {
    await pushRules(client, ref, '1.0.0');
    const agent = startAgent(
      [ref, '--every', '1h', '--jitter', '0', '--plain-http', '--rulesfiles-dir', join(root, 'rules'), '--state-dir', join(root, 'state'), '--metrics-addr', '127.0.0.1:0', '--engine-version', '0.60.0'],
      await cliEnv(),
    );
    try {
      const port = await agent.port();
      await waitFor('/readyz 200', async () => (await httpGet(port, '/readyz')).status === 200, 30_000);
      return seriesNames(await scrape(port));
    } finally {
      await agent.stop();
    }
  } finally {
    await client.close();
    await reg.stop();
  }
}

/** kube-state-metrics series the not-ready alert joins on (the agent cannot report that it is not scraped). */
export const KUBE_STATE_METRICS = new Set(['kube_pod_status_ready', 'kube_pod_owner', 'kube_pod_container_info', 'kube_pod_init_container_info']);

const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan']);

/**
 * The metric names in a PromQL expression: identifiers that are not functions, keywords, label names
 * (matchers, grouping lists) or parts of strings, durations and numbers. Grafana variables count as
 * strings or durations, where they stand.
 */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^{}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\w+/g, ' ');
  const names: string[] = [];
  for (const m of bare.matchAll(/(?<![\w:.])[A-Za-z_:][\w:]*/g)) {
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    if (bare.slice(m.index + m[0].length).trimStart().startsWith('(')) continue;
    names.push(m[0]);
  }
  return names;
}

/** Checks PromQL expressions with `promtool check rules` (each as a recording rule). */
export async function checkPromql(exprs: string[]): Promise<void> {
  const dir = await tempDir('diginfractl-promql-');
  const file = join(dir, 'rules.yaml');
  await writeFile(file, stringify({ groups: [{ name: 'check', rules: exprs.map((expr, i) => ({ record: `check:expr_${i}`, expr })) }] }));
  const r = await promtool(['check', 'rules', file]);
  expect(r.code, r.stdout + r.stderr).toBe(0);
}

const PROMTOOL = '/usr/bin/promtool';

/** Runs promtool (Debian package `prometheus`, installed by scripts/bootstrap.sh); never throws on exit codes. */
export async function promtool(args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(PROMTOOL, args, { ...(cwd && { cwd }), timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { code: number | string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`${PROMTOOL} is missing: run scripts/bootstrap.sh (apt-get install prometheus)`);
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
