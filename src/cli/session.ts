/**
 * What most actions need besides their own options: the effective config and a registry client
 * built from it and the command's registry flags.
 */
import type { DiginfraConfig } from '../config/types.js';
import { loadConfig } from '../config/load.js';
import type { OciReference } from '../reference/reference.js';
import { type ArtifactSource, createRegistryClient, type RegistryClient, type RegistryFlags } from '../registry/index.js';
import type { CliContext } from './run.js';

export interface RegistryFlagOptions {
  plainHttp?: boolean;
  caFile?: string;
  insecure?: boolean;
}

/**
 * Checks that the artifact a reference resolved to is signed with one of the verification keys
 * (`--verify-key`, else registry.cosignKeys); undefined when no key is set. Keys are read now, so a
 * bad key file fails before anything is fetched.
 */
export type Verifier = (client: ArtifactSource, ref: OciReference & { digest: string }) => Promise<void>;

export async function verifierFor(config: DiginfraConfig, verifyKey: readonly string[] | undefined): Promise<Verifier | undefined> {
  const paths = verifyKey && verifyKey.length > 0 ? verifyKey : config.registry.cosignKeys;
  if (paths.length === 0) return undefined;
  const { loadPublicKeys, verifyDigest } = await import('../signature/cosign.js');
  const keys = loadPublicKeys(paths);
  return (client, ref) => verifyDigest(client, ref, ref.digest, keys);
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

export async function openRegistry(ctx: CliContext, opts: RegistryFlagOptions, config?: DiginfraConfig): Promise<RegistryClient> {
  const cfg = config ?? (await loadCliConfig(ctx));
  return createRegistryClient(cfg.registry, registryFlags(opts), { log: () => ctx.logger });
}

