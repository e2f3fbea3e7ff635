/**
 * Reading the config: the only I/O of this folder besides saving. Path resolution, YAML parsing (the
 * `yaml` library is loaded only when a file must be parsed), validation, then environment overrides.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DiginfraError, messageOf } from '../errors.js';
import { defaultConfig, type ConfigSources, type DiginfraConfig } from './types.js';
import { checkConfig, configError } from './validate.js';
import { applyEnv, fileSources } from './layers.js';
import { resolveConfigPath, xdgCacheHome, type Env } from './paths.js';
import { writeFileAtomic } from './atomic-write.js';
import { KEYS } from './keys.js';
import { closest } from './suggest.js';
import { mayHoldSecrets } from './mask.js';

export interface LoadConfigOptions {
  /** The `--config` flag. */
  path?: string;
  /** Environment (default process.env): DIGINFRACTL_CONFIG, XDG dirs and DIGINFRACTL_* overrides. */
  env?: Env;
  /** The system-wide config path to probe (default /etc/diginfractl/diginfractl.yaml); for tests. */
  systemPath?: string;
}

export interface LoadedConfig {
  /** Effective config: defaults < file < environment. Layer flags with `applyFlags`. */
  config: DiginfraConfig;
  /** Absolute path of the config file (it may not exist). */
  path: string;
  /** Where each key's value came from, by dotted path. */
  sources: ConfigSources;
  /** Whether the file exists; a missing file means defaults. */
  exists: boolean;
  /** Things the user should know (falcoctl keys that are ignored). */
  warnings: string[];
}

export interface ConfigFile {
  /** The parsed YAML (undefined when the file does not exist or is empty). */
  raw: unknown;
  exists: boolean;
}

/** Reads and parses a config file; a missing file is `{exists: false}`. */
export async function readConfigFile(path: string, env: Env = process.env): Promise<ConfigFile> {
  let text: string;
  try {
    // Synchronous: a config file is small, and every command reads it first (no thread-pool start-up).
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { raw: undefined, exists: false };
    if (code === 'EISDIR') throw new DiginfraError('CONFIG_INVALID', `config ${path}: is a directory, not a file`, { cause: err });
    throw new DiginfraError('IO', `config ${path}: cannot read: ${messageOf(err)}`, {
      cause: err,
      hint: code === 'EACCES' ? 'check the file permissions, or point --config / DIGINFRACTL_CONFIG at a readable file' : undefined,
    });
  }
  return { raw: await parseYamlText(text, path, env), exists: true };
}

/**
 * YAML text -> plain value. The parse of a config file is memoised by its exact text in the user cache,
 * so commands such as `artifact search` skip loading the YAML library on every run.
 */
export async function parseYamlText(text: string, file: string, env: Env = process.env): Promise<unknown> {
  const memo = join(xdgCacheHome(env), 'diginfractl', 'parsed-config', `${fnv1a(file)}.json`);
  try {
    const cached = JSON.parse(readFileSync(memo, 'utf8')) as { text?: unknown; value?: unknown };
    if (cached.text === text) return cached.value;
  } catch {
    // no memo yet, or unreadable: parse below
  }
  const { parseDocument } = await import('yaml');
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw configError(
      file,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return `${pos ? `line ${pos.line}, column ${pos.col}: ` : ''}${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`;
      }),
      `fix the YAML syntax in ${file}`,
    );
  }
  const value = doc.toJS({ maxAliasCount: 1000 }) as unknown;
  // Never copy secrets into the cache, even misspelt (the file is invalid then, but the memo is
  // written before validation), and only memoise what JSON keeps exactly.
  if (!hasNonFinite(value) && !mayHoldSecrets(text, value)) {
    await writeFileAtomic(memo, JSON.stringify({ text, value }), { mode: 0o600 }).catch(() => undefined);
  }
  return value;
}

/** Short stable file name for a path (the memo holds the full text, so a collision only costs a miss). */
function fnv1a(s: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x811c9dc5) >>> 0;
  }
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}

function hasNonFinite(v: unknown): boolean {
  if (typeof v === 'number') return !Number.isFinite(v);
  if (Array.isArray(v)) return v.some(hasNonFinite);
  if (typeof v === 'object' && v !== null) return Object.values(v).some(hasNonFinite);
  return false;
}

/** The file alone, validated (no environment): what `index add` edits and `config validate` checks. */
export async function loadConfigFile(path: string, env: Env = process.env): Promise<{ config: DiginfraConfig; present: Set<string>; exists: boolean; warnings: string[] }> {
  const file = await readConfigFile(path, env);
  if (!file.exists) return { config: defaultConfig(), present: new Set(), exists: false, warnings: [] };
  return { ...checkConfig(file.raw, path), exists: true };
}

/**
 * The effective config. Path: the `path` option (`--config`), else $DIGINFRACTL_CONFIG, else
 * /etc/diginfractl/diginfractl.yaml if it exists, else $XDG_CONFIG_HOME/diginfractl/diginfractl.yaml.
 * A missing file means defaults; DIGINFRACTL_<SECTION>_<KEY> variables override the file.
 */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const env = opts.env ?? process.env;
  const path = resolveConfigPath({ ...opts, env });
  const file = await loadConfigFile(path, env);
  const layered = applyEnv(file.config, fileSources(file.present), env);
  return { config: layered.config, path, sources: layered.sources, exists: file.exists, warnings: [...file.warnings, ...unknownEnvWarnings(env)] };
}

/** Variables that are not keys of the config (or the tool's own switches). */
const OTHER_ENV = new Set(['DIGINFRACTL_CONFIG', 'DIGINFRACTL_DEBUG', 'DIGINFRACTL_DEMO_KEEP']);

/** A misspelt DIGINFRACTL_* variable would be silently ignored: say so, with the nearest real one. */
export function unknownEnvWarnings(env: Env): string[] {
  const known = new Set(KEYS.map((k) => k.env));
  return Object.keys(env)
    .filter((name) => name.startsWith('DIGINFRACTL_') && !known.has(name) && !OTHER_ENV.has(name))
    .sort()
    .map((name) => {
      const near = closest(name, known);
      return `environment variable ${name} is not a diginfractl setting and is ignored${near ? ` (did you mean ${near}?)` : ''}`;
    });
}
