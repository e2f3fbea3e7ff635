/** What the index commands share: the config, where the cache and credentials live, time format. */
import { loadConfig, type LoadedConfig, cacheRoot, indexCredentialsPath } from '../../config/index.js';
import type { CliContext } from '../run.js';

export interface IndexCliContext extends LoadedConfig {
  cacheDir: string;
  credentialsPath: string;
}

export async function loadIndexContext(ctx: CliContext): Promise<IndexCliContext> {
  const loaded = await loadConfig(ctx.configPath === undefined ? {} : { path: ctx.configPath });
  for (const w of loaded.warnings) ctx.logger.warn(w);
  return { ...loaded, cacheDir: cacheRoot(loaded.config), credentialsPath: indexCredentialsPath(loaded.path) };
}

/** `2025-01-02T03:04:05Z`, or `never`. */
export function formatTime(iso: string | undefined): string {
  return iso ? iso.replace(/\.\d{3}Z$/, 'Z') : 'never';
}

export function warnPlainHttp(ctx: CliContext, name: string, url: string): void {
  if (/^http:\/\//i.test(url)) {
    ctx.logger.warn(`index "${name}" is fetched over plain http://: anyone on the network path can change what you install; use https:// if the server offers it`);
  }
}
