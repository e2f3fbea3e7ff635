/**
 * Builds the registry client the commands use, from the `registry` config section and per-command
 * flags. Flags apply to every host of the command; config entries to the hosts they name. Mirrors
 * (`registry.mirrors`) are tried before the registry itself, with fallback: src/registry/mirrors.ts.
 */
import type { RegistryConfig } from '../config/index.js';
import { registryKey } from '../reference/index.js';
import { CredentialStore } from './auth/credentials.js';
import { GOOGLE_REGISTRY_USER, sharedGoogleSource } from './auth/google.js';
import { sharedOAuthSource, type OAuthTokenSource } from './auth/oauth.js';
import type { Credential, CredentialSource } from './auth/session.js';
import { RegistryClient } from './client.js';
import { MirroredRegistryClient, mirrorsOf, type SourceLog } from './mirrors.js';
import { registryTimeouts } from './timeouts.js';
import type { HostSettings, TransportOptions } from './transport.js';

export interface RegistryFlags {
  plainHttp?: boolean;
  caFile?: string;
  insecure?: boolean;
}

/**
 * The connection settings of a registry host itself (its mirrors get their own: mirrorSettingsFor).
 * Flags apply to every host of the command; config entries to the hosts they name.
 */
export function hostSettingsFor(registry: RegistryConfig, flags: RegistryFlags): (host: string) => Partial<HostSettings> {
  return (host) => {
    const caFile = flags.caFile ?? registry.caFiles[host] ?? registry.caFiles['*'];
    return {
      plainHttp: flags.plainHttp === true || registry.plainHttp.includes(host),
      insecureSkipTlsVerify: flags.insecure === true || registry.insecureSkipTlsVerify.includes(host),
      ...(caFile !== undefined && { caFile }),
    };
  };
}

/**
 * The settings of reads through `mirror`: its host contacted instead of the registry's, with the
 * mirror's own TLS entries (or the registry's, when the mirror has none).
 */
function mirrorSettingsFor(registry: RegistryConfig, flags: RegistryFlags, mirror: string): (host: string) => Partial<HostSettings> {
  const own = hostSettingsFor(registry, flags);
  return (host) => {
    const m = own(mirror);
    const h = own(host);
    const caFile = flags.caFile ?? registry.caFiles[mirror] ?? registry.caFiles[host] ?? registry.caFiles['*'];
    return {
      plainHttp: m.plainHttp === true || h.plainHttp === true,
      insecureSkipTlsVerify: m.insecureSkipTlsVerify === true,
      ...(caFile !== undefined && { caFile }),
      mirror,
    };
  };
}

/** The registry host a `registry.auth.*` entry names, compared case-insensitively, Docker Hub's aliases folded. */
function configHost(host: string): string {
  return registryKey(host);
}

export interface ConfigCredentialOptions {
  /** CA bundle for an OAuth token URL's host (`host[:port]`), when one is configured. */
  caFileFor?: (host: string) => string | undefined;
  /** Environment for proxy variables of OAuth token requests. */
  env?: NodeJS.ProcessEnv;
  userAgent?: string;
}

/**
 * Credentials written in the config file (`registry.auth.oauth`, then `registry.auth.gcp`, then
 * `registry.auth.basic`): what the operator configured explicitly for a host. The first entry naming a
 * host wins.
 */
export function configCredentials(registry: RegistryConfig, opts: ConfigCredentialOptions = {}): CredentialSource {
  const oauth = new Map<string, OAuthTokenSource>();
  for (const entry of registry.auth?.oauth ?? []) {
    const host = configHost(entry.registry);
    if (oauth.has(host)) continue;
    let caFile: string | undefined;
    try {
      caFile = opts.caFileFor?.(new URL(entry.tokenURL).host);
    } catch {
      caFile = undefined; // validation already refused a tokenURL that is not a URL
    }
    oauth.set(
      host,
      sharedOAuthSource(
        { clientID: entry.clientID, clientSecret: entry.clientSecret, tokenURL: entry.tokenURL, ...(entry.scopes !== undefined && { scopes: entry.scopes }) },
        entry.registry,
        {
          ...(caFile !== undefined && { caFile }),
          ...(opts.env !== undefined && { env: opts.env }),
          ...(opts.userAgent !== undefined && { userAgent: opts.userAgent }),
        },
      ),
    );
  }
  // Google's application default credentials (src/registry/auth/google.ts), one source for the process.
  const gcp = new Set((registry.auth?.gcp ?? []).map((e) => configHost(e.registry)));
  const basic = new Map<string, Credential>();
  for (const entry of registry.auth?.basic ?? []) {
    const host = configHost(entry.registry);
    if (!basic.has(host)) basic.set(host, { username: entry.user, password: entry.password, origin: 'registry.auth.basic in the config file' });
  }
  return {
    async get(host) {
      const key = configHost(host);
      const source = oauth.get(key);
      if (source) {
        const { value, renewAt } = await source.tokenWithRenewal();
        return { registryToken: value, expiresAt: renewAt };
      }
      if (gcp.has(key)) {
        const google = sharedGoogleSource({ ...(opts.env !== undefined && { env: opts.env }), ...(opts.userAgent !== undefined && { userAgent: opts.userAgent }) });
        const { value, renewAt } = await google.tokenWithRenewal(host);
        return { username: GOOGLE_REGISTRY_USER, password: value, expiresAt: renewAt, origin: 'registry.auth.gcp (Google application default credentials)' };
      }
      const cred = basic.get(key);
      return cred ? { ...cred } : undefined;
    },
  };
}

/** A host's credentials: the config file's own (`registry.auth.*`) before credential files. */
function credentialLookup(registry: RegistryConfig, store: CredentialSource, opts: ConfigCredentialOptions): (host: string) => Promise<Credential | undefined> {
  const configured = configCredentials(registry, opts);
  return async (host) => (await configured.get(host)) ?? (await store.get(host));
}

/**
 * Credentials for a registry: its own, else its first mirror's (what a registry with one mirror, read
 * only through it, was sent before mirrors fell back to the registry). The client itself sends each
 * host only what is meant for it: ownCredentialsFor and mirrorCredentialsFor.
 */
export function credentialsFor(registry: RegistryConfig, store: CredentialSource, opts: ConfigCredentialOptions = {}): CredentialSource {
  const lookup = credentialLookup(registry, store, opts);
  return {
    async get(host) {
      const mirror = mirrorsOf(registry, host)[0];
      return (await lookup(host)) ?? (mirror ? lookup(mirror) : undefined);
    },
    // The config's own entries change with the config (a new client); the store's files change under it.
    generation: () => store.generation?.() ?? 0,
  };
}

/** The credential files a client built from this config reads: `registry.authFile` between ours and docker's. */
export function credentialStoreFor(registry: RegistryConfig): CredentialStore {
  return new CredentialStore(registry.authFile ? { extraFiles: [registry.authFile] } : {});
}

/**
 * The files a client built from this config and these flags depends on, besides the config itself:
 * the credential files it reads and the CA bundles it trusts. A long-running command watches them
 * (src/util/watch-files.ts) and tells the client when they change: CredentialStore.changed(),
 * Transport.reloadTls().
 */
export function registryFiles(registry: RegistryConfig, flags: RegistryFlags, store: CredentialStore): { credentials: string[]; ca: string[] } {
  const ca = [...(flags.caFile !== undefined ? [flags.caFile] : []), ...Object.values(registry.caFiles)];
  return { credentials: [...store.files], ca: [...new Set(ca)] };
}

/** Credentials of the registry itself: never a mirror's, which are not for it. */
function ownCredentialsFor(registry: RegistryConfig, store: CredentialSource, opts: ConfigCredentialOptions): CredentialSource {
  return { get: credentialLookup(registry, store, opts) };
}

/** Credentials for reads of a registry through `mirror`: the mirror's own, else the registry's. */
function mirrorCredentialsFor(registry: RegistryConfig, store: CredentialSource, mirror: string, opts: ConfigCredentialOptions): CredentialSource {
  const lookup = credentialLookup(registry, store, opts);
  return { get: async (host) => (await lookup(mirror)) ?? (await lookup(host)) };
}

export interface ClientExtras extends Pick<TransportOptions, 'retry' | 'env' | 'signal' | 'onResponse'> {
  store?: CredentialStore;
  /** 'agent' for `artifact follow`: its timeouts (registryTimeouts). */
  role?: 'command' | 'agent';
  /** Where reads through mirrors are logged (which source served each blob, each fallback); asked for only then. */
  log?: () => SourceLog;
}

/**
 * The client of the commands. With `registry.mirrors`, reads of a mirrored registry try its mirrors
 * first and fall back to the next one, then to the registry itself (src/registry/mirrors.ts); a
 * mirror gets one attempt per request, so a failing one costs no backoff.
 */
export function createRegistryClient(registry: RegistryConfig, flags: RegistryFlags = {}, extra: ClientExtras = {}): RegistryClient {
  const timeouts = registryTimeouts(registry, extra.role);
  const store = extra.store ?? credentialStoreFor(registry);
  const userAgent = 'diginfractl/0.1.0';
  const credentialOptions: ConfigCredentialOptions = {
    // The token URL is trusted like any host of the command: --ca-file, else registry.caFiles.
    caFileFor: (host) => flags.caFile ?? registry.caFiles[host] ?? registry.caFiles['*'],
    userAgent,
    ...(extra.env !== undefined && { env: extra.env }),
  };
  // The transport reports each exchange with its source: the mirror's host, or `origin`.
  const shared = {
    userAgent,
    readTimeoutMs: timeouts.readTimeoutMs,
    ...(extra.onResponse !== undefined && { onResponse: extra.onResponse }),
    ...(extra.env !== undefined && { env: extra.env }),
    ...(extra.signal !== undefined && { signal: extra.signal }),
  };
  const origin = {
    ...shared,
    hostSettings: hostSettingsFor(registry, flags),
    credentials: ownCredentialsFor(registry, store, credentialOptions),
    retry: { attempts: timeouts.attempts, ...extra.retry },
  };
  if (Object.keys(registry.mirrors).length === 0) return new RegistryClient(origin);
  return new MirroredRegistryClient(origin, {
    mirrorsOf: (host) => mirrorsOf(registry, host),
    clientFor: (mirror) =>
      new RegistryClient({
        ...shared,
        hostSettings: mirrorSettingsFor(registry, flags, mirror),
        credentials: mirrorCredentialsFor(registry, store, mirror, credentialOptions),
        retry: { ...extra.retry, attempts: 1 },
      }),
    ...(extra.log !== undefined && { log: extra.log }),
  });
}
