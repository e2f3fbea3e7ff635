/**
 * Every config key, once: its dotted path, value kind, environment variable and checks. Validation,
 * environment overrides, `config show` and docs/configuration.md all follow this table.
 */
import {
  checkCron,
  checkDuration,
  checkHost,
  checkHttpUrl,
  checkListenAddr,
  checkMaxAge,
  checkNonEmpty,
  checkPlatform,
  checkRef,
  checkRegistryPattern,
  checkSemver,
  checkType,
  parseDuration,
} from './checks.js';

export type KeyKind = 'string' | 'strings' | 'bool' | 'number' | 'map' | 'indexes' | 'basicAuth' | 'oauthAuth' | 'gcpAuth';

export interface KeyDef {
  /** Dotted path in the file and in `sources` (`install.rulesfilesDir`). */
  readonly path: string;
  readonly kind: KeyKind;
  /** DIGINFRACTL_<SECTION>_<KEY>, upper snake case. */
  readonly env: string;
  /** May be absent (no default). */
  readonly optional?: boolean;
  /** Holds a secret: masked by `config show`. */
  readonly secret?: boolean;
  /** Check of one scalar (for lists: of each item; for maps: of each value). */
  readonly check?: (value: string) => string | undefined;
  /** Check of a map key. */
  readonly checkKey?: (value: string) => string | undefined;
  /** Number range. */
  readonly range?: readonly [number, number];
  /** A map whose values may each be several: a YAML list, or words separated by spaces (`check` applies to each). */
  readonly listValues?: boolean;
}

/** `rulesfilesDir` -> `RULESFILES_DIR`. */
export function envName(path: string): string {
  return `DIGINFRACTL_${path
    .split('.')
    .map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2').toUpperCase())
    .join('_')}`;
}

function key(path: string, kind: KeyKind, extra: Omit<KeyDef, 'path' | 'kind' | 'env'> = {}): KeyDef {
  return { path, kind, env: envName(path), ...extra };
}

/** An idle-read timeout: a duration of at least a second (less would fail ordinary requests). */
const checkReadTimeout = (v: string) => checkDuration(v) ?? (parseDuration(v)! < 1000 ? `"${v}" is shorter than 1s` : undefined);
const hostOrStar = (v: string) => (v === '*' ? undefined : checkHost(v));
/** A type for `dirs`: rulesfile and plugin have rulesfilesDir and pluginsDir of their own. */
const checkOtherType = (v: string) =>
  v === 'rulesfile' || v === 'plugin' ? `"${v}" has a key of its own (${v === 'plugin' ? 'pluginsDir' : 'rulesfilesDir'}); dirs is for the other types` : checkType(v);

export const KEYS: readonly KeyDef[] = [
  key('indexes', 'indexes'),
  key('registry.plainHttp', 'strings', { check: checkHost }),
  key('registry.insecureSkipTlsVerify', 'strings', { check: checkHost }),
  key('registry.caFiles', 'map', { checkKey: hostOrStar, check: checkNonEmpty }),
  key('registry.mirrors', 'map', { checkKey: checkHost, check: checkHost, listValues: true }),
  key('registry.authFile', 'string', { optional: true, check: checkNonEmpty }),
  key('registry.cosignKeys', 'strings', { check: checkNonEmpty }),
  key('registry.allowed', 'strings', { check: checkRegistryPattern }),
  key('registry.trustedRoot', 'string', { optional: true, check: checkNonEmpty }),
  key('registry.auth.basic', 'basicAuth', { optional: true, secret: true }),
  key('registry.auth.oauth', 'oauthAuth', { optional: true, secret: true }),
  key('registry.auth.gcp', 'gcpAuth', { optional: true }),
  key('registry.timeouts.read', 'string', { optional: true, check: checkReadTimeout }),
  key('registry.timeouts.attempts', 'number', { optional: true, range: [1, 10] }),
  key('install.refs', 'strings', { check: checkRef }),
  key('install.rulesfilesDir', 'string', { check: checkNonEmpty }),
  key('install.pluginsDir', 'string', { check: checkNonEmpty }),
  key('install.resolveDeps', 'bool'),
  key('install.allowedTypes', 'strings', { check: checkType }),
  key('install.platform', 'string', { optional: true, check: checkPlatform }),
  key('install.engineVersion', 'string', { optional: true, check: checkSemver }),
  key('install.lockfile', 'string', { optional: true, check: checkNonEmpty }),
  key('install.dirs', 'map', { checkKey: checkOtherType, check: checkNonEmpty }),
  key('follow.refs', 'strings', { check: checkRef }),
  key('follow.every', 'string', { check: checkDuration }),
  key('follow.cron', 'string', { optional: true, check: checkCron }),
  key('follow.jitter', 'number', { range: [0, 1] }),
  key('follow.rulesfilesDir', 'string', { check: checkNonEmpty }),
  key('follow.pluginsDir', 'string', { check: checkNonEmpty }),
  key('follow.stateDir', 'string', { check: checkNonEmpty }),
  key('follow.allowedTypes', 'strings', { check: checkType }),
  key('follow.engineVersion', 'string', { optional: true, check: checkSemver }),
  key('follow.engineVersionsUrl', 'string', { optional: true, check: checkHttpUrl }),
  key('follow.validateCmd', 'string', { optional: true, check: checkNonEmpty }),
  key('follow.metricsAddr', 'string', { optional: true, check: checkListenAddr }),
  key('follow.dirs', 'map', { checkKey: checkOtherType, check: checkNonEmpty }),
  key('cacheDir', 'string', { optional: true, check: checkNonEmpty }),
  key('cacheMaxAge', 'string', { optional: true, check: checkMaxAge }),
  key('verify', 'bool'),
];

export const KEY_BY_PATH: ReadonlyMap<string, KeyDef> = new Map(KEYS.map((k) => [k.path, k]));

/**
 * falcoctl's layout (`artifact.install.*`, `artifact.follow.*`, `artifact.allowedTypes`,
 * `registry.creds.config`), so a config written for it, or rendered by its Helm chart, loads as is.
 * Each alias maps to one or more canonical keys.
 */
export const ALIASES: ReadonlyMap<string, readonly string[]> = new Map([
  ['artifact.allowedTypes', ['install.allowedTypes', 'follow.allowedTypes']],
  ['artifact.install.refs', ['install.refs']],
  ['artifact.install.rulesfilesDir', ['install.rulesfilesDir']],
  ['artifact.install.pluginsDir', ['install.pluginsDir']],
  ['artifact.install.resolveDeps', ['install.resolveDeps']],
  ['artifact.follow.refs', ['follow.refs']],
  ['artifact.follow.every', ['follow.every']],
  ['artifact.follow.cron', ['follow.cron']],
  ['artifact.follow.rulesfilesDir', ['follow.rulesfilesDir']],
  ['artifact.follow.pluginsDir', ['follow.pluginsDir']],
  ['artifact.follow.falcoversions', ['follow.engineVersionsUrl']],
  ['artifact.follow.diginfraversions', ['follow.engineVersionsUrl']],
  ['registry.creds.config', ['registry.authFile']],
  // An entry of a map key: falcoctl's directory for its `asset` type.
  ['artifact.install.assetsDir', ['install.dirs.asset']],
  ['artifact.follow.assetsDir', ['follow.dirs.asset']],
]);

/** Why falcoctl's per-command noVerify keys are not taken over: one switch covers every command here. */
const NO_VERIFY = 'signatures are verified wherever a policy applies (docs/signatures.md); to turn that off for install, follow and pull alike, set verify: false';

/** falcoctl keys accepted and ignored with a warning (features this tool does differently). */
export const IGNORED: ReadonlyMap<string, string> = new Map([
  ['artifact.noVerify', NO_VERIFY],
  ['artifact.install.noVerify', NO_VERIFY],
  ['artifact.follow.noVerify', NO_VERIFY],
  ['artifact.follow.tmpDir', 'the follower stages files beside their destination, so no temp dir is needed'],

]);
