import { DiginfraError } from '../errors.js';

/**
 * A fully qualified OCI reference: `registry/repository[:tag][@digest]`.
 * Grammar: https://github.com/distribution/reference/blob/main/reference.go
 */
export interface OciReference {
  /** Host as the user wrote it (`docker.io`, `localhost:5000`, `ghcr.io`). */
  readonly registry: string;
  /** Repository path, lower-case (`library/alpine`, `diginfra/plugins/k8saudit`). */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

/** A short name looked up in the configured indexes: `name`, `name:tag`, `INDEX::name[:tag]`. */
export interface IndexedName {
  readonly name: string;
  readonly tag?: string;
  /** Set when the user pinned one index with `INDEX::name`. */
  readonly index?: string;
}

export type ArtifactRef = { kind: 'oci'; ref: OciReference } | { kind: 'name'; name: IndexedName };

export const DEFAULT_TAG = 'latest';
export const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_API_HOST = 'registry-1.docker.io';

const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REPOSITORY_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const HOST_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;
const NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;
const INDEX_NAME_RE = /^[a-z0-9][a-z0-9._-]*$/i;

function invalid(input: string, why: string, hint?: string): DiginfraError {
  return new DiginfraError('REF_INVALID', `invalid reference "${input}": ${why}`, {
    hint:
      hint ??
      'use NAME[:TAG] (looked up in indexes), INDEX::NAME[:TAG], or REGISTRY/REPOSITORY[:TAG|@sha256:DIGEST]',
  });
}

/** The largest TCP port. */
export const MAX_PORT = 65535;

/** `name[:port]` or `[v6]:port` by the reference grammar (which allows any five-digit port). */
export function isRegistryHostSyntax(host: string): boolean {
  return HOST_RE.test(host);
}

/**
 * The port of `host` when no connection can use it (0, or above 65535), else undefined: the grammar
 * lets it through, and it would only fail later, as an invalid URL.
 */
export function unusablePort(host: string): string | undefined {
  const port = /:(\d+)$/.exec(host)?.[1];
  return port !== undefined && (Number(port) < 1 || Number(port) > MAX_PORT) ? port : undefined;
}

/** True when the first path component names a registry host, by docker's rule. */
function looksLikeHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost' || component.startsWith('[');
}

function checkTag(input: string, tag: string): void {
  if (tag === '') throw invalid(input, 'empty tag after ":"');
  if (!TAG_RE.test(tag)) {
    throw invalid(input, `tag "${tag}" must be 1-128 characters of letters, digits, "_", "." and "-", not starting with "." or "-"`);
  }
}

function checkDigest(input: string, digest: string): void {
  if (!DIGEST_RE.test(digest)) {
    throw invalid(input, `digest "${digest}" must be sha256:<64 lower-case hex> (or sha512:<128 hex>)`);
  }
}

/** Splits `rest[:tag][@digest]`; the tag colon is the last one after the last slash. Both may be given. */
function splitTagAndDigest(input: string, s: string): { path: string; tag?: string; digest?: string } {
  let path = s;
  let digest: string | undefined;
  const at = path.indexOf('@');
  if (at >= 0) {
    digest = path.slice(at + 1);
    path = path.slice(0, at);
    if (digest === '') throw invalid(input, 'empty digest after "@"');
    checkDigest(input, digest);
  }
  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon > path.lastIndexOf('/')) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    checkTag(input, tag);
  }
  // `repo:tag@digest` (the form `repo push` and `artifact install` print) is kept whole: the digest
  // decides what is fetched (referenceSelector), the tag is only shown.
  return { path, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }) };
}

/**
 * Parses any form a user may type. No `/` means an index name (`k8saudit`, `k8saudit:1`); `INDEX::NAME`
 * pins one index (a `::` never appears in an OCI reference, so this never guesses); anything with a `/`
 * is an OCI reference.
 */
export function parseArtifactRef(input: string): ArtifactRef {
  const s = input.trim();
  if (s === '') throw invalid(input, 'empty reference');
  const sep = s.indexOf('::');
  if (sep >= 0) {
    const index = s.slice(0, sep);
    if (!INDEX_NAME_RE.test(index)) throw invalid(input, `index name "${index}" is empty or has characters other than letters, digits, ".", "_" and "-"`);
    const name = parseIndexedName(input, s.slice(sep + 2));
    return { kind: 'name', name: { ...name, index } };
  }
  if (!s.includes('/')) return { kind: 'name', name: parseIndexedName(input, s) };
  return { kind: 'oci', ref: parseOciReference(s) };
}

function parseIndexedName(input: string, s: string): IndexedName {
  if (s.includes('@')) throw invalid(input, 'a digest needs the full REGISTRY/REPOSITORY@sha256:... reference');
  if (s.includes('/')) throw invalid(input, 'an index name has no "/"; for a registry reference drop the "INDEX::" prefix');
  const { path: name, tag } = splitTagAndDigest(input, s);
  if (name === '') throw invalid(input, 'empty artifact name');
  if (!NAME_RE.test(name)) throw invalid(input, `artifact name "${name}" must be lower-case letters, digits, ".", "_" or "-"`);
  return tag === undefined ? { name } : { name, tag };
}

/** Parses `registry/repository[:tag][@digest]`, applying docker's defaults for Docker Hub names. */
export function parseOciReference(input: string): OciReference {
  const s = input.trim();
  if (s === '') throw invalid(input, 'empty reference');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) throw invalid(input, 'drop the URL scheme; write REGISTRY/REPOSITORY[:TAG]');
  const { path, tag, digest } = splitTagAndDigest(input, s);
  const parts = path.split('/');
  if (parts.some((p) => p === '')) throw invalid(input, 'empty path component (leading, trailing or double "/")');
  let registry: string;
  let repoParts: string[];
  if (parts.length > 1 && looksLikeHost(parts[0]!)) {
    registry = parts[0]!;
    repoParts = parts.slice(1);
    if (!isRegistryHostSyntax(registry)) throw invalid(input, `registry "${registry}" is not a valid host[:port]`);
    const port = unusablePort(registry);
    if (port !== undefined) throw invalid(input, `port ${port} of registry "${registry}" is out of range (1-${MAX_PORT})`);
  } else {
    registry = DOCKER_HUB;
    repoParts = parts;
  }
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_API_HOST) registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && repoParts.length === 1) repoParts = ['library', ...repoParts];
  const repository = repoParts.join('/');
  if (repository !== repository.toLowerCase()) throw invalid(input, `repository "${repository}" must be lower-case`);
  if (!REPOSITORY_RE.test(repository)) {
    throw invalid(input, `repository "${repository}" may only hold lower-case letters, digits and single ".", "_", "__" or "-" between them`);
  }
  if (repository.length > 255) throw invalid(input, 'repository longer than 255 characters');
  return { registry, repository, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }) };
}

/** Whether `repository` is an OCI repository path: lower-case components separated by `/`. */
export function isRepositoryPath(repository: string): boolean {
  return REPOSITORY_RE.test(repository);
}

/** The tag or digest to ask the registry for: digest first, else tag, else `latest`. */
export function referenceSelector(ref: OciReference): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}

/** A registry host as configs and indexes compare it: lower-case, Docker Hub's aliases folded into `docker.io`. */
export function registryKey(registry: string): string {
  const host = registry.trim().toLowerCase();
  return host === 'index.docker.io' || host === DOCKER_HUB_API_HOST || host === 'registry.hub.docker.com' ? DOCKER_HUB : host;
}

/** The host to open connections to (docker.io's API lives on registry-1.docker.io). */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API_HOST : registry;
}

/** Canonical text: `registry/repository[:tag][@digest]`, with `:latest` when nothing was pinned. */
export function formatReference(ref: OciReference, opts: { defaultTag?: boolean } = {}): string {
  const base = `${ref.registry}/${ref.repository}`;
  if (ref.digest) return ref.tag ? `${base}:${ref.tag}@${ref.digest}` : `${base}@${ref.digest}`;
  if (ref.tag) return `${base}:${ref.tag}`;
  return opts.defaultTag === false ? base : `${base}:${DEFAULT_TAG}`;
}

export function withTag(ref: OciReference, tag: string): OciReference {
  return { registry: ref.registry, repository: ref.repository, tag };
}

export function withDigest(ref: OciReference, digest: string): OciReference {
  return { registry: ref.registry, repository: ref.repository, ...(ref.tag !== undefined && { tag: ref.tag }), digest };
}

export function formatArtifactRef(ref: ArtifactRef): string {
  if (ref.kind === 'oci') return formatReference(ref.ref);
  const { name, tag, index } = ref.name;
  return `${index ? `${index}::` : ''}${name}${tag ? `:${tag}` : ''}`;
}
