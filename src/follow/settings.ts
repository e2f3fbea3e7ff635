/**
 * From config (defaults < file < environment) and flags to FollowSettings. Pure: the CLI calls it at
 * start-up and again on every config reload, with the same flags, so flags keep winning over the file.
 */
import { resolve } from 'node:path';
import { checkArtifactType } from '../artifact/index.js';
import { applySectionFlags, type LoadedConfig, cacheRoot, type DiginfraConfig, type RegistryConfig } from '../config/index.js';
import { DiginfraError } from '../errors.js';
import { lockfilePath } from '../install/index.js';
import { platformOrHost } from '../platform/index.js';
import { normalizeRefs, type FollowSettings } from './follower.js';
import { checkJitter, parseSchedule } from './schedule.js';

/** The lock file name follow looks for (the install's own: one definition, in install/lockfile-path.ts). */
export { LOCKFILE_NAME as INSTALL_LOCKFILE_NAME } from '../install/index.js';

export interface FollowFlags {
  every?: string;
  cron?: string;
  jitter?: string | number;
  rulesfilesDir?: string;
  pluginsDir?: string;
  stateDir?: string;
  allowedTypes?: string;
  engineVersion?: string;
  engineVersionsUrl?: string;
  validateCmd?: string;
  metricsAddr?: string;
  /** --dir TYPE=DIR (repeatable): added to follow.dirs. */
  dir?: string[];
  /** --verify-key (repeatable): replaces registry.cosignKeys. */
  verifyKey?: string[];
  /** --no-verify (false) or --verify (true); unset: the config's `verify`. */
  verify?: boolean;
  /** --trusted-root: replaces registry.trustedRoot. */
  trustedRoot?: string;
}

export interface EffectiveFollow {
  settings: FollowSettings;
  /** The whole effective config (registry section, indexes, cache dir). */
  config: DiginfraConfig;
  metricsAddr: string | undefined;
}

/** Flags that exclude each other; checked once, before anything starts. */
export function checkFlagConflicts(flags: FollowFlags): void {
  if (flags.every !== undefined && flags.cron !== undefined) {
    throw new DiginfraError('USAGE', 'give --every or --cron, not both');
  }
  if (flags.engineVersion !== undefined && flags.engineVersionsUrl !== undefined) {
    throw new DiginfraError('USAGE', 'give --engine-version or --engine-versions-url, not both');
  }
  if (flags.verify === false && (flags.verifyKey?.length ?? 0) > 0) {
    throw new DiginfraError('USAGE', '--no-verify and --verify-key contradict each other; give one of them');
  }
}

/**
 * TLS for the engine versions URL: `registry.caFiles` (its host, else `*`) and
 * `registry.insecureSkipTlsVerify` apply to it as to any https host diginfractl talks to.
 */
function tlsForUrl(registry: RegistryConfig, url: string): { caFile?: string; insecure?: boolean } | undefined {
  let host: string;
  try {
    const u = new URL(url);
    if (u.protocol !== 'https:') return undefined;
    host = u.host;
  } catch {
    return undefined;
  }
  const caFile = registry.caFiles[host] ?? registry.caFiles['*'];
  const insecure = registry.insecureSkipTlsVerify.includes(host);
  if (caFile === undefined && !insecure) return undefined;
  return { ...(caFile !== undefined && { caFile }), ...(insecure && { insecure: true }) };
}

export function effectiveFollow(loaded: Pick<LoadedConfig, 'config' | 'sources'>, flags: FollowFlags, refArgs: readonly string[]): EffectiveFollow {
  checkFlagConflicts(flags);
  const { config } = applySectionFlags(loaded, 'follow', flags);
  const f = config.follow;
  // A flag of a pair replaces the file's other half.
  if (flags.every !== undefined) delete f.cron;
  if (flags.engineVersion !== undefined) delete f.engineVersionsUrl;
  if (flags.engineVersionsUrl !== undefined) delete f.engineVersion;
  for (const t of f.allowedTypes) checkArtifactType(t);
  const refs = normalizeRefs(refArgs.length > 0 ? refArgs : f.refs);
  // With a versions URL, a fixed version (follow's, else install's) is what requirements are checked
  // against while the URL cannot be read yet; without one, the fixed version is the engine's.
  const versionsUrl = f.engineVersionsUrl;
  const versionsTls = versionsUrl !== undefined ? tlsForUrl(config.registry, versionsUrl) : undefined;
  const fallback =
    f.engineVersion !== undefined
      ? { version: f.engineVersion, from: 'follow.engineVersion' }
      : config.install.engineVersion !== undefined
        ? { version: config.install.engineVersion, from: 'install.engineVersion, what artifact install checked against' }
        : undefined;
  const settings: FollowSettings = {
    refs,
    schedule: parseSchedule(f.every, f.cron),
    jitter: checkJitter(f.jitter),
    rulesfilesDir: resolve(f.rulesfilesDir),
    pluginsDir: resolve(f.pluginsDir),
    dirs: Object.fromEntries(Object.entries(f.dirs).map(([t, d]) => [t, resolve(d)])),
    stateDir: resolve(f.stateDir),
    // Where `artifact install` records what it placed: install.lockfile, and the default name in the
    // rules dir that follow shares with the install (an init container's, say).
    installLockfiles: [...new Set([...(config.install.lockfile !== undefined ? [resolve(config.install.lockfile)] : []), lockfilePath(resolve(f.rulesfilesDir))])],
    cacheDir: cacheRoot(config),
    allowedTypes: [...f.allowedTypes],
    ...(versionsUrl === undefined && f.engineVersion !== undefined && { engineVersion: f.engineVersion }),
    ...(versionsUrl !== undefined && { engineVersionsUrl: versionsUrl }),
    ...(versionsUrl !== undefined && fallback !== undefined && { engineVersionFallback: fallback }),
    ...(versionsTls !== undefined && { engineVersionsTls: versionsTls }),
    ...(f.validateCmd !== undefined && f.validateCmd.trim() !== '' && { validateCmd: f.validateCmd }),
    platform: platformOrHost(config.install.platform),
  };
  // Signatures: verified under the policies that apply unless turned off, which drops the keys too.
  settings.verification = (flags.verify ?? config.verify) ? 'on' : 'off';
  const trustedRoot = flags.trustedRoot ?? config.registry.trustedRoot;
  if (trustedRoot !== undefined) settings.trustedRoot = resolve(trustedRoot);
  const verifyKeys = (flags.verifyKey?.length ? flags.verifyKey : config.registry.cosignKeys).map((p) => resolve(p));
  if (verifyKeys.length > 0 && settings.verification === 'on') settings.verifyKeys = verifyKeys;
  return { settings, config, metricsAddr: f.metricsAddr };
}
