/**
 * The shapes the follow modules share: the settings a follower runs with, and what one check of a
 * ref comes to.
 */
import type { CheckResult, RejectReason } from '../metrics/index.js';
import type { Platform } from '../registry/index.js';
import type { Schedule } from './schedule.js';

/** Everything a follower needs to know; built from the `follow` config section and the flags. */
export interface FollowSettings {
  /** Normalized refs (see normalizeRef), no duplicates. */
  refs: string[];
  schedule: Schedule;
  jitter: number;
  rulesfilesDir: string;
  pluginsDir: string;
  /** Directories of the other types, by type (follow.dirs), absolute. */
  dirs: Record<string, string>;
  stateDir: string;
  /** Lock files of `artifact install` (what it installed): dependencies are checked against them. */
  installLockfiles: string[];
  /** Blob cache of `artifact install` (read only): layers found there are not downloaded again. */
  cacheDir?: string;
  /** Empty: every type follow can place (rulesfile, plugin, and the types of `dirs`). */
  allowedTypes: string[];
  engineVersion?: string;
  engineVersionsUrl?: string;
  /**
   * With a versions URL: the version to check requirements against while the URL cannot be read (the
   * engine has not started yet, as in its own pod), and where it comes from (follow.engineVersion,
   * install.engineVersion). Without one, such a check fails.
   */
  engineVersionFallback?: { version: string; from: string };
  /** TLS for the versions URL's host (registry.caFiles / registry.insecureSkipTlsVerify). */
  engineVersionsTls?: { caFile?: string; insecure?: boolean };
  validateCmd?: string;
  platform: Platform;
  /**
   * `on`: a new version is verified under every signature policy that applies to it (its index
   * entries', else verifyKeys); `off` (`--no-verify`, `verify: false`): nothing is verified, and each
   * version installed so is warned about and counted. Unset: verifyKeys alone, as a library caller sets them.
   */
  verification?: 'on' | 'off';
  /** A Sigstore trusted_root.json (`--trusted-root`, registry.trustedRoot) for keyless policies. */
  trustedRoot?: string;
  /** PEM public keys: a new version must carry a cosign signature one of them verifies. */
  verifyKeys?: string[];
  /** Fingerprints of those keys' contents (set by whoever reads them): a rotated key is a change. */
  verifyKeyFingerprints?: string[];
}

export interface CheckOutcome {
  ref: string;
  result: CheckResult;
  digest?: string;
  version?: string;
  reason?: RejectReason;
  message?: string;
  error?: unknown;
  /** From a 429: when the registry allows the next request. */
  retryAfterMs?: number;
  /**
   * The registry still serves the digest `artifact rollback` moved away from, and the version rolled
   * back to is in place: held on purpose, not a failure (`result` is `rejected`, `reason` `rollback`).
   */
  pinned?: boolean;
}

/** A check that should make `--once` exit 1: an error, or a new version refused (not a rollback hold). */
export function isFailure(o: CheckOutcome): boolean {
  return o.result === 'error' || (o.result === 'rejected' && o.pinned !== true);
}
