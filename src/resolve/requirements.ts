/**
 * Requirement and type checks, done on the whole plan before anything is written. Pure.
 */
import semver from 'semver';
import { DiginfraError } from '../errors.js';
import type { VersionedName } from './dependency.js';

export const ENGINE_VERSION = 'engine_version';

export interface RequirementSubject {
  /** `name version` of the artifact, for messages. */
  label: string;
  requirements?: readonly VersionedName[];
}

export interface RequirementEnv {
  /** The engine version of this node (`--engine-version` or install.engineVersion). */
  engineVersion?: string;
}

/**
 * Is an engine of version `engine` able to load something that requires `required`? Same major, and
 * engine minor.patch at least the required one (0.41.0 satisfies 0.40.0; 1.0.0 does not).
 */
export function engineSatisfies(engine: string, required: string): boolean {
  const e = semver.coerce(engine, { includePrerelease: false });
  const r = semver.coerce(required);
  if (!e || !r) return false;
  return e.major === r.major && semver.gte(e.version, r.version);
}

/**
 * Checks every artifact's requirements. Violations of all artifacts are collected into one
 * REQUIREMENT_UNMET error; requirements that cannot be checked (no engine version given, unknown
 * requirement names) come back as warnings.
 */
export function checkRequirements(subjects: readonly RequirementSubject[], env: RequirementEnv): { warnings: string[] } {
  const violations: string[] = [];
  const warnings: string[] = [];
  if (env.engineVersion !== undefined && !semver.coerce(env.engineVersion)) {
    throw new DiginfraError('USAGE', `--engine-version "${env.engineVersion}" is not a version like 0.40.0`);
  }
  for (const s of subjects) {
    for (const req of s.requirements ?? []) {
      if (req.name === ENGINE_VERSION) {
        if (env.engineVersion === undefined) {
          warnings.push(`${s.label} requires engine_version ${req.version}; not checked (give --engine-version or set install.engineVersion)`);
        } else if (!engineSatisfies(env.engineVersion, req.version)) {
          violations.push(`${s.label} requires engine version ${req.version} (same major, at least ${req.version}); this engine is ${env.engineVersion}`);
        }
      } else {
        warnings.push(`${s.label} has requirement ${req.name} ${req.version}, which diginfractl does not know how to check`);
      }
    }
  }
  if (violations.length > 0) {
    throw new DiginfraError('REQUIREMENT_UNMET', violations.length === 1 ? violations[0]! : `requirements not met:\n  ${violations.join('\n  ')}`, {
      hint: 'install a version of the artifact made for this engine, or upgrade the engine; nothing was written',
    });
  }
  return { warnings };
}

export interface Typed {
  label: string;
  type: string;
  /** How it got into the plan: asked for by the user, or needed by another artifact. */
  requiredBy?: readonly string[];
}

/**
 * `--allowed-types`: any artifact (asked for or a dependency) of another type refuses the whole
 * install. An empty list allows every type.
 */
export function checkAllowedTypes(items: readonly Typed[], allowed: readonly string[]): void {
  if (allowed.length === 0) return;
  const bad = items.filter((i) => !allowed.includes(i.type));
  if (bad.length === 0) return;
  const lines = bad.map((b) => `${b.label} is a ${b.type}${b.requiredBy?.length ? ` (a dependency of ${b.requiredBy.join(', ')})` : ''}`);
  throw new DiginfraError('TYPE_NOT_ALLOWED', `type not allowed (allowed: ${allowed.join(', ')}): ${lines.join('; ')}`, {
    hint: 'widen --allowed-types (install.allowedTypes), or use --no-resolve-deps to skip dependencies; nothing was written',
  });
}

/** `--type`: keeps the items of that type; the rest come back as skipped. */
export function filterByType<T extends Typed>(items: readonly T[], type: string | undefined): { kept: T[]; skipped: T[] } {
  if (type === undefined) return { kept: [...items], skipped: [] };
  return { kept: items.filter((i) => i.type === type), skipped: items.filter((i) => i.type !== type) };
}
