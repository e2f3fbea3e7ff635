/**
 * The chart's PrometheusRule (prometheusRule.enabled): a valid prometheus-operator object whose alerts
 * fire and resolve when they should, under `promtool test rules` (Debian package `prometheus`) over
 * made-up series; that names only metrics a running agent exports (or kube-state-metrics'); and whose
 * every alert has a runbook section in docs/kubernetes.md.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ensureK8sTools, REPO_ROOT } from '../helpers/helm.js';
import { tempDir } from '../helpers/fs.js';
import { KUBE_STATE_METRICS, metricNames, promtool, scrapeRunningAgent } from './agent-metrics.js';
import { helmTemplate, parseManifests, validateManifest, type K8sObject } from './support.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are untyped YAML */
type Labels = Record<string, string>;
interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Labels;
  annotations: Labels;
}

const NS = 'diginfra';
const ALERTS = ['DiginfraRulesStale', 'DiginfraRulesUpdateRefused', 'DiginfraRegistryAuthFailing', 'DiginfraRulesAgentNotReady'];

async function renderRule(set: string[] = []): Promise<{ rule: K8sObject; rules: Rule[] }> {
  const r = await helmTemplate({ set: ['prometheusRule.enabled=true', 'prometheusRule.alertLabels.team=security', ...set] });
  expect(r.code, r.stderr).toBe(0);
  const rule = parseManifests(r.stdout).find((o) => o.kind === 'PrometheusRule')!;
  return { rule, rules: rule.spec.groups.flatMap((g: any) => g.rules) };
}

/** An alert as promtool reports it: its labels plus the rule's, annotations with $labels filled in. */
function expected(rule: Rule, labels: Labels): { exp_labels: Labels; exp_annotations: Labels } {
  const all = { ...labels, ...rule.labels };
  const fill = (t: string) => t.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, k: string) => all[k] ?? '');
  return { exp_labels: all, exp_annotations: Object.fromEntries(Object.entries(rule.annotations).map(([k, v]) => [k, fill(v)])) };
}

interface Scenario {
  name: string;
  alert: string;
  series: Record<string, string>;
  /** At each time, the label sets (beyond the rule's own labels) of the alerts that fire. */
  at: Record<string, Labels[]>;
}

/** Runs one scenario with `promtool test rules` against the rendered rules. */
async function runScenario(rules: Rule[], s: Scenario): Promise<void> {
  const dir = await tempDir('diginfractl-promtool-');
  await writeFile(join(dir, 'rules.yaml'), stringify({ groups: [{ name: 'diginfractl', rules }] }));
  const rule = rules.find((r) => r.alert === s.alert)!;
  const test = {
    rule_files: ['rules.yaml'],
    evaluation_interval: '1m',
    tests: [{
      interval: '1m',
      input_series: Object.entries(s.series).map(([series, values]) => ({ series, values })),
      alert_rule_test: Object.entries(s.at).map(([eval_time, firing]) => ({ eval_time, alertname: s.alert, exp_alerts: firing.map((l) => expected(rule, l)) })),
    }],
  };
  await writeFile(join(dir, 'test.yaml'), stringify(test));
  const r = await promtool(['test', 'rules', 'test.yaml'], dir);
  expect(r.code, `${s.name}:\n${r.stdout}${r.stderr}`).toBe(0);
}

const ref = 'ghcr.io/diginfra/rules/diginfra-rules:3';
const at = (pod: string, extra: Labels = {}) => `{namespace="${NS}", pod="${pod}", ref="${ref}"${Object.entries(extra).map(([k, v]) => `, ${k}="${v}"`).join('')}}`;
const who = (pod: string, extra: Labels = {}): Labels => ({ namespace: NS, pod, ref, ...extra });

/** The chart's defaults: every 6h, stale after 2 intervals (12h). Samples every minute. */
const DEFAULT_SCENARIOS: Scenario[] = [
  {
    name: 'a node whose checks stopped succeeding 12h ago fires after 30m more; a healthy one never does',
    alert: 'DiginfraRulesStale',
    series: {
      // Last success at 0, then none (the gauge keeps its value while the agent runs).
      [`diginfractl_follow_last_success_timestamp_seconds${at('p1')}`]: '0x1000',
      // A success every 6h.
      [`diginfractl_follow_last_success_timestamp_seconds${at('p2')}`]: '0x359 21600x359 43200x359',
    },
    at: { '6h': [], '12h10m': [], '12h45m': [who('p1')], '17h': [who('p1')] },
  },
  {
    name: 'the last success survives a restart of the agent: registry down from 7h, restart at 8h, stale at 18h',
    alert: 'DiginfraRulesStale',
    series: {
      // Successes at 0 and 6h; the restarted agent has no gauge until its first success.
      [`diginfractl_follow_last_success_timestamp_seconds${at('p1')}`]: '0x359 21600x119',
      [`diginfractl_follow_checks_total${at('p1', { result: 'unchanged' })}`]: '0x359 1x119',
      // Failures from 7h; the counter starts again at the restart.
      [`diginfractl_follow_checks_total${at('p1', { result: 'error' })}`]: '_x419 1+1x59 1+1x700',
    },
    at: { '9h': [], '17h': [], '18h10m': [], '18h45m': [who('p1')] },
  },
  {
    name: 'a refused signature or requirement fires at once and for 12h; a rollback (a choice) never does',
    alert: 'DiginfraRulesUpdateRefused',
    series: {
      // A refusal is counted once: the series appears with 1 and stays.
      [`diginfractl_follow_rejected_total${at('p1', { reason: 'signature' })}`]: '_x59 1x1000',
      [`diginfractl_follow_rejected_total${at('p2', { reason: 'rollback' })}`]: '_x59 1x1000',
      // A refusal at start-up, and a second one at 1h on the same counter.
      [`diginfractl_follow_rejected_total${at('p3', { reason: 'requirements' })}`]: '1x59 2x1000',
    },
    at: {
      '30m': [who('p3', { reason: 'requirements' })],
      '1h5m': [who('p1', { reason: 'signature' }), who('p3', { reason: 'requirements' })],
      '12h50m': [who('p1', { reason: 'signature' }), who('p3', { reason: 'requirements' })],
      '13h30m': [],
    },
  },
  {
    name: 'a registry that answers only 401 for 15m fires; one that answers 401 then 200 (a token challenge) does not',
    alert: 'DiginfraRegistryAuthFailing',
    series: {
      [`diginfractl_registry_requests_total{namespace="${NS}", pod="p1", registry="ghcr.io", method="HEAD", code="401"}`]: '0+3x120',
      [`diginfractl_registry_requests_total{namespace="${NS}", pod="p2", registry="ghcr.io", method="HEAD", code="401"}`]: '0+3x120',
      [`diginfractl_registry_requests_total{namespace="${NS}", pod="p2", registry="ghcr.io", method="HEAD", code="200"}`]: '0+3x120',
    },
    at: { '10m': [], '30m': [{ namespace: NS, pod: 'p1', registry: 'ghcr.io' }] },
  },
  {
    name: 'a pod of the DaemonSet not ready for 15m fires; a ready one, or another DaemonSet\'s, does not',
    alert: 'DiginfraRulesAgentNotReady',
    series: {
      [`kube_pod_status_ready{namespace="${NS}", pod="diginfractl-a", condition="true", uid="a"}`]: '0x60',
      [`kube_pod_owner{namespace="${NS}", pod="diginfractl-a", owner_kind="DaemonSet", owner_name="diginfractl", uid="a"}`]: '1x60',
      [`kube_pod_status_ready{namespace="${NS}", pod="diginfractl-b", condition="true", uid="b"}`]: '1x60',
      [`kube_pod_owner{namespace="${NS}", pod="diginfractl-b", owner_kind="DaemonSet", owner_name="diginfractl", uid="b"}`]: '1x60',
      [`kube_pod_status_ready{namespace="${NS}", pod="other-c", condition="true", uid="c"}`]: '0x60',
      [`kube_pod_owner{namespace="${NS}", pod="other-c", owner_kind="DaemonSet", owner_name="other", uid="c"}`]: '1x60',
    },
    at: { '10m': [], '20m': [{ namespace: NS, pod: 'diginfractl-a' }] },
  },
];

beforeAll(() => ensureK8sTools(), 120_000);

describe('the PrometheusRule with default values', () => {
  let rule: K8sObject;
  let rules: Rule[];

  beforeAll(async () => {
    ({ rule, rules } = await renderRule());
  });

  it('is a valid PrometheusRule with the four alerts, each labelled and linked to its runbook', async () => {
    validateManifest(rule);
    expect(rules.map((r) => r.alert)).toEqual(ALERTS);
    for (const r of rules) {
      expect(r.labels).toEqual({ severity: 'warning', team: 'security' });
      expect(r.annotations.runbook_url).toBe(`https://github.com/diginfra/diginfractl/blob/main/docs/kubernetes.md#${r.alert.toLowerCase()}`);
    }
    // The threshold is written as the interval it comes from: 2 intervals of 6h.
    expect(rules[0]!.expr.replace(/\s+/g, ' ')).toContain('> 2 * 6 * 3600');
    const dir = await tempDir('diginfractl-promtool-');
    await writeFile(join(dir, 'rules.yaml'), stringify({ groups: rule.spec.groups }));
    const r = await promtool(['check', 'rules', join(dir, 'rules.yaml')]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('SUCCESS: 4 rules found');
  });

  it.each(DEFAULT_SCENARIOS)('$alert: $name', async (s) => {
    await runScenario(rules, s);
  });

  it('names only metrics a running agent exports, or kube-state-metrics\' pod series', async () => {
    const exported = await scrapeRunningAgent();
    const used = new Set(rules.flatMap((r) => metricNames(r.expr)));
    expect(used.size).toBeGreaterThanOrEqual(6);
    for (const name of used) expect(exported.has(name) || KUBE_STATE_METRICS.has(name), `${name} is not exported by the agent`).toBe(true);
  }, 60_000);

  it('is the PrometheusRule docs/kubernetes.md shows (for users without the chart)', async () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs', 'kubernetes.md'), 'utf8');
    const block = /```yaml\n(apiVersion: monitoring\.coreos\.com\/v1\nkind: PrometheusRule[\s\S]*?)```/.exec(doc)!;
    const [shown] = parseManifests(block[1]!);
    const { rule: plain } = await renderRule(['prometheusRule.alertLabels=null']);
    expect(shown!.spec).toEqual(plain.spec);
  });

  it('has a runbook section in docs/kubernetes.md for each alert', () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs', 'kubernetes.md'), 'utf8');
    for (const alert of ALERTS) {
      const section = new RegExp(`^#### ${alert}\\n([\\s\\S]*?)(?=^#)`, 'm').exec(doc);
      expect(section, `docs/kubernetes.md has "#### ${alert}"`).not.toBeNull();
      expect(section![1]!.trim().length, `the ${alert} runbook says what to do`).toBeGreaterThan(200);
    }
  });
});

describe('the PrometheusRule with other values', () => {
  it('takes the staleness threshold from artifacts.follow.every x staleIntervals, or from staleAfter', async () => {
    const { rules: hourly } = await renderRule(['artifacts.follow.every=1h30m', 'prometheusRule.staleIntervals=3']);
    expect(hourly[0]!.expr).toContain('> 3 * 1 * 3600 + 30 * 60');
    expect(hourly[0]!.expr).toContain('[16200s]');
    const { rules: fixed } = await renderRule(['artifacts.follow.cron=0 */4 * * *', 'prometheusRule.staleAfter=48h']);
    expect(fixed[0]!.expr).toContain('> 48 * 3600');
    expect(fixed[0]!.annotations.summary).toContain('for 48h');
  });

  it('refuses a cron schedule without staleAfter (there is no fixed interval to count)', async () => {
    const r = await helmTemplate({ set: ['prometheusRule.enabled=true', 'artifacts.follow.cron=0 */4 * * *'] });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('artifacts.follow.cron has no fixed interval: set prometheusRule.staleAfter');
  });

  it('in the engine\'s pod (embedding), NotReady selects the pods that run our follow container', async () => {
    const { rule, rules } = await renderRule(['embedding.enabled=true', 'artifacts.follow.nativeSidecar=true']);
    validateManifest(rule);
    await runScenario(rules, {
      name: 'embedded follower',
      alert: 'DiginfraRulesAgentNotReady',
      series: {
        [`kube_pod_status_ready{namespace="${NS}", pod="engine-a", condition="true"}`]: '0x60',
        [`kube_pod_init_container_info{namespace="${NS}", pod="engine-a", container="diginfractl-follow"}`]: '1x60',
        [`kube_pod_status_ready{namespace="${NS}", pod="web-b", condition="true"}`]: '0x60',
        [`kube_pod_container_info{namespace="${NS}", pod="web-b", container="nginx"}`]: '1x60',
      },
      at: { '20m': [{ namespace: NS, pod: 'engine-a' }] },
    });
  });

  it('without follow, only NotReady remains (install alone exports no metrics)', async () => {
    const { rules } = await renderRule(['artifacts.follow.enabled=false', 'extraContainers[0].name=engine', 'extraContainers[0].image=docker.io/diginfra/diginfra:0.40.0']);
    expect(rules.map((r) => r.alert)).toEqual(['DiginfraRulesAgentNotReady']);
  });
});
