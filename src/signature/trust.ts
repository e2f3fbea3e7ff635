/**
 * The trust roots keyless verification checks against: which Fulcio CAs may issue signing
 * certificates, which Rekor keys may sign log entries, which CT logs vouch for certificates, which
 * timestamp authorities may date a signature. That is a Sigstore `trusted_root.json`
 * (https://github.com/sigstore/protobuf-specs/blob/main/protos/sigstore_trustroot.proto), the
 * format cosign's `--trusted-root` takes.
 *
 * Where it comes from, in order:
 *  1. a file the user gives (a private Sigstore deployment, or an air-gapped node): used as is;
 *  2. the Sigstore public-good root through TUF (@sigstore/tuf), its metadata cached in
 *     `<cacheDir>/tuf` and the verified root copied to `<cacheDir>/trusted_root.json`;
 *  3. when TUF cannot be reached (or `offline`): that copy, else the root @sigstore/tuf ships, with
 *     a warning. A node with no network verifies; it is never stopped by a TUF fetch error.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { TrustMaterial } from '@sigstore/verify';
import { DiginfraError, messageOf } from '../errors.js';
import { writeFileAtomic } from '../util/index.js';

/** The Sigstore public-good TUF repository, whose first root and trusted root @sigstore/tuf ships. */
export const PUBLIC_GOOD_TUF = 'https://tuf-repo-cdn.sigstore.dev';
/** Per-request timeout of a TUF refresh: a node without network should not wait long for it. */
const DEFAULT_TUF_TIMEOUT_MS = 5_000;
const TRUSTED_ROOT_FILE = 'trusted_root.json';
const MEDIA_TYPE_PREFIX = 'application/vnd.dev.sigstore.trustedroot';

export interface TrustOptions {
  /** A Sigstore trusted_root.json (cosign's `--trusted-root`): used instead of the public-good root; no TUF. */
  trustedRootFile?: string;
  /** Where TUF metadata and the last refreshed root are kept (e.g. `~/.cache/diginfractl/sigstore`). */
  cacheDir: string;
  /** No network at all: the cached root, else the one shipped with @sigstore/tuf. */
  offline?: boolean;
  /** Another TUF repository (tests); default PUBLIC_GOOD_TUF. Only the public-good one has a shipped root. */
  tufMirror?: string;
  /** Per-request timeout of the TUF refresh, default DEFAULT_TUF_TIMEOUT_MS (5 s). */
  timeoutMs?: number;
}

/** Trust material ready for verification, and where it came from. */
export interface TrustRoot {
  readonly material: TrustMaterial;
  /** How many CT logs the root names: when it names any, a certificate must carry an SCT from one. */
  readonly ctlogs: number;
  /** Where the root came from, in words (`artifact info`, logs). */
  readonly source: string;
  /** Set when a refresh failed and a cached or shipped root is used instead: the caller logs it. */
  readonly warning?: string;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A parsed trusted_root.json to trust material; `source` names it in errors. Throws CONFIG_INVALID
 * when it is not one (wrong media type, no certificate authority, a key that does not parse).
 */
export async function trustFromJson(json: unknown, source: string): Promise<TrustRoot> {
  const bad = (why: string, cause?: unknown) =>
    new DiginfraError('CONFIG_INVALID', `${source} is not a usable Sigstore trusted root: ${why}`, {
      hint: 'give the trusted_root.json of your Sigstore deployment (what `cosign trusted-root create` writes, or `cosign --trusted-root` takes)',
      ...(cause !== undefined && { cause }),
    });
  if (!isMap(json)) throw bad('it is not a JSON object');
  if (typeof json.mediaType !== 'string' || !json.mediaType.startsWith(MEDIA_TYPE_PREFIX)) {
    throw bad(`its mediaType is ${JSON.stringify(json.mediaType)}, not ${MEDIA_TYPE_PREFIX}...`);
  }
  if (!Array.isArray(json.certificateAuthorities) || json.certificateAuthorities.length === 0) {
    throw bad('it names no certificate authority, so no signing certificate can be trusted');
  }
  const [{ TrustedRoot }, { toTrustMaterial }] = await Promise.all([import('@sigstore/protobuf-specs'), import('@sigstore/verify')]);
  try {
    const root = TrustedRoot.fromJSON(json);
    return { material: toTrustMaterial(root), ctlogs: root.ctlogs.length, source };
  } catch (err) {
    throw bad(messageOf(err), err);
  }
}

async function readTrustedRootFile(path: string, what: string): Promise<TrustRoot> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new DiginfraError('CONFIG_INVALID', `cannot read the Sigstore trusted root ${path}: ${messageOf(err)}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new DiginfraError('CONFIG_INVALID', `the Sigstore trusted root ${path} is not JSON: ${messageOf(err)}`, { cause: err });
  }
  return trustFromJson(json, what);
}

/** The public-good trusted root shipped inside @sigstore/tuf (its TUF seed), as JSON. */
function shippedTrustedRoot(): unknown {
  const require = createRequire(import.meta.url);
  const seeds = require('@sigstore/tuf/seeds.json') as Record<string, { targets?: Record<string, string> }>;
  const encoded = seeds[PUBLIC_GOOD_TUF]?.targets?.[TRUSTED_ROOT_FILE];
  if (encoded === undefined) throw new DiginfraError('IO', `@sigstore/tuf ships no ${TRUSTED_ROOT_FILE} for ${PUBLIC_GOOD_TUF}; reinstall diginfractl`);
  return JSON.parse(Buffer.from(encoded, 'base64').toString('utf8'));
}

/** The last refreshed root in `cacheDir`, else the shipped one; `why` says why no fresh one is used. */
async function fallbackRoot(cacheDir: string, why: string | undefined): Promise<TrustRoot> {
  const cached = join(cacheDir, TRUSTED_ROOT_FILE);
  if (existsSync(cached)) {
    try {
      const root = await readTrustedRootFile(cached, `the Sigstore trusted root cached in ${cached}`);
      return why === undefined ? root : { ...root, warning: `${why}; verifying with the root cached in ${cached}` };
    } catch (err) {
      why = `${why ?? 'offline'}; the cached root is unusable (${messageOf(err)})`;
    }
  }
  const root = await trustFromJson(shippedTrustedRoot(), 'the Sigstore public-good root shipped with diginfractl');
  return why === undefined ? root : { ...root, warning: `${why}; verifying with the root shipped with diginfractl` };
}

/** One TUF refresh of the public-good root; `forceCache` uses unexpired cached metadata without the network. */
async function refreshThroughTuf(opts: TrustOptions, forceCache: boolean): Promise<unknown> {
  const [{ getTrustedRoot }, { TrustedRoot }] = await Promise.all([import('@sigstore/tuf'), import('@sigstore/protobuf-specs')]);
  const root = await getTrustedRoot({
    cachePath: join(opts.cacheDir, 'tuf'),
    mirrorURL: opts.tufMirror ?? PUBLIC_GOOD_TUF,
    forceCache,
    timeout: opts.timeoutMs ?? DEFAULT_TUF_TIMEOUT_MS,
    retry: { retries: 1 },
  });
  return TrustedRoot.toJSON(root);
}

/** Where @sigstore/tuf keeps the metadata of a mirror under its cache path (its layout, see client.ts there). */
function tufTimestampFile(opts: TrustOptions): string {
  const url = new URL(opts.tufMirror ?? PUBLIC_GOOD_TUF);
  return join(opts.cacheDir, 'tuf', encodeURIComponent(url.host + url.pathname.replace(/\/$/, '')), 'timestamp.json');
}

/**
 * The trust root to verify keyless signatures with (see the module comment for the order). Never
 * fails for lack of network; fails (CONFIG_INVALID) only for a given file that is not a trusted root.
 */
export async function loadTrustMaterial(opts: TrustOptions): Promise<TrustRoot> {
  if (opts.trustedRootFile !== undefined) {
    return readTrustedRootFile(opts.trustedRootFile, `the Sigstore trusted root ${opts.trustedRootFile}`);
  }
  if (opts.offline) return fallbackRoot(opts.cacheDir, undefined);
  let json: unknown;
  try {
    // Unexpired cached metadata answers without the network; expired (or none) takes a real refresh.
    json = existsSync(tufTimestampFile(opts))
      ? await refreshThroughTuf(opts, true).catch(() => refreshThroughTuf(opts, false))
      : await refreshThroughTuf(opts, false);
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    return fallbackRoot(opts.cacheDir, `the Sigstore trusted root could not be refreshed from ${opts.tufMirror ?? PUBLIC_GOOD_TUF} (${messageOf(err)}${cause ? `: ${messageOf(cause)}` : ''})`);
  }
  const root = await trustFromJson(json, `the Sigstore trusted root refreshed through TUF from ${opts.tufMirror ?? PUBLIC_GOOD_TUF}`);
  const cached = join(opts.cacheDir, TRUSTED_ROOT_FILE);
  try {
    await writeFileAtomic(cached, JSON.stringify(json));
  } catch (err) {
    // The fresh root verifies as well without its copy; a later offline run falls back further.
    return { ...root, warning: `the refreshed Sigstore trusted root could not be cached in ${cached} (${messageOf(err)})` };
  }
  return root;
}

/**
 * loadTrustMaterial on first use, kept for every later verification: for the whole run of a command,
 * or for `ttlMs` in a long-running agent (so a TUF refresh brings rotated keys in). A failed load is
 * not kept. `onWarning` hears each load's warning (a refresh that fell back to a cached or shipped root).
 */
export function trustLoader(opts: TrustOptions & { ttlMs?: number }, onWarning?: (message: string) => void): () => Promise<TrustRoot> {
  let memo: Promise<TrustRoot> | undefined;
  let at = 0;
  return () => {
    if (memo === undefined || (opts.ttlMs !== undefined && Date.now() - at > opts.ttlMs)) {
      at = Date.now();
      const loading = loadTrustMaterial(opts).then((root) => {
        if (root.warning !== undefined) onWarning?.(root.warning);
        return root;
      });
      memo = loading;
      loading.catch(() => {
        if (memo === loading) memo = undefined;
      });
    }
    return memo;
  };
}
