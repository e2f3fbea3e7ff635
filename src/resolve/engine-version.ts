/**
 * Engine versions as engines report them, read into one semver. Pure: install (`--engine-version`)
 * and follow (its versions URL) both read them here.
 *
 * Falco's `/versions` endpoint answers, for example,
 * `{"engine_version":"31","engine_version_semver":"0.31.0","falco_version":"0.37.1",...}`:
 * `engine_version` is the legacy form, the bare minor number that engines before 0.35 reported as
 * their whole engine version; `engine_version_semver` is the version rules files' `required_engine_version`
 * and artifacts' `engine_version` requirements are compared with. So the semver field wins, and a bare
 * number N means 0.N.0, never N.0.0 (which would be a major version no engine has).
 */

/** An engine version and where in the answer it was found. */
export interface EngineVersionReading {
  /** `0.31.0` */
  version: string;
  /** The field it came from (`engine_version_semver`). */
  field: string;
  /** The value as the answer gave it (`"0.31.0"`, `31`). */
  raw: string | number;
}

/** Fields holding the version as a semver, read first. */
const SEMVER_FIELDS = ['engine_version_semver', 'engineVersionSemver', 'diginfra_engine_version_semver'];
/** Fields that may hold a semver or the legacy bare number. */
const LEGACY_FIELDS = ['engine_version', 'engineVersion', 'diginfra_engine_version'];

const SEMVER = /^v?(\d+)\.(\d+)(?:\.(\d+))?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
const BARE_NUMBER = /^\d+$/;

/**
 * One engine version value: a semver as is (`0.31.0`; `v0.31.0` and `0.31` are read as 0.31.0), a bare
 * non-negative integer (`31` or `"31"`) as the legacy minor form 0.31.0. Undefined for anything else.
 */
export function parseEngineVersion(value: unknown): string | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? `0.${value}.0` : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (BARE_NUMBER.test(text)) return `0.${Number(text)}.0`;
  const m = SEMVER.exec(text);
  if (!m) return undefined;
  const [, major, minor, patch, pre, build] = m;
  return `${Number(major)}.${Number(minor)}.${Number(patch ?? 0)}${pre ?? ''}${build ?? ''}`;
}

/**
 * The engine version of a versions document (a JSON object): the first semver field that parses,
 * else the first legacy field that does. Undefined when the document holds none.
 */
export function engineVersionOfDocument(doc: unknown): EngineVersionReading | undefined {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return undefined;
  const fields = doc as Record<string, unknown>;
  for (const field of SEMVER_FIELDS) {
    const raw = fields[field];
    // The semver field holds a semver: a bare number there is not read as a minor.
    if (typeof raw === 'string' && SEMVER.test(raw.trim())) return { version: parseEngineVersion(raw)!, field, raw };
  }
  for (const field of LEGACY_FIELDS) {
    const raw = fields[field];
    const version = parseEngineVersion(raw);
    if (version !== undefined) return { version, field, raw: raw as string | number };
  }
  return undefined;
}

/** `engine_version_semver "0.31.0"`, or `engine_version 31 (read as 0.31.0)`: what a refusal names. */
export function describeReading(r: EngineVersionReading): string {
  const raw = JSON.stringify(r.raw);
  return r.version === String(r.raw).trim() ? `${r.field} ${raw}` : `${r.field} ${raw} (read as ${r.version})`;
}
