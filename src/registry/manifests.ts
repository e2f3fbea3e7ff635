/**
 * Manifests and image indexes by tag or digest: HEAD (resolve), GET (verified against the digest),
 * PUT and DELETE. https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
 */
import { DiginfraError } from '../errors.js';
import { formatReference, referenceSelector, type OciReference } from '../reference/index.js';
import type { AuthSession } from './auth/session.js';
import { repositoryScope } from './auth/scope.js';
import { sha256Digest } from './digest.js';
import { readLimited, statusError } from './errors.js';
import { header } from './headers.js';
import { MANIFEST_ACCEPT, OCI_MANIFEST, type Descriptor } from './media-types.js';

export interface FetchedManifest {
  descriptor: Descriptor;
  bytes: Buffer;
  /** Parsed JSON of the manifest or index. */
  json: Record<string, unknown>;
}

function manifestUrl(session: AuthSession, ref: OciReference): string {
  return session.url(ref.registry, `/v2/${ref.repository}/manifests/${referenceSelector(ref)}`);
}

/** GET of a manifest or index, verified against the digest asked for (or the registry's header). */
export async function fetchManifest(session: AuthSession, ref: OciReference, accept: string[], maxBytes: number): Promise<FetchedManifest> {
  const res = await session.send(ref.registry, [repositoryScope(ref.repository, ['pull'])], {
    method: 'GET',
    url: manifestUrl(session, ref),
    headers: { accept: accept.join(', ') },
  });
  if (res.statusCode !== 200) throw await statusError(res, ref, 'manifest');
  const bytes = await readLimited(res, maxBytes);
  const digest = sha256Digest(bytes);
  const expected = ref.digest ?? header(res, 'docker-content-digest');
  if (expected && expected.startsWith('sha256:') && expected !== digest) {
    throw new DiginfraError('DIGEST_MISMATCH', `manifest ${formatReference(ref)} has digest ${digest}, expected ${expected}`);
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new DiginfraError('ARTIFACT_INVALID', `manifest ${formatReference(ref)} is not JSON`);
  }
  const mediaType =
    (typeof json.mediaType === 'string' ? json.mediaType : undefined) ?? header(res, 'content-type')?.split(';')[0]?.trim() ?? OCI_MANIFEST;
  return { descriptor: { mediaType, digest, size: bytes.length }, bytes, json };
}

/**
 * HEAD of a manifest: its digest, media type and size, without downloading it. A registry that
 * leaves those headers out is asked with a GET.
 */
export async function resolveManifest(session: AuthSession, ref: OciReference, maxBytes: number): Promise<Descriptor> {
  const res = await session.send(ref.registry, [repositoryScope(ref.repository, ['pull'])], {
    method: 'HEAD',
    url: manifestUrl(session, ref),
    headers: { accept: MANIFEST_ACCEPT.join(', ') },
  });
  await res.body.dump();
  if (res.statusCode !== 200) throw await statusError(res, ref, 'manifest');
  const digest = header(res, 'docker-content-digest') ?? ref.digest;
  const mediaType = header(res, 'content-type');
  const size = Number(header(res, 'content-length'));
  if (!digest || !mediaType || !Number.isFinite(size)) {
    // Some registries omit these on HEAD; the GET computes them.
    return (await fetchManifest(session, ref, MANIFEST_ACCEPT, maxBytes)).descriptor;
  }
  if (ref.digest && digest !== ref.digest) {
    throw new DiginfraError('DIGEST_MISMATCH', `${formatReference(ref)}: registry reports digest ${digest}`);
  }
  return { mediaType: mediaType.split(';')[0]!.trim(), digest, size };
}

/**
 * PUT of a manifest under a tag or digest. `subjectSupported` tells whether the registry announced
 * referrers support (`OCI-Subject`); without it, a manifest with a `subject` needs the fallback tag.
 */
export async function putManifest(session: AuthSession, ref: OciReference, bytes: Buffer, mediaType: string): Promise<{ descriptor: Descriptor; subjectSupported: boolean }> {
  const digest = sha256Digest(bytes);
  const res = await session.send(ref.registry, [repositoryScope(ref.repository, ['pull', 'push'])], {
    method: 'PUT',
    url: manifestUrl(session, ref),
    headers: { 'content-type': mediaType },
    body: () => bytes,
  });
  if (res.statusCode !== 201 && res.statusCode !== 200) throw await statusError(res, ref, 'manifest push');
  const reported = header(res, 'docker-content-digest');
  const subjectSupported = header(res, 'oci-subject') !== undefined;
  await res.body.dump();
  if (reported && reported !== digest) {
    throw new DiginfraError('DIGEST_MISMATCH', `registry stored manifest as ${reported}, we sent ${digest}`);
  }
  return { descriptor: { mediaType, digest, size: bytes.length }, subjectSupported };
}

export async function deleteManifest(session: AuthSession, ref: OciReference & { digest: string }): Promise<void> {
  const res = await session.send(ref.registry, [repositoryScope(ref.repository, ['delete'])], {
    method: 'DELETE',
    url: manifestUrl(session, ref),
  });
  if (res.statusCode !== 202 && res.statusCode !== 200) throw await statusError(res, ref, 'manifest delete');
  await res.body.dump();
}
