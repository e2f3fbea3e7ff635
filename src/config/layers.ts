/**
 * The pure layering of config sources: file < env < flags, remembering where each value came from.
 */
import { DiginfraError } from '../errors.js';
import type { ConfigSources, DiginfraConfig } from './types.js';
import { KEYS, KEY_BY_PATH } from './keys.js';
import { coerceString, coerceValue } from './coerce.js';
import { setPath } from './validate.js';
import type { Env } from './paths.js';

/** Sources of every key: `file` for the keys in `present`, else `default`. */
export function fileSources(present: ReadonlySet<string>): ConfigSources {
  return Object.fromEntries(KEYS.map((k) => [k.path, present.has(k.path) ? 'file' : 'default']));
}

function clone(config: DiginfraConfig): DiginfraConfig {
  return structuredClone(config);
}

/**
 * Applies DIGINFRACTL_<SECTION>_<KEY> variables (lists comma-separated, booleans true/false). An empty
 * variable counts as unset. Returns new objects; throws CONFIG_INVALID naming every bad variable.
 */
export function applyEnv(config: DiginfraConfig, sources: ConfigSources, env: Env): { config: DiginfraConfig; sources: ConfigSources } {
  const out = clone(config);
  const outSources = { ...sources };
  const problems: string[] = [];
  for (const def of KEYS) {
    const text = env[def.env];
    if (text === undefined || text.trim() === '') continue;
    const c = coerceString(def, text, `environment variable ${def.env}`, problems);
    if (!c.ok) continue;
    setPath(out, def.path, c.value);
    outSources[def.path] = 'env';
  }
  if (problems.length > 0) {
    throw new DiginfraError('CONFIG_INVALID', problems.join('\n'), {
      hint: 'fix or unset the variable; docs/configuration.md shows the format of each one',
    });
  }
  return { config: out, sources: outSources };
}

/**
 * Layers command-line flags on top (flags > env > file > defaults). `flags` maps key paths to values;
 * undefined values are skipped; strings are accepted for lists (comma-separated) and booleans.
 * `flagNames` maps key paths to the flag as typed (`--rulesfiles-dir`), for error messages.
 * Returns new objects; throws USAGE naming the flag.
 */
export function applyFlags(
  config: DiginfraConfig,
  sources: ConfigSources,
  flags: Readonly<Record<string, unknown>>,
  flagNames: Readonly<Record<string, string>> = {},
): { config: DiginfraConfig; sources: ConfigSources } {
  const out = clone(config);
  const outSources = { ...sources };
  const problems: string[] = [];
  for (const [path, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    const def = KEY_BY_PATH.get(path);
    if (!def) throw new Error(`applyFlags: "${path}" is not a config key`);
    const subject = flagNames[path] ?? `flag for ${path}`;
    const c = typeof value === 'string' && def.kind !== 'string' ? coerceString(def, value, subject, problems) : coerceValue(def, value, subject, problems);
    if (!c.ok) continue;
    setPath(out, path, c.value);
    outSources[path] = 'flag';
  }
  if (problems.length > 0) throw new DiginfraError('USAGE', problems.join('\n'));
  return { config: out, sources: outSources };
}

/** `--dir TYPE=DIR` (repeated) as a map; the config key's checks (a valid type, not rulesfile or plugin) come after. */
export function parseTypeDirs(values: readonly string[]): Record<string, string> {
  const dirs: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0 || eq === v.length - 1) throw new DiginfraError('USAGE', `--dir "${v}" must be TYPE=DIR, e.g. --dir asset=/etc/diginfra/assets`);
    dirs[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return dirs;
}

/**
 * The flags of `artifact install` and `artifact follow` that set a key of their section, by the name
 * commander gives the option: `rulesfilesDir` is `--rulesfiles-dir` and sets `install.rulesfilesDir`
 * (or `follow.rulesfilesDir`). `--dir` is not listed: it adds to the section's `dirs`.
 */
export const SECTION_FLAGS = {
  install: ['rulesfilesDir', 'pluginsDir', 'resolveDeps', 'allowedTypes', 'platform', 'engineVersion', 'lockfile'],
  follow: ['every', 'cron', 'jitter', 'rulesfilesDir', 'pluginsDir', 'stateDir', 'allowedTypes', 'engineVersion', 'engineVersionsUrl', 'validateCmd', 'metricsAddr'],
} as const;

/** `rulesfilesDir` -> `--rulesfiles-dir`: the flag as typed, undoing commander's camel case. */
function flagOf(option: string): string {
  return `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * Layers the flags of `artifact install` or `artifact follow` over their config section (flags > env >
 * file > defaults): each option of SECTION_FLAGS sets the key of the same name, and `--dir TYPE=DIR`
 * (repeated) adds to, or replaces entries of, the section's `dirs`. Errors name the flag as typed.
 */
export function applySectionFlags<S extends keyof typeof SECTION_FLAGS>(
  loaded: { config: DiginfraConfig; sources: ConfigSources },
  section: S,
  flags: { readonly [option in (typeof SECTION_FLAGS)[S][number]]?: unknown } & { dir?: readonly string[] },
): { config: DiginfraConfig; sources: ConfigSources } {
  const options: Readonly<Record<string, unknown>> = flags;
  const values: Record<string, unknown> = {};
  const flagNames: Record<string, string> = {};
  for (const option of SECTION_FLAGS[section]) {
    values[`${section}.${option}`] = options[option];
    flagNames[`${section}.${option}`] = flagOf(option);
  }
  values[`${section}.dirs`] = flags.dir !== undefined ? { ...loaded.config[section].dirs, ...parseTypeDirs(flags.dir) } : undefined;
  flagNames[`${section}.dirs`] = '--dir';
  return applyFlags(loaded.config, loaded.sources, values, flagNames);
}
