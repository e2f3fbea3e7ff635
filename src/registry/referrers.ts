/**
 * Manifests that refer to another through their `subject` (signatures): the referrers API when the
 * registry has it, else the fallback `sha256-<hex>` tag that holds an image index of them.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-referrers
 */
import { DiginfraError } from '../errors.js';
import type { OciReference } from '../reference/index.js';
import type { AuthSession } from './auth/session.js';
import { repositoryScope } from './auth/scope.js';
import { parseJson, readLimited, statusError } from './errors.js';
import { header } from './headers.js';
import { fetchManifest, putManifest } from './manifests.js';
import { OCI_INDEX, type Descriptor, type ImageIndex } from './media-types.js';

/** Referrers of `digest` in `ref`'s repository, only those of `artifactType` when given. */
export async function listReferrers(session: AuthSession, ref: OciReference, digest: string, artifactType: string | undefined, maxBytes: number): Promise<Descriptor[]> {
  const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
  const res = await session.send(ref.registry, [repositoryScope(ref.repository, ['pull'])], {
    method: 'GET',
    url: session.url(ref.registry, `/v2/${ref.repository}/referrers/${digest}${query}`),
    headers: { accept: OCI_INDEX },
  });
  let manifests: Descriptor[];
  if (res.statusCode === 200 && header(res, 'content-type')?.startsWith(OCI_INDEX)) {
    manifests = parseJson<ImageIndex>(await readLimited(res, maxBytes), ref.registry, 'the referrers request').manifests ?? [];
    const filtered = header(res, 'oci-filters-applied')?.includes('artifactType');
    if (filtered) return manifests;
  } else {
    if (res.statusCode !== 404 && res.statusCode !== 200) throw await statusError(res, ref, 'referrers');
    await res.body.dump();
    manifests = (await referrersTagIndex(session, ref, digest, maxBytes))?.manifests ?? [];
  }
  return artifactType ? manifests.filter((m) => m.artifactType === artifactType) : manifests;
}

/**
 * After a manifest was pushed to a registry without referrers support: when it has a `subject`,
 * adds it to the subject's fallback tag index (replacing an older entry of the same digest).
 */
export async function addToReferrersTag(session: AuthSession, ref: OciReference, pushed: Descriptor, bytes: Buffer, maxBytes: number): Promise<void> {
  const json = JSON.parse(bytes.toString('utf8')) as { subject?: Descriptor; artifactType?: string; config?: Descriptor; annotations?: Record<string, string> };
  if (!json.subject) return;
  const artifactType = json.artifactType ?? json.config?.mediaType;
  const referrer: Descriptor = {
    ...pushed,
    ...(artifactType !== undefined && { artifactType }),
    ...(json.annotations !== undefined && { annotations: json.annotations }),
  };
  const current = await referrersTagIndex(session, ref, json.subject.digest, maxBytes);
  const manifests = (current?.manifests ?? []).filter((m) => m.digest !== referrer.digest);
  const index: ImageIndex = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [...manifests, referrer] };
  await putManifest(session, referrersTag(ref, json.subject.digest), Buffer.from(JSON.stringify(index)), OCI_INDEX);
}

function referrersTag(ref: OciReference, digest: string): OciReference {
  return { registry: ref.registry, repository: ref.repository, tag: digest.replace(':', '-') };
}

async function referrersTagIndex(session: AuthSession, ref: OciReference, digest: string, maxBytes: number): Promise<ImageIndex | undefined> {
  try {
    const fetched = await fetchManifest(session, referrersTag(ref, digest), [OCI_INDEX], maxBytes);
    return fetched.json as unknown as ImageIndex;
  } catch (err) {
    if (err instanceof DiginfraError && err.code === 'NOT_FOUND') return undefined;
    throw err;
  }
}
