/**
 * The shape of `diginfractl.yaml`. Every key is optional in the file; `defaultConfig()` fills the rest.
 * docs/configuration.md documents each key and its DIGINFRACTL_* environment variable.
 */
export interface IndexConfig {
  /** Unique name, used by `index remove|update` and by `INDEX::name` references. */
  name: string;
  /** https://, http:// (warned), file:// or a plain path. */
  url: string;
  /** ISO time the index was added. */
  added?: string;
  /** falcoctl compatibility: `https`, `http` or `file`; informational, the URL scheme decides. */
  backend?: string;
}

/** HTTP basic credentials for one registry host (falcoctl's `registry.auth.basic`). */
export interface BasicAuthConfig {
  registry: string;
  user: string;
  /** Secret: masked by `config show`, never logged. */
  password: string;
}

/** OAuth2 client-credentials for one registry host (falcoctl's `registry.auth.oauth`). */
export interface OauthAuthConfig {
  registry: string;
  clientID: string;
  /** Secret: masked by `config show`, never logged. */
  clientSecret: string;
  tokenURL: string;
  scopes?: string[];
}

/** Registries whose credentials come from Google Cloud's application default credentials. */
export interface GcpAuthConfig {
  registry: string;
}

export interface RegistryAuthConfig {
  basic: BasicAuthConfig[];
  oauth: OauthAuthConfig[];
  gcp: GcpAuthConfig[];
}

/**
 * How long a registry may keep us waiting, and how often a request is tried. Unset values take the
 * defaults of the running command (src/registry/timeouts.ts: registryTimeouts): the follow agent's
 * are shorter than those of one-off commands.
 */
export interface RegistryTimeoutsConfig {
  /** Longest silence (a duration) while waiting for response headers and between two chunks of a body. */
  read?: string;
  /** Tries of each request, and of each blob download of `artifact install`, the first included. */
  attempts?: number;
}

export interface RegistryConfig {
  /** Hosts (host[:port]) reached over plain HTTP instead of HTTPS. */
  plainHttp: string[];
  /** Hosts whose TLS certificate is not verified. Off by default; only for testing. */
  insecureSkipTlsVerify: string[];
  /** PEM CA bundle per host; `*` applies to every host. */
  caFiles: Record<string, string>;
  /**
   * Pull-through mirrors: registry host -> mirror host, or several tried in order (a list, or hosts
   * separated by spaces): `ghcr.io: mirror.local:5000`, `ghcr.io: [m1:5000, m2:5000]`. The registry
   * itself is tried after them (src/registry/mirrors.ts).
   */
  mirrors: Record<string, string | string[]>;
  /**
   * PEM public keys: when any is set, every artifact pulled, installed or followed must carry a cosign
   * signature that one of them verifies (src/signature/cosign.ts).
   */
  cosignKeys: string[];
  /**
   * Where artifacts may come from: hosts (`ghcr.io`) or `host/repository-prefix` patterns
   * (`ghcr.io/falcosecurity`). Empty: anywhere. When set, nothing outside it is pulled, installed or
   * followed (src/registry/allowed.ts).
   */
  allowed: string[];
  /** A Sigstore trusted_root.json to verify keyless signatures with, instead of the public-good root through TUF. */
  trustedRoot?: string;
  /** docker config.json style credentials file to read besides the default ones. */
  authFile?: string;
  /** Credentials written in the config file itself (falcoctl compatible); absent when none are set. */
  auth?: RegistryAuthConfig;
  /** Idle-read timeout and retry budget; absent when neither is set. */
  timeouts?: RegistryTimeoutsConfig;
}

export interface InstallConfig {
  refs: string[];
  rulesfilesDir: string;
  pluginsDir: string;
  resolveDeps: boolean;
  /** Empty means every type is allowed. */
  allowedTypes: string[];
  /** os/arch; empty means this machine's. */
  platform?: string;
  engineVersion?: string;
  lockfile?: string;
  /** Directories of the other artifact types, by type (`asset: /etc/diginfra/assets`); a type without one is not installed. */
  dirs: Record<string, string>;
}

export interface FollowConfig {
  refs: string[];
  /** Duration like `6h`, `30m`, `10s`. */
  every: string;
  cron?: string;
  jitter: number;
  rulesfilesDir: string;
  pluginsDir: string;
  stateDir: string;
  allowedTypes: string[];
  engineVersion?: string;
  engineVersionsUrl?: string;
  validateCmd?: string;
  metricsAddr?: string;
  /** Directories of the other artifact types, by type, as install.dirs. */
  dirs: Record<string, string>;
}

export interface DiginfraConfig {
  indexes: IndexConfig[];
  registry: RegistryConfig;
  install: InstallConfig;
  follow: FollowConfig;
  /** Blob cache dir; default $XDG_CACHE_HOME/diginfractl. */
  cacheDir?: string;
  /** `artifact install` removes cached blobs unused for this long (Go-style duration; `0`: never); default 720h. */
  cacheMaxAge?: string;
  /**
   * Verify signatures wherever a policy applies (index entries, registry.cosignKeys); default true.
   * false (or `--no-verify`) installs unverified, with a warning on every run.
   */
  verify: boolean;
}

/** Where an effective value came from; flags > env > file > defaults. */
export type ConfigSource = 'default' | 'file' | 'env' | 'flag';

/** Source of every leaf key, by dotted path (`install.refs`, `registry.plainHttp`, `indexes`). */
export type ConfigSources = Record<string, ConfigSource>;

export const DEFAULT_INDEX: IndexConfig = {
  name: 'diginfra',
  url: 'https://diginfra.github.io/diginfractl/index.yaml',
};

export function defaultConfig(): DiginfraConfig {
  return {
    indexes: [{ ...DEFAULT_INDEX }],
    registry: { plainHttp: [], insecureSkipTlsVerify: [], caFiles: {}, mirrors: {}, cosignKeys: [], allowed: [] },
    install: {
      refs: [],
      rulesfilesDir: '/etc/diginfra',
      pluginsDir: '/usr/share/diginfra/plugins',
      resolveDeps: true,
      allowedTypes: [],
      dirs: {},
    },
    follow: {
      refs: [],
      every: '6h',
      jitter: 0.1,
      rulesfilesDir: '/etc/diginfra',
      pluginsDir: '/usr/share/diginfra/plugins',
      stateDir: '/var/lib/diginfractl',
      allowedTypes: ['rulesfile'],
      dirs: {},
    },
    verify: true,
  };
}
