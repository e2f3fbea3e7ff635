/**
 * What most actions need besides their own options: the effective config and a registry client
 * built from it and the command's registry flags.
 */
import { type DiginfraConfig, loadConfig } from '../config/index.js';
import { createRegistryClient, type RegistryClient, type RegistryFlags } from '../registry/index.js';
import type { CliContext } from './run.js';

export interface RegistryFlagOptions {
  plainHttp?: boolean;
  caFile?: string;
  insecure?: boolean;
}

export async function loadCliConfig(ctx: CliContext): Promise<DiginfraConfig> {
  const { config, warnings } = await loadConfig(ctx.configPath === undefined ? {} : { path: ctx.configPath });
  for (const w of warnings) ctx.logger.warn(w);
  return config;
}

export function registryFlags(opts: RegistryFlagOptions): RegistryFlags {
  return {
    ...(opts.plainHttp !== undefined && { plainHttp: opts.plainHttp }),
    ...(opts.caFile !== undefined && { caFile: opts.caFile }),
    ...(opts.insecure !== undefined && { insecure: opts.insecure }),
  };
}

export async function openRegistry(ctx: CliContext, opts: RegistryFlagOptions, config?: DiginfraConfig, extra: { signal?: AbortSignal } = {}): Promise<RegistryClient> {
  const cfg = config ?? (await loadCliConfig(ctx));
  return createRegistryClient(cfg.registry, registryFlags(opts), { log: () => ctx.logger, ...extra });
}

