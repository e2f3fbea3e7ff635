/**
 * The Grafana dashboard the chart ships (grafanaDashboard.enabled): a ConfigMap the Grafana sidecar
 * picks up, holding charts/diginfractl/dashboards/diginfractl.json, every query of which parses as PromQL
 * (`promtool`) and names only metrics a running agent exports.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CHART_DIR, ensureK8sTools } from '../helpers/helm.js';
import { checkPromql, metricNames, scrapeRunningAgent } from './agent-metrics.js';
import { helmTemplate, parseManifests, validateManifest } from './support.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- the dashboard is untyped JSON */
const FILE = join(CHART_DIR, 'dashboards', 'diginfractl.json');
const dashboard = JSON.parse(readFileSync(FILE, 'utf8'));

/** Grafana's built-in variables, as Grafana substitutes them before the query reaches Prometheus. */
function asPromql(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m').replace(/\$\{?(\w+)\}?/g, '.*');
}

/** Every query: panel targets, and the metric of each `label_values(metric, label)` variable. */
const targets: { where: string; expr: string }[] = dashboard.panels.flatMap((p: any) => p.targets.map((t: any) => ({ where: `panel "${p.title}"`, expr: t.expr })));
const variableMetrics: { where: string; expr: string }[] = dashboard.templating.list
  .filter((v: any) => v.type === 'query')
  .map((v: any) => ({ where: `variable ${v.name}`, expr: /^label_values\((.*),\s*\w+\)$/.exec(v.query.query)![1]! }));

beforeAll(() => ensureK8sTools(), 120_000);

describe('the Grafana dashboard', () => {
  it('is off by default, and a ConfigMap with the sidecar label holding the JSON file when on', async () => {
    expect(parseManifests((await helmTemplate()).stdout).some((o) => o.metadata.name.endsWith('-dashboard'))).toBe(false);
    const r = await helmTemplate({ set: ['grafanaDashboard.enabled=true', 'grafanaDashboard.folder=Security', 'grafanaDashboard.namespace=monitoring'] });
    expect(r.code, r.stderr).toBe(0);
    const cm = parseManifests(r.stdout).find((o) => o.metadata.name === 'diginfractl-dashboard')!;
    validateManifest(cm);
    expect(cm.metadata.namespace).toBe('monitoring');
    expect(cm.metadata.labels.grafana_dashboard).toBe('1');
    expect(cm.metadata.annotations).toEqual({ grafana_folder: 'Security' });
    expect(JSON.parse(cm.data['diginfractl.json'])).toEqual(dashboard);
  });

  it('has panels with unique ids on a 24-column grid, each with at least one query', () => {
    const ids = dashboard.panels.map((p: any) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      expect(p.targets.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets) expect(t.datasource.uid, p.title).toBe('${datasource}');
    }
    expect(dashboard.uid).toBe('diginfractl');
  });

  it('has queries that parse as PromQL', async () => {
    await checkPromql([...targets, ...variableMetrics].map((t) => asPromql(t.expr)));
  });

  it('names in every query only metrics a running agent exports', async () => {
    const exported = await scrapeRunningAgent();
    const used = new Map<string, string>();
    for (const t of [...targets, ...variableMetrics]) for (const name of metricNames(t.expr)) used.set(name, t.where);
    expect(used.size).toBeGreaterThanOrEqual(8);
    for (const [name, where] of used) expect(exported.has(name), `${where} names ${name}, which the agent does not export`).toBe(true);
    // Every metric of the agent's own is on the dashboard.
    for (const name of exported) if (name.startsWith('diginfractl_') && !name.endsWith('_sum') && !name.endsWith('_count')) expect(used.has(name) || used.has(`${name}_bucket`), `${name} is not on the dashboard`).toBe(true);
  }, 60_000);
});
