/**
 * docs/kubernetes.md stays true to the chart: the metrics it explains, the port, and an alert rule that is
 * a valid PrometheusRule whose threshold is two of the chart's default intervals.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { CHART_DIR, REPO_ROOT } from '../helpers/helm.js';
import { parseManifests, unknownFields } from './support.js';

const doc = readFileSync(join(REPO_ROOT, 'docs', 'kubernetes.md'), 'utf8');
const values = parseYaml(readFileSync(join(CHART_DIR, 'values.yaml'), 'utf8'));

const METRICS = [
  'diginfractl_follow_checks_total',
  'diginfractl_follow_updates_total',
  'diginfractl_follow_rejected_total',
  'diginfractl_follow_last_success_timestamp_seconds',
  'diginfractl_artifact_info',
  'diginfractl_registry_requests_total',
  'diginfractl_download_bytes_total',
  'diginfractl_check_duration_seconds',
];

describe('docs/kubernetes.md', () => {
  it.each(METRICS)('explains %s', (name) => {
    expect(doc).toMatch(new RegExp(`\\| \`${name}\` \\|`));
  });

  it('documents the metrics port the chart and the image use', () => {
    expect(values.metrics.port).toBe(9376);
    expect(doc).toContain(':9376/metrics');
    expect(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8')).toMatch(/^EXPOSE 9376$/m);
  });

  it('covers Helm install, credentials, CA, mirrors, upgrades, and the plugin restart', () => {
    for (const heading of ['## Install with Helm', '## Private registry credentials', '## A registry with its own CA', '## Air-gapped clusters: a mirror', '## Upgrading rules', '## Metrics']) {
      expect(doc).toContain(heading);
    }
    for (const key of ['registry.auth.existingSecret', 'registry.mirrors', 'registry.caSecret']) {
      expect(doc.includes(key) || doc.includes(key.split('.').at(-1)!)).toBe(true);
    }
    expect(doc).toMatch(/plugin is loaded only when the engine restarts/);
  });

  it('documents the image and scripts/image.sh with options the script takes', () => {
    expect(doc).toContain('## The container image');
    const script = readFileSync(join(REPO_ROOT, 'scripts/image.sh'), 'utf8');
    const options = script.slice(script.indexOf('while (($# > 0))'), script.indexOf('esac'));
    const shown = doc.split('\n').filter((l) => l.includes('scripts/image.sh')).flatMap((l) => l.match(/ --[a-z][\w-]*/g) ?? []);
    expect(shown.length).toBeGreaterThan(0);
    for (const opt of shown) expect(options, `scripts/image.sh takes ${opt.trim()}`).toContain(`${opt.trim()}`);
  });

  it('gives a valid PrometheusRule alerting when rules were not updated in 2 default intervals', () => {
    const block = /```yaml\n(apiVersion: monitoring\.coreos\.com\/v1\nkind: PrometheusRule[\s\S]*?)```/.exec(doc);
    expect(block).not.toBeNull();
    const [rule] = parseManifests(block![1]!);
    new PrometheusRule(rule as never).validate();
    expect(unknownFields(rule!, PrometheusRule)).toEqual([]);
    const stale = rule!.spec.groups[0].rules.find((r: { alert?: string }) => r.alert === 'DiginfraRulesStale');
    expect(stale.expr).toContain('diginfractl_follow_last_success_timestamp_seconds');
    const every = /^(\d+)h$/.exec(values.artifacts.follow.every);
    expect(every, 'default interval in hours').not.toBeNull();
    expect(stale.expr.replace(/\s+/g, ' ')).toContain(`> 2 * ${every![1]} * 3600`);
  });
});
