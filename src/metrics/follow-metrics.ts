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
  | 'signature' // a signature policy applies (an index entry's, or verification keys) and no signature of the new digest satisfies it
  | 'type_not_allowed' // the artifact type is not in --allowed-types
  | 'rollback'; // the digest was rolled back by `artifact rollback`

export interface FollowMetrics {
  readonly registry: Registry;
  readonly checks: Counter<'ref' | 'result'>;
  readonly updates: Counter<'ref'>;
  readonly rejected: Counter<'ref' | 'reason'>;
  /** Versions installed with signature verification turned off (`--no-verify`, `verify: false`). */
  readonly unverifiedInstalls: Counter<'ref'>;
  readonly lastSuccess: Gauge<'ref'>;
  /** Checks of the ref that failed in a row since its last check that did not (0 after one that did not). */
  readonly consecutiveFailures: Gauge<'ref'>;
  readonly artifactInfo: Gauge<'ref' | 'digest' | 'version'>;
  readonly registryRequests: Counter<'registry' | 'method' | 'code' | 'source'>;
  /** Layer bytes downloaded, by the followed ref they were downloaded for. */
  readonly downloadBytes: Counter<'ref'>;
  readonly checkDuration: Histogram;
  /** For the transport's `onResponse` hook: counts every HTTP exchange with a registry. */
  onResponse(info: RegistryExchange): void;
  /** After each check of `ref`: the failure streak and, for a check that did not fail, the last success time. */
  recordCheck(ref: string, result: CheckResult, nowMs?: number): void;
  /** Sets diginfractl_artifact_info for `ref` to this digest/version (dropping the previous series). */
  setInstalled(ref: string, digest: string, version: string): void;
  /** Drops the gauges of a ref that is no longer followed (its counters stay, as counters do). */
  forget(ref: string): void;
}

/** One HTTP exchange with a registry, as the transport reports it. */
export interface RegistryExchange {
  registry: string;
  method: string;
  /** The status code, or `error` when no answer came. */
  status: number | 'error';
  /** The host of the registry's mirror the request went to (registry.mirrors); `origin` (the default): the registry itself. */
  source?: string;
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
  const unverifiedInstalls = new Counter({
    name: 'diginfractl_unverified_installs_total',
    help: 'New versions installed without verifying their signatures (--no-verify, verify: false)',
    labelNames: ['ref'] as const,
    registers,
  });
  const lastSuccess = new Gauge({
    name: 'diginfractl_follow_last_success_timestamp_seconds',
    help: 'Unix time of the last check of the ref that did not fail',
    labelNames: ['ref'] as const,
    registers,
  });
  // A gauge, not a counter: it goes back to 0, and `> N` is the alert (see docs/kubernetes.md).
  const consecutiveFailures = new Gauge({
    name: 'diginfractl_follow_consecutive_failures',
    help: 'Checks of the ref that failed in a row (0 once a check does not fail)',
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
    help: 'HTTP exchanges with registries, by registry, method, status code ("error": no answer) and source ("origin", or the host of the mirror that was asked)',
    labelNames: ['registry', 'method', 'code', 'source'] as const,
    registers,
  });
  const downloadBytes = new Counter({
    name: 'diginfractl_download_bytes_total',
    help: 'Bytes of artifact layers downloaded, by followed ref',
    labelNames: ['ref'] as const,
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
    unverifiedInstalls,
    lastSuccess,
    consecutiveFailures,
    artifactInfo,
    registryRequests,
    downloadBytes,
    checkDuration,
    onResponse(info) {
      registryRequests.inc({ registry: info.registry, method: info.method, code: String(info.status), source: info.source ?? 'origin' });
    },
    recordCheck(ref, result, nowMs = Date.now()) {
      if (result === 'error') {
        consecutiveFailures.inc({ ref });
        return;
      }
      consecutiveFailures.set({ ref }, 0);
      lastSuccess.set({ ref }, nowMs / 1000);
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
      consecutiveFailures.remove({ ref });
    },
  };
}
