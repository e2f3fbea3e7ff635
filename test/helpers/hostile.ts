/**
 * Hand-made hostile artifacts: tar archives written header by header (so an entry can be named
 * anything a hostile packer would write), and artifacts pushed blob by blob, bypassing `repo push`
 * and its checks, as a broken or malicious publisher would.
 */
import { gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { configMediaType, layerMediaType } from '../../src/artifact/format.js';
import { parseOciReference } from '../../src/reference/reference.js';
import { bufferBlob, OCI_MANIFEST, type RegistryClient } from '../../src/registry/index.js';

export interface RawEntry {
  path: string;
  data?: string | Buffer;
  type?: 'File' | 'Directory' | 'SymbolicLink';
  linkpath?: string;
}

/** A gzip'd tar of `entries`, names and types exactly as given. */
export function hostileLayer(entries: readonly RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    const header = Buffer.alloc(512);
    const fields = { path: e.path, type: e.type ?? 'File', size: data.length, mode: 0o644, mtime: new Date(0), ...(e.linkpath !== undefined && { linkpath: e.linkpath }) };
    new tar.Header(fields).encode(header, 0);
    parts.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(parts));
}

/**
 * Pushes an artifact of `type` whose single manifest lists `layers` (bytes, each with its media type,
 * default the type's own layer type), and tags it `ref`. Returns the manifest digest.
 */
export async function pushRawArtifact(
  client: RegistryClient,
  ref: string,
  opts: { type: string; name: string; version: string; layers: readonly { bytes: Buffer; mediaType?: string }[] },
): Promise<string> {
  const target = parseOciReference(ref);
  const config = bufferBlob(Buffer.from(JSON.stringify({ name: opts.name, version: opts.version })));
  await client.pushBlob(target, config);
  const layers = [];
  for (const l of opts.layers) {
    const blob = bufferBlob(l.bytes);
    await client.pushBlob(target, blob);
    layers.push({ mediaType: l.mediaType ?? layerMediaType(opts.type), digest: blob.digest, size: blob.size });
  }
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: configMediaType(opts.type),
    config: { mediaType: configMediaType(opts.type), digest: config.digest, size: config.size },
    layers,
  };
  const desc = await client.pushManifest(target, Buffer.from(JSON.stringify(manifest)), OCI_MANIFEST);
  return desc.digest;
}
