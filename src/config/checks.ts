/**
 * Value checks shared by the config file, environment variables and flags. Each returns the problem
 * as a phrase ("must be ...") or undefined; the caller names the subject (file key, env var or flag).
 */
import { parseArtifactRef } from '../reference/index.js';
import { messageOf } from '../errors.js';
import { platformProblem } from '../platform/index.js';

const HOST_RE =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;
/** Index names: what `INDEX::name` accepts, and safe as a file name. */
export const INDEX_NAME_RE = /^[a-z0-9][a-z0-9._-]*$/i;
const TYPE_RE = /^[a-z][a-z0-9-]*$/;
const SEMVER_RE = /^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;
const DURATION_PART_RE = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go-style duration (`6h`, `1h30m`, `90s`, `500ms`) in milliseconds; undefined when it does not parse. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (s === '') return undefined;
  if (s === '0') return 0;
  DURATION_PART_RE.lastIndex = 0;
  let total = 0;
  let consumed = 0;
  let m: RegExpExecArray | null;
  while ((m = DURATION_PART_RE.exec(s)) !== null) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    consumed = DURATION_PART_RE.lastIndex;
  }
  return consumed === s.length ? total : undefined;
}

export function checkHost(value: string): string | undefined {
  return HOST_RE.test(value) ? undefined : `"${value}" is not a host[:port]`;
}

/** A repository path below a host: lower-case components of letters, digits and `._-`, as OCI names them. */
const REPOSITORY_PREFIX_RE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;

/** A `registry.allowed` pattern: `host[:port]`, or `host[:port]/repository-prefix` (whole path components). */
export function checkRegistryPattern(value: string): string | undefined {
  const v = value.trim().replace(/\/+$/, '');
  const slash = v.indexOf('/');
  const host = slash < 0 ? v : v.slice(0, slash);
  if (!HOST_RE.test(host)) return `"${value}" is not a host[:port] or host[:port]/repository-prefix`;
  if (slash >= 0 && !REPOSITORY_PREFIX_RE.test(v.slice(slash + 1))) return `"${value}": "${v.slice(slash + 1)}" is not a repository path (lower-case components separated by /)`;
  return undefined;
}

export function checkNonEmpty(value: string): string | undefined {
  return value.trim() === '' ? 'must not be empty' : undefined;
}

export function checkDuration(value: string): string | undefined {
  const ms = parseDuration(value);
  if (ms === undefined) return `"${value}" is not a duration; use a number with a unit, like 6h, 30m or 90s`;
  if (ms <= 0) return 'must be longer than 0';
  return undefined;
}

/** A duration, or `0` for "never". */
export function checkMaxAge(value: string): string | undefined {
  return value.trim() === '0' ? undefined : checkDuration(value);
}

export function checkCron(value: string): string | undefined {
  const s = value.trim();
  if (s.startsWith('@')) {
    return /^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$/.test(s) ? undefined : `"${value}" is not a cron macro (@hourly, @daily, @weekly, @monthly, @yearly)`;
  }
  const fields = s.split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) return `"${value}" must have 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first`;
  if (!fields.every((f) => /^[\d*/,\-?A-Za-z]+$/.test(f))) return `"${value}" has a field with characters other than digits, names, "*", "/", "," and "-"`;
  return undefined;
}

export function checkRef(value: string): string | undefined {
  try {
    parseArtifactRef(value);
    return undefined;
  } catch (err) {
    return messageOf(err);
  }
}

export function checkType(value: string): string | undefined {
  return TYPE_RE.test(value) ? undefined : `"${value}" is not an artifact type (rulesfile, plugin, asset, ...)`;
}

/** The grammar `--platform` and image index selection use (src/platform). */
export function checkPlatform(value: string): string | undefined {
  return platformProblem(value);
}

export function checkSemver(value: string): string | undefined {
  return SEMVER_RE.test(value) ? undefined : `"${value}" must be a version like 0.38.0`;
}

export function checkHttpUrl(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `"${value}" is not a URL`;
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? undefined : `"${value}" must be an http:// or https:// URL`;
}

export function checkListenAddr(value: string): string | undefined {
  const m = /^(.*):(\d{1,5})$/.exec(value);
  if (!m || Number(m[2]) > 65535) return `"${value}" must be [host]:port, like :9090 or 127.0.0.1:9090`;
  const host = m[1]!;
  return host === '' || HOST_RE.test(host) ? undefined : `"${value}" has an invalid host`;
}

export function checkIndexName(value: string): string | undefined {
  return INDEX_NAME_RE.test(value) ? undefined : `"${value}" must start with a letter or digit and hold only letters, digits, ".", "_" and "-"`;
}

/** https://, http://, gs://BUCKET/OBJECT, s3://BUCKET/KEY, file:// or a plain path; no credentials in the URL (they would be stored and printed). */
export function checkIndexUrl(value: string): string | undefined {
  if (value.trim() === '') return 'must not be empty';
  if (!/^[a-z][a-z0-9+.-]*:/i.test(value) || /^[a-z]:[\\/]/i.test(value)) return undefined; // a path
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `"${value}" is not a URL`;
  }
  // The bucket is (part of) the host signed requests go to: the providers' naming rules, no @ ? #.
  if (url.protocol === 'gs:') return /^gs:\/\/[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]\/.+/i.test(value) ? undefined : `"${value}" must be gs://BUCKET/OBJECT, BUCKET a valid bucket name`;
  if (url.protocol === 's3:') return /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/.+/i.test(value) ? undefined : `"${value}" must be s3://BUCKET/KEY, BUCKET a valid bucket name`;
  if (!['http:', 'https:', 'file:'].includes(url.protocol)) {
    return `"${value}" is not an https://, http://, gs://, s3:// or file:// URL, nor a local path`;
  }
  if (url.username || url.password) return 'must not hold credentials; use `index add --username U --password-stdin` instead';
  return undefined;
}
