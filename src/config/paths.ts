/** Where the config, the cache and the index credentials live. No I/O except `existsSync` of /etc. */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';

export type Env = Record<string, string | undefined>;

/** The system-wide config, used when it exists and nothing else was named. */
export const SYSTEM_CONFIG_PATH = '/etc/diginfractl/diginfractl.yaml';
export const CONFIG_FILE_NAME = 'diginfractl.yaml';
/** Index credentials, beside the config file, mode 0600. */
export const INDEX_CREDENTIALS_FILE = 'index-credentials.json';

function home(env: Env): string {
  // node:os only when HOME is unset (it is not needed on the common path).
  return env.HOME || process.getBuiltinModule('node:os').homedir();
}

/** $XDG_CONFIG_HOME (absolute only, per the XDG spec) or ~/.config. */
export function xdgConfigHome(env: Env = process.env): string {
  const v = env.XDG_CONFIG_HOME;
  return v && isAbsolute(v) ? v : join(home(env), '.config');
}

/** $XDG_CACHE_HOME (absolute only) or ~/.cache. */
export function xdgCacheHome(env: Env = process.env): string {
  const v = env.XDG_CACHE_HOME;
  return v && isAbsolute(v) ? v : join(home(env), '.cache');
}

/** The per-user config path: $XDG_CONFIG_HOME/diginfractl/diginfractl.yaml. */
export function userConfigPath(env: Env = process.env): string {
  return join(xdgConfigHome(env), 'diginfractl', CONFIG_FILE_NAME);
}

/**
 * The config file to use: the `--config` flag, else $DIGINFRACTL_CONFIG, else /etc/diginfractl/diginfractl.yaml
 * if it exists, else $XDG_CONFIG_HOME/diginfractl/diginfractl.yaml. Always absolute.
 */
export function resolveConfigPath(opts: { path?: string; env?: Env; systemPath?: string } = {}): string {
  const env = opts.env ?? process.env;
  if (opts.path) return resolve(opts.path);
  if (env.DIGINFRACTL_CONFIG) return resolve(env.DIGINFRACTL_CONFIG);
  const system = opts.systemPath ?? SYSTEM_CONFIG_PATH;
  if (existsSync(system)) return system;
  return userConfigPath(env);
}

/** The cache root: `cacheDir` from the config, else $XDG_CACHE_HOME/diginfractl. */
export function cacheRoot(config: { cacheDir?: string | undefined }, env: Env = process.env): string {
  return config.cacheDir ? resolve(config.cacheDir) : join(xdgCacheHome(env), 'diginfractl');
}

/** Sigstore's TUF metadata and the last refreshed trusted root: `<cache root>/sigstore`. */
export function sigstoreCacheDir(config: { cacheDir?: string | undefined }, env: Env = process.env): string {
  return join(cacheRoot(config, env), 'sigstore');
}

/** Index credentials live beside the config file they belong to. */
export function indexCredentialsPath(configPath: string): string {
  return join(dirname(configPath), INDEX_CREDENTIALS_FILE);
}
