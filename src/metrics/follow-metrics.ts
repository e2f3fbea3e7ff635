/**
 * The Prometheus metrics of `artifact follow`, on a registry of their own (never prom-client's global
 * one, so tests and library callers can create several). docs/follow.md lists them.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Outcome of one check of one ref: the `result` label of diginfractl_follow_checks_total. */
export type CheckResult = 'unchanged' | 'updated' | 'rejected' | 'error';

/** Why an update was not applied: the `reason` label of diginfractl_follow_rejected_total. */
export type RejectReason =
  | 'invalid_yaml' // the staged rules file does not parse as YAML
  | 'not_a_list' // it parses, but is not a YAML list
  | 'validate_cmd' // --validate-cmd exited non-zero (or could not run)
  | 'requirements' // e.g. engine_version not met by the running engine
  | 'dependencies' // a dependency (a plugin) is not installed in a version it accepts
  | 'signature' // verification keys are set and no cosign signature of the new digest verifies
  | 'type_not_allowed' // the artifact type is not in --allowed-types
  | 'rollback'; // the digest was rolled back by `artifact rollback`

export interface FollowMetrics {
  readonly registry: Registry;
  readonly checks: Counter<'ref' | 'result'>;
  readonly updates: Counter<'ref'>;
  readonly rejected: Counter<'ref' | 'reason'>;
  readonly lastSuccess: Gauge<'ref'>;
  readonly artifactInfo: Gauge<'ref' | 'digest' | 'version'>;
  readonly registryRequests: Counter<'registry' | 'method' | 'code' | 'source'>;
  readonly downloadBytes: Counter;
  readonly checkDuration: Histogram;
  /** For the transport's `onResponse` hook: counts every HTTP exchange with a registry. */
  onResponse(info: { registry: string; method: string; status: number | 'error'; source?: string }): void;
  /** Sets diginfractl_artifact_info for `ref` to this digest/version (dropping the previous series). */
  setInstalled(ref: string, digest: string, version: string): void;
  /** Drops every series of a ref that is no longer followed. */
  forget(ref: string): void;
}

export interface FollowMetricsOptions {
  /** Default process metrics (CPU, RSS, fds, event loop lag); on by default. */
  defaultMetrics?: boolean;
}

export function createFollowMetrics(opts: FollowMetricsOptions = {}): FollowMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const checks = new Counter({
    name: 'diginfractl_follow_checks_total',
    help: 'Checks of followed refs, by result (unchanged, updated, rejected, error)',
    labelNames: ['ref', 'result'] as const,
    registers,
  });
  const updates = new Counter({
    name: 'diginfractl_follow_updates_total',
    help: 'New versions swapped into place',
    labelNames: ['ref'] as const,
    registers,
  });
  const rejected = new Counter({
    name: 'diginfractl_follow_rejected_total',
    help: 'New versions not applied, by reason; the current files were kept',
    labelNames: ['ref', 'reason'] as const,
    registers,
  });
  const lastSuccess = new Gauge({
    name: 'diginfractl_follow_last_success_timestamp_seconds',
    help: 'Unix time of the last check of the ref that did not fail',
    labelNames: ['ref'] as const,
    registers,
  });
  const artifactInfo = new Gauge({
    name: 'diginfractl_artifact_info',
    help: 'The installed version of each followed ref (value 1)',
    labelNames: ['ref', 'digest', 'version'] as const,
    registers,
  });
  const registryRequests = new Counter({
    name: 'diginfractl_registry_requests_total',
    help: 'HTTP exchanges with registries, by registry, method, status code ("error": no answer) and source (the registry itself, or the mirror that was asked)',
    labelNames: ['registry', 'method', 'code', 'source'] as const,
    registers,
  });
  const downloadBytes = new Counter({
    name: 'diginfractl_download_bytes_total',
    help: 'Bytes of artifact layers downloaded',
    registers,
  });
  const checkDuration = new Histogram({
    name: 'diginfractl_check_duration_seconds',
    help: 'Time one check of one ref takes, download and swap included',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  const installed = new Map<string, { digest: string; version: string }>();
  return {
    registry,
    checks,
    updates,
    rejected,
    lastSuccess,
    artifactInfo,
    registryRequests,
    downloadBytes,
    checkDuration,
    onResponse(info) {
      registryRequests.inc({ registry: info.registry, method: info.method, code: String(info.status), source: info.source ?? info.registry });
    },
    setInstalled(ref, digest, version) {
      const prev = installed.get(ref);
      if (prev && (prev.digest !== digest || prev.version !== version)) artifactInfo.remove({ ref, ...prev });
      artifactInfo.set({ ref, digest, version }, 1);
      installed.set(ref, { digest, version });
    },
    forget(ref) {
      const prev = installed.get(ref);
      if (prev) artifactInfo.remove({ ref, ...prev });
      installed.delete(ref);
      lastSuccess.remove({ ref });
    },
  };
}
