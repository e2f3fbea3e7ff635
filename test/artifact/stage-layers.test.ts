/**
 * Layers into a staging dir (what pull, install and follow share), read from a real OCI image layout
 * on disk: an artifact of several layers, one file shipped by two of them, one layer listed twice.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packLayer } from '../../src/artifact/archive.js';
import { configMediaType, layerMediaType } from '../../src/artifact/format.js';
import { layoutSource, OciLayout } from '../../src/artifact/oci-layout.js';
import { extractArtifact, resolveArtifact } from '../../src/artifact/pull.js';
import { stageLayers } from '../../src/artifact/stage-layers.js';
import { parseOciReference } from '../../src/reference/reference.js';
import type { ArtifactSource } from '../../src/registry/client.js';
import type { Descriptor } from '../../src/registry/media-types.js';

const tmp = (prefix: string): Promise<string> => mkdtemp(join(tmpdir(), prefix));
const AMD64 = { os: 'linux', architecture: 'amd64' };
const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A layer of `files` (name -> content), stored in `layout`. */
async function layer(layout: OciLayout, files: Record<string, string>): Promise<Descriptor> {
  const dir = await tmp('layer-src-');
  const paths: string[] = [];
  for (const [name, content] of Object.entries(files)) {
    await writeFile(join(dir, name), content);
    paths.push(join(dir, name));
  }
  const out = join(dir, 'layer.tar.gz');
  const { digest, size } = await packLayer(paths, out);
  await layout.putBlobFile(digest, out);
  return { mediaType: layerMediaType('rulesfile'), digest, size };
}

/** A rules file artifact `rules:1.0.0` in a new layout, with `layers` in this order. */
async function artifactOf(layout: OciLayout, layers: Descriptor[]) {
  const config = Buffer.from(JSON.stringify({ name: 'rules', version: '1.0.0' }));
  await layout.putBlobBytes(sha256(config), config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: configMediaType('rulesfile'),
      config: { mediaType: configMediaType('rulesfile'), digest: sha256(config), size: config.length },
      layers,
    }),
  );
  await layout.putManifest(manifest, { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manifest), size: manifest.length }, '1.0.0');
  const opened: string[] = [];
  const source = layoutSource(layout);
  // The layout as it is, noting which blobs are read.
  const counted: ArtifactSource = {
    ...source,
    openBlob: (ref, desc) => {
      opened.push(desc.digest);
      return source.openBlob(ref, desc);
    },
  };
  const artifact = await resolveArtifact(counted, parseOciReference('localhost/rules:1.0.0'), AMD64);
  return { source: counted, artifact, opened };
}

describe('stageLayers, through extractArtifact (repo pull)', () => {
  it('places a file two layers ship once, with the later layer\'s bytes, and reads a layer listed twice once', async () => {
    const layout = new OciLayout(await tmp('layout-'));
    const first = await layer(layout, { 'a.yaml': 'a from the first layer\n', 'b.yaml': 'b\n' });
    const second = await layer(layout, { 'a.yaml': 'a from the second layer\n' });
    const { source, artifact, opened } = await artifactOf(layout, [first, second, first]);
    const dest = join(await tmp('pull-'), 'rules.d');

    const result = await extractArtifact(source, artifact, dest);

    expect(result.files).toEqual(['a.yaml', 'b.yaml']);
    expect(await readFile(join(dest, 'a.yaml'), 'utf8')).toBe('a from the second layer\n');
    expect(await readFile(join(dest, 'b.yaml'), 'utf8')).toBe('b\n');
    expect(opened).toEqual([first.digest, second.digest]);
    // No staging dir left behind.
    expect((await readdir(dest)).sort()).toEqual(['a.yaml', 'b.yaml']);
  });

  it('reports progress for downloaded layers only, each done once extracted', async () => {
    const layout = new OciLayout(await tmp('layout-'));
    const cachedLayer = await layer(layout, { 'cached.yaml': 'from the cache\n' });
    const downloaded = await layer(layout, { 'fresh.yaml': 'x'.repeat(200_000) });
    const { source, artifact } = await artifactOf(layout, [cachedLayer, downloaded]);
    const dest = await tmp('pull-');
    const events: { digest: string; bytes: number; done: boolean }[] = [];

    await extractArtifact(source, artifact, dest, {
      layerFile: async (l) => (l.digest === cachedLayer.digest ? layout.blobFile(l) : undefined),
      onProgress: (l, bytes, done) => events.push({ digest: l.digest, bytes, done }),
    });

    expect(new Set(events.map((e) => e.digest))).toEqual(new Set([downloaded.digest]));
    expect(events.at(-1)).toEqual({ digest: downloaded.digest, bytes: downloaded.size, done: true });
    expect(events.filter((e) => e.done)).toHaveLength(1);
    const counts = events.map((e) => e.bytes);
    expect(counts).toEqual([...counts].sort((x, y) => x - y));
    expect(await readFile(join(dest, 'cached.yaml'), 'utf8')).toBe('from the cache\n');
  });

  it('leaves the destination as it was when a layer goes over the size limit', async () => {
    const layout = new OciLayout(await tmp('layout-'));
    const small = await layer(layout, { 'a.yaml': 'new a\n' });
    const big = await layer(layout, { 'b.yaml': 'b'.repeat(5000) });
    const { source, artifact } = await artifactOf(layout, [small, big]);
    const dest = await tmp('pull-');
    await writeFile(join(dest, 'a.yaml'), 'old a\n');

    await expect(extractArtifact(source, artifact, dest, { maxBytes: 1000 })).rejects.toMatchObject({ code: 'UNSAFE_ARCHIVE' });

    expect(await readdir(dest)).toEqual(['a.yaml']);
    expect(await readFile(join(dest, 'a.yaml'), 'utf8')).toBe('old a\n');
  });
});

describe('stageLayers', () => {
  it('refuses a reserved file name, naming the artifact, and removes its staging dir', async () => {
    const layout = new OciLayout(await tmp('layout-'));
    const bad = await layer(layout, { 'rules.yaml': 'r\n', 'diginfractl.lock': 'not yours\n' });
    const { source, artifact } = await artifactOf(layout, [bad]);
    const dest = await tmp('stage-');
    let staging: string | undefined;

    const err = await stageLayers(source, artifact, dest, { reserved: new Set(['diginfractl.lock']), onStaging: (s) => (staging = s) }).catch((e: unknown) => e);

    expect(err).toMatchObject({ code: 'UNSAFE_ARCHIVE', message: 'rules 1.0.0 ships a file named diginfractl.lock, which diginfractl reserves for itself' });
    expect(staging).toBeDefined();
    expect(await readdir(dest)).toEqual([]);
  });

  it('gives every file the mode asked, or the archive\'s', async () => {
    const layout = new OciLayout(await tmp('layout-'));
    const l = await layer(layout, { 'rules.yaml': 'r\n' });
    const { source, artifact } = await artifactOf(layout, [l]);
    const dest = await tmp('stage-');

    const asked = await stageLayers(source, artifact, dest, { mode: 0o755 });
    const archived = await stageLayers(source, artifact, dest);

    expect(asked.files).toEqual([{ rel: 'rules.yaml', mode: 0o755 }]);
    expect(archived.files).toEqual([{ rel: 'rules.yaml', mode: 0o644 }]);
    expect((await readdir(dest)).sort()).toEqual([asked.staging, archived.staging].map((s) => s.slice(dest.length + 1)).sort());
  });
});
