/**
 * Builds the registry client the commands use, from the `registry` config section and per-command
 * flags. Flags apply to every host of the command; config entries to the hosts they name.
 */
import type { RegistryConfig } from '../config/types.js';
import { CredentialStore } from './auth/credentials.js';
import { RegistryClient, type CredentialSource } from './client.js';
import type { HostSettings, TransportOptions } from './transport.js';

export interface RegistryFlags {
  plainHttp?: boolean;
  caFile?: string;
  insecure?: boolean;
}

export function hostSettingsFor(registry: RegistryConfig, flags: RegistryFlags): (host: string) => Partial<HostSettings> {
  return (host) => {
    const mirror = registry.mirrors[host];
    const target = mirror ?? host;
    const caFile = flags.caFile ?? registry.caFiles[target] ?? registry.caFiles[host] ?? registry.caFiles['*'];
    return {
      plainHttp: flags.plainHttp === true || registry.plainHttp.includes(target) || registry.plainHttp.includes(host),
      insecureSkipTlsVerify: flags.insecure === true || registry.insecureSkipTlsVerify.includes(target),
      ...(caFile !== undefined && { caFile }),
      ...(mirror !== undefined && { mirror }),
    };
  };
}

/** Credentials for a registry; a mirror's own credentials are used when the registry has none. */
export function credentialsFor(registry: RegistryConfig, store: CredentialStore): CredentialSource {
  return {
    async get(host) {
      const own = await store.get(host);
      const mirror = registry.mirrors[host];
      return own ?? (mirror ? store.get(mirror) : undefined);
    },
  };
}

export function createRegistryClient(
  registry: RegistryConfig,
  flags: RegistryFlags = {},
  extra: Pick<TransportOptions, 'onResponse' | 'retry' | 'env'> & { store?: CredentialStore } = {},
): RegistryClient {
  const store = extra.store ?? new CredentialStore(registry.authFile ? { extraFiles: [registry.authFile] } : {});
  return new RegistryClient({
    hostSettings: hostSettingsFor(registry, flags),
    credentials: credentialsFor(registry, store),
    userAgent: 'diginfractl/0.1.0',
    ...(extra.onResponse !== undefined && { onResponse: extra.onResponse }),
    ...(extra.retry !== undefined && { retry: extra.retry }),
    ...(extra.env !== undefined && { env: extra.env }),
  });
}
