/**
 * `artifact install oci:DIR[:TAG]`: installing from an OCI image layout on disk (what `repo copy ...
 * oci:DIR` writes to carry artifacts into an air-gapped network), offline, with the dependencies
 * found in the same layout.
 *
 * A layout artifact is named by an OciReference whose registry is `oci:` and the layout's parent
 * directory and whose repository is the layout directory's name, so that `formatReference` prints it
 * as typed (`oci:/media/usb/diginfra:3@sha256:...`) and the lock file records where it came from.
 * `withOciLayouts` routes the reads of such references to the layout; the rest of the install (the
 * blob cache, staging, signature checks) reads through it as from a registry.
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { OciLayout, layoutSource, parseLayoutRef, resolveArtifact, type ResolvedArtifact } from '../artifact/index.js';
import { DiginfraError, isDiginfraError, messageOf } from '../errors.js';
import type { Platform } from '../platform/index.js';
import type { OciReference } from '../reference/index.js';
import type { ArtifactSource, Descriptor, RegistryClient } from '../registry/index.js';

const LAYOUT_PREFIX = 'oci:';
const REF_NAME = 'org.opencontainers.image.ref.name';

/**
 * The reference of a layout (`oci:DIR[:TAG]` or `oci:DIR@DIGEST`), DIR made absolute; undefined for
 * anything else. Without a tag, none is set: the tag is chosen as for a registry (selectTag).
 */
export function layoutReference(text: string): OciReference | undefined {
  const parsed = parseLayoutRef(text.trim());
  if (!parsed) return undefined;
  const dir = resolve(parsed.dir);
  if (basename(dir) === '') throw new DiginfraError('REF_INVALID', `"${text}": the OCI layout cannot be the root directory`);
  return {
    registry: `${LAYOUT_PREFIX}${dirname(dir)}`,
    repository: basename(dir),
    ...(parsed.digest !== undefined && { digest: parsed.digest }),
    ...(parsed.tag !== undefined && { tag: parsed.tag }),
  };
}

/** Whether `ref` names an artifact in an OCI layout (see layoutReference). */
export function isLayoutReference(ref: Pick<OciReference, 'registry'>): boolean {
  return ref.registry.startsWith(LAYOUT_PREFIX);
}

/** The directory of a layout reference. */
export function layoutDir(ref: Pick<OciReference, 'registry' | 'repository'>): string {
  return join(ref.registry.slice(LAYOUT_PREFIX.length), ref.repository);
}

function notInLayout(ref: OciReference, what: string): DiginfraError {
  return new DiginfraError('USAGE', `${what} is not something an OCI layout on disk offers (${layoutDir(ref)})`);
}

/**
 * `client`, with the reads of layout references (manifests, blobs, tags) answered by the layout on
 * disk: nothing of those goes to the network. Writes to a layout reference are refused.
 */
export function withOciLayouts(client: RegistryClient): RegistryClient {
  const layouts = new Map<string, { layout: OciLayout; source: ArtifactSource }>();
  const of = (ref: OciReference) => {
    const dir = layoutDir(ref);
    let l = layouts.get(dir);
    if (!l) {
      const layout = new OciLayout(dir);
      l = { layout, source: layoutSource(layout) };
      layouts.set(dir, l);
    }
    return l;
  };
  const routed: Partial<Record<keyof RegistryClient, (...args: never[]) => unknown>> = {
    // Manifests, blobs, tags and referrers of a layout reference come from the disk.
    fetchManifest: (ref: OciReference, accept?: string[]) => (isLayoutReference(ref) ? of(ref).source.fetchManifest(ref, accept) : client.fetchManifest(ref, accept)),
    readBlob: (ref: OciReference, desc: Pick<Descriptor, 'digest' | 'size'>, maxBytes?: number) =>
      isLayoutReference(ref) ? of(ref).source.readBlob(ref, desc, maxBytes) : client.readBlob(ref, desc, maxBytes),
    openBlob: (ref: OciReference, desc: Pick<Descriptor, 'digest' | 'size'>) => (isLayoutReference(ref) ? of(ref).source.openBlob(ref, desc) : client.openBlob(ref, desc)),
    blobExists: (ref: OciReference, digest: string) => (isLayoutReference(ref) ? of(ref).layout.hasBlob(digest) : client.blobExists(ref, digest)),
    resolve: async (ref: OciReference) => (isLayoutReference(ref) ? (await of(ref).source.fetchManifest(ref)).descriptor : client.resolve(ref)),
    listTags: async (ref: OciReference, pageSize?: number) => (isLayoutReference(ref) ? (await layoutEntries(layoutDir(ref))).map((e) => e.tag) : client.listTags(ref, pageSize)),
    // A layout has no referrers API: the tag schema's index (`sha256-<hex>`), as `repo copy` writes it.
    referrers: async (ref: OciReference, digest: string, artifactType?: string) => {
      if (!isLayoutReference(ref)) return client.referrers(ref, digest, artifactType);
      try {
        const index = await of(ref).source.fetchManifest({ ...ref, tag: digest.replace(':', '-') });
        const all = ((index.json as { manifests?: Descriptor[] }).manifests ?? []) as Descriptor[];
        return artifactType === undefined ? all : all.filter((d) => d.artifactType === artifactType);
      } catch (err) {
        if (isDiginfraError(err, 'NOT_FOUND')) return [];
        throw err;
      }
    },
  };
  return new Proxy(client, {
    get(target, prop) {
      const own = routed[prop as keyof RegistryClient];
      if (own) return own;
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      // Anything else (pushes, referrers, the catalog) on a layout reference is refused, never sent.
      return (...args: unknown[]) => {
        const ref = args[0] as OciReference | undefined;
        if (ref && typeof ref === 'object' && typeof ref.registry === 'string' && isLayoutReference(ref)) throw notInLayout(ref, String(prop));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/** The tagged entries of a layout's index.json (tags as the `org.opencontainers.image.ref.name` annotation). */
async function layoutEntries(dir: string): Promise<{ tag: string; digest: string }[]> {
  let index: { manifests?: { digest?: unknown; annotations?: Record<string, unknown> }[] };
  try {
    index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as typeof index;
  } catch (err) {
    throw new DiginfraError('NOT_FOUND', `${dir} is not an OCI layout (no readable index.json: ${messageOf(err)})`, {
      hint: 'write one with "diginfractl repo copy REF oci:DIR"',
      cause: err,
    });
  }
  const out: { tag: string; digest: string }[] = [];
  for (const m of index.manifests ?? []) {
    const tag = m.annotations?.[REF_NAME];
    if (typeof tag === 'string' && typeof m.digest === 'string') out.push({ tag, digest: m.digest });
  }
  return out;
}

/**
 * The artifacts of a layout, by name: every tagged entry resolved for `platform` (signature tags,
 * other kinds of content and builds for other platforms are not candidates). Read once per layout.
 */
export class LayoutArtifacts {
  readonly #client: RegistryClient;
  readonly #platform: Platform;
  readonly #scans = new Map<string, Promise<{ tag: string; artifact: ResolvedArtifact }[]>>();

  constructor(client: RegistryClient, platform: Platform) {
    this.#client = client;
    this.#platform = platform;
  }

  #scan(layout: OciReference): Promise<{ tag: string; artifact: ResolvedArtifact }[]> {
    const dir = layoutDir(layout);
    let p = this.#scans.get(dir);
    if (!p) {
      p = (async () => {
        const found: { tag: string; artifact: ResolvedArtifact }[] = [];
        for (const { tag } of await layoutEntries(dir)) {
          try {
            found.push({ tag, artifact: await resolveArtifact(this.#client, { registry: layout.registry, repository: layout.repository, tag }, this.#platform) });
          } catch (err) {
            if (!isDiginfraError(err, 'MEDIA_TYPE_UNSUPPORTED') && !isDiginfraError(err, 'PLATFORM_NOT_FOUND') && !isDiginfraError(err, 'ARTIFACT_INVALID')) throw err;
          }
        }
        return found;
      })();
      this.#scans.set(dir, p);
    }
    return p;
  }

  /** The versions of `name` in the layout of `requirer` (NOT_FOUND when it has none). */
  async versions(layout: OciReference, name: string, requirer: string): Promise<string[]> {
    const versions = (await this.#scan(layout)).filter((a) => a.artifact.config.name === name).map((a) => a.artifact.config.version);
    if (versions.length === 0) {
      throw new DiginfraError('NOT_FOUND', `${requirer} depends on ${name}, which is not in the OCI layout ${layoutDir(layout)}`, {
        hint: `copy it there too ("diginfractl repo copy REF oci:${layoutDir(layout)}:TAG"); --no-resolve-deps skips dependencies`,
      });
    }
    return [...new Set(versions)];
  }

  /** `name` at `version` in that layout, with the tag that holds it. */
  async load(layout: OciReference, name: string, version: string): Promise<{ tag: string; artifact: ResolvedArtifact }> {
    const hit = (await this.#scan(layout)).find((a) => a.artifact.config.name === name && a.artifact.config.version === version);
    if (!hit) throw new DiginfraError('NOT_FOUND', `the OCI layout ${layoutDir(layout)} has no ${name} ${version}`);
    return hit;
  }
}
