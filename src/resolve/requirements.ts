/**
 * Requirement and type checks, done on the whole plan before anything is written. Pure.
 */
import semver from 'semver';
import { DiginfraError } from '../errors.js';
import type { VersionedName } from './dependency.js';
import { parseEngineVersion } from './engine-version.js';

export const ENGINE_VERSION = 'engine_version';

export interface RequirementSubject {
  /** `name version` of the artifact, for messages. */
  label: string;
  requirements?: readonly VersionedName[];
}

export interface RequirementEnv {
  /** The engine version of this node (`--engine-version` or install.engineVersion). */
  engineVersion?: string;
  /** Where it came from, named by a refusal (`--engine-version`, `read from URL`). */
  engineVersionFrom?: string;
  /** This run already said the engine version is unknown: do not say it again. */
  engineUnknownSaid?: boolean;
}

/**
 * Is an engine of version `engine` able to load something that requires `required`? Same major, and
 * engine minor.patch at least the required one (0.41.0 satisfies 0.40.0; 1.0.0 does not).
 */
export function engineSatisfies(engine: string, required: string): boolean {
  const e = semver.coerce(parseEngineVersion(engine) ?? engine, { includePrerelease: false });
  const r = semver.coerce(required);
  if (!e || !r) return false;
  return e.major === r.major && semver.gte(e.version, r.version);
}

/**
 * Checks every artifact's requirements. Violations of all artifacts are collected into one
 * REQUIREMENT_UNMET error; requirements that cannot be checked come back as warnings: one for all
 * the engine_version requirements when no engine version is known, one per unknown requirement name.
 */
export function checkRequirements(subjects: readonly RequirementSubject[], env: RequirementEnv): { warnings: string[] } {
  const violations: string[] = [];
  const warnings: string[] = [];
  const unchecked: string[] = [];
  // A bare number is the legacy minor form (31 is 0.31.0), as engines report it (engine-version.ts).
  const engine = env.engineVersion !== undefined ? parseEngineVersion(env.engineVersion) : undefined;
  if (env.engineVersion !== undefined && engine === undefined) {
    throw new DiginfraError('USAGE', `--engine-version "${env.engineVersion}" is not a version like 0.40.0`);
  }
  const was = engine !== undefined && engine !== env.engineVersion ? ` (given as ${env.engineVersion})` : '';
  const from = env.engineVersionFrom !== undefined ? `, ${env.engineVersionFrom}` : '';
  for (const s of subjects) {
    for (const req of s.requirements ?? []) {
      if (req.name === ENGINE_VERSION) {
        if (engine === undefined) {
          unchecked.push(`${s.label} requires engine_version ${req.version}`);
        } else if (!engineSatisfies(engine, req.version)) {
          violations.push(`${s.label} requires engine version ${req.version} (same major, at least ${req.version}); this engine is ${engine}${was}${from}`);
        }
      } else {
        warnings.push(`${s.label} has requirement ${req.name} ${req.version}, which diginfractl does not know how to check`);
      }
    }
  }
  // No engine version: said once for the whole run, not once per artifact.
  if (unchecked.length > 0 && !env.engineUnknownSaid) {
    warnings.unshift(`${unchecked.join(', ')}; not checked (give --engine-version or set install.engineVersion)`);
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
