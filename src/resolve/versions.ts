/**
 * Version selection: pure functions over tag lists and semver strings. No I/O here; the installer
 * lists tags and hands them in.
 */
import semver from 'semver';

/** `1` or `1.2`: the floating tags `repo push --add-floating-tags` maintains. */
const FLOATING_RE = /^(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?$/;

/** True for `1` and `1.2` (not `1.2.3`, not `latest`). */
export function isFloatingTag(tag: string): boolean {
  return FLOATING_RE.test(tag);
}

/** The semver range a floating tag stands for: `1` -> `1.x`, `1.2` -> `1.2.x`; undefined otherwise. */
export function floatingRange(tag: string): string | undefined {
  const m = FLOATING_RE.exec(tag);
  if (!m) return undefined;
  return m[2] === undefined ? `${m[1]}.x` : `${m[1]}.${m[2]}.x`;
}

/** Strict semver tags (`1.2.3`, `1.2.3-rc.1`), as pushed by `repo push`; `v1.2.3` and `latest` are not. */
export function versionTags(tags: readonly string[]): string[] {
  return tags.filter((t) => semver.valid(t) !== null && semver.clean(t) === t);
}

/** Highest of `versions` (strict semver strings), or undefined for an empty list. */
export function highest(versions: readonly string[]): string | undefined {
  return [...versions].sort(semver.rcompare)[0];
}

/**
 * The tag to install for a floating tag: the highest release tag in its line (`1` -> the highest
 * `1.x.y`). Undefined when the repository has no release in that line (the caller then uses the tag
 * literally).
 */
export function resolveFloatingTag(tag: string, tags: readonly string[]): string | undefined {
  const range = floatingRange(tag);
  if (range === undefined) return undefined;
  return highest(versionTags(tags).filter((t) => semver.prerelease(t) === null && semver.satisfies(t, range)));
}

/**
 * The range a dependency version stands for (docs/install.md): the same major version, and not older
 * than the one given. `1.2.0` accepts `>=1.2.0 <2.0.0`, and `0.7.0` accepts `>=0.7.0 <1.0.0`: real
 * plugins are 0.x, and a rules file that needs k8saudit 0.7.0 loads with 0.9.0 (the ecosystem's rule,
 * not semver's caret rule, which would stop 0.x at the minor).
 */
export function dependencyRange(version: string): string {
  const v = semver.parse(version);
  if (!v) return version;
  return `>=${v.version} <${v.major + 1}.0.0`;
}

/** Does `version` satisfy a dependency that asked for `wanted`? Prereleases only when asked for in the same version. */
export function satisfiesDependency(version: string, wanted: string): boolean {
  if (!semver.valid(version) || !semver.valid(wanted)) return false;
  return semver.satisfies(version, dependencyRange(wanted));
}

/** Do all these dependency versions ask for one major version (so that one version can serve them all)? */
export function compatibleLine(wanted: readonly string[]): boolean {
  const lines = new Set(wanted.map(lineOf));
  return lines.size <= 1;
}

/** `1.x` for 1.2.3, `0.x` for 0.7.1: the major line a dependency version stands for. */
export function lineOf(version: string): string {
  const v = semver.parse(version);
  if (!v) return version;
  return `${v.major}.x`;
}

/**
 * Highest of `available` (tags, any strings) that satisfies every wanted version; undefined when none.
 * Non-semver tags are ignored.
 */
export function highestSatisfyingAll(available: readonly string[], wanted: readonly string[]): string | undefined {
  return highest(versionTags(available).filter((t) => wanted.every((w) => satisfiesDependency(t, w))));
}

/** Compares two versions for "keep the highest"; non-semver strings sort lowest, then by text. */
export function compareVersions(a: string, b: string): number {
  const va = semver.valid(a);
  const vb = semver.valid(b);
  if (va && vb) return semver.compare(va, vb);
  if (va) return 1;
  if (vb) return -1;
  return a < b ? -1 : a > b ? 1 : 0;
}
