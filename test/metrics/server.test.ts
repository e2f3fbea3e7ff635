import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { createFollowMetrics } from '../../src/metrics/follow-metrics.js';
import { parseListenAddr, startOpsServer } from '../../src/metrics/server.js';
import { metricValue } from '../follow/setup.js';

describe('ops server', () => {
  it('serves /metrics with the follow metrics and process metrics, /healthz, /readyz', async () => {
    const metrics = createFollowMetrics();
    let ready = false;
    const server = await startOpsServer('127.0.0.1:0', { registry: metrics.registry, healthy: () => ({ ok: true }), ready: () => (ready ? { ok: true } : { ok: false, detail: 'not installed yet: x' }) });
    try {
      const get = async (path: string, method: 'GET' | 'HEAD' | 'POST' = 'GET') => {
        const res = await request(`http://127.0.0.1:${server.port}${path}`, { method });
        return { status: res.statusCode, body: await res.body.text(), type: res.headers['content-type'] };
      };
      metrics.checks.inc({ ref: 'r', result: 'unchanged' });
      metrics.rejected.inc({ ref: 'r', reason: 'invalid_yaml' });
      metrics.onResponse({ registry: 'ghcr.io', method: 'HEAD', status: 200 });
      metrics.onResponse({ registry: 'ghcr.io', method: 'GET', status: 'error' });
      metrics.setInstalled('r', 'sha256:a', '1.0.0');
      metrics.setInstalled('r', 'sha256:b', '2.0.0');
      metrics.downloadBytes.inc(10);
      metrics.checkDuration.observe(0.02);
      const m = await get('/metrics');
      expect(m.status).toBe(200);
      expect(m.type).toContain('text/plain');
      expect(metricValue(m.body, 'diginfractl_follow_checks_total', { ref: 'r', result: 'unchanged' })).toBe(1);
      expect(metricValue(m.body, 'diginfractl_follow_rejected_total', { reason: 'invalid_yaml' })).toBe(1);
      expect(metricValue(m.body, 'diginfractl_registry_requests_total', { registry: 'ghcr.io', method: 'HEAD', code: '200' })).toBe(1);
      expect(metricValue(m.body, 'diginfractl_registry_requests_total', { code: 'error' })).toBe(1);
      expect(metricValue(m.body, 'diginfractl_artifact_info', { ref: 'r' })).toBe(1);
      expect(metricValue(m.body, 'diginfractl_artifact_info', { version: '2.0.0' })).toBe(1);
      expect(metricValue(m.body, 'diginfractl_download_bytes_total')).toBe(10);
      expect(metricValue(m.body, 'diginfractl_check_duration_seconds_count')).toBe(1);
      expect(m.body).toContain('# TYPE diginfractl_follow_updates_total counter');
      expect(m.body).toContain('# TYPE diginfractl_follow_last_success_timestamp_seconds gauge');
      expect(m.body).toContain('process_resident_memory_bytes');
      expect((await get('/healthz')).status).toBe(200);
      const nr = await get('/readyz');
      expect(nr).toMatchObject({ status: 503, body: 'not ok: not installed yet: x\n' });
      ready = true;
      expect((await get('/readyz')).status).toBe(200);
      expect((await get('/readyz', 'HEAD')).status).toBe(200);
      expect((await get('/nope')).status).toBe(404);
      expect((await get('/metrics', 'POST')).status).toBe(405);
      metrics.forget('r');
      expect(metricValue((await get('/metrics')).body, 'diginfractl_artifact_info', { ref: 'r' })).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('parses listen addresses and reports a busy port', async () => {
    expect(parseListenAddr('0.0.0.0:9376')).toEqual({ host: '0.0.0.0', port: 9376 });
    expect(parseListenAddr(':9376')).toEqual({ host: undefined, port: 9376 });
    expect(parseListenAddr('[::1]:9376')).toEqual({ host: '::1', port: 9376 });
    expect(() => parseListenAddr('9376')).toThrow(/HOST:PORT/);
    const metrics = createFollowMetrics({ defaultMetrics: false });
    const opts = { registry: metrics.registry, healthy: () => ({ ok: true }), ready: () => ({ ok: true }) };
    const a = await startOpsServer('127.0.0.1:0', opts);
    try {
      await expect(startOpsServer(`127.0.0.1:${a.port}`, opts)).rejects.toMatchObject({ code: 'USAGE', message: expect.stringContaining('EADDRINUSE') });
    } finally {
      await a.close();
    }
  });
});
