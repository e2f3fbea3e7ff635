/**
 * What an artifact's config says it needs: dependencies on other artifacts and requirements on the
 * engine, and their text form on the command line (`repo push --depends-on`, `--requires`). Pure.
 */
import semver from 'semver';
import { DiginfraError } from '../errors.js';

export interface VersionedName {
  name: string;
  /** A semver version; for a dependency, the lowest acceptable version in the same major. */
  version: string;
}

export interface Dependency extends VersionedName {
  /** Other artifacts that satisfy the dependency just as well (e.g. `k8saudit-eks` for `k8saudit`). */
  alternatives?: VersionedName[];
}

function parseNameVersion(text: string, flag: string): VersionedName {
  const colon = text.lastIndexOf(':');
  const name = colon < 0 ? '' : text.slice(0, colon).trim();
  const version = colon < 0 ? '' : text.slice(colon + 1).trim();
  if (!name || !version) throw new DiginfraError('USAGE', `${flag} "${text}" must be NAME:VERSION`);
  if (!semver.valid(version)) throw new DiginfraError('USAGE', `${flag} "${text}": "${version}" is not a semver version like 1.2.3`);
  return { name, version };
}

/** `--depends-on "k8saudit:0.7.0|k8saudit-eks:0.2.0"`: the first is the dependency, the rest alternatives. */
export function parseDependency(text: string): Dependency {
  const [first, ...rest] = text.split('|').map((s) => parseNameVersion(s, '--depends-on'));
  const dep: Dependency = { ...first! };
  if (rest.length) dep.alternatives = rest;
  return dep;
}

/** `--requires engine_version:0.40.0`. */
export function parseRequirement(text: string): VersionedName {
  return parseNameVersion(text, '--requires');
}
