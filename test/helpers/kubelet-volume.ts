/**
 * A ConfigMap or Secret volume as the kubelet's atomic writer lays it out, and updates it: the files
 * in a `..YYYY_MM_DD_hh_mm_ss.N` directory, `..data` a symlink to it, each top-level name a symlink
 * into `..data`. An update writes a new timestamped directory, points a `..data_tmp` symlink at it,
 * renames that over `..data` (the one atomic step), then removes the old directory, so the files'
 * own paths never see an event.
 */
import { mkdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

let generation = 0;

/** A fresh `..<timestamp>` name: a new one for every write, as the kubelet's clock would give. */
function stampName(): string {
  const now = new Date().toISOString().slice(0, 19).replace(/[-T:]/g, '_');
  return `..${now}.${String(++generation).padStart(9, '0')}`;
}

async function writeGeneration(dir: string, files: Record<string, string | Buffer>): Promise<string> {
  const stamp = stampName();
  await mkdir(join(dir, stamp), { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, stamp, name), content, { mode: 0o644 });
  return stamp;
}

/** Lays out `files` in `dir` (created) as a mounted volume holds them. */
export async function mountVolume(dir: string, files: Record<string, string | Buffer>): Promise<void> {
  await mkdir(dir, { recursive: true });
  const stamp = await writeGeneration(dir, files);
  await symlink(stamp, join(dir, '..data'));
  for (const name of Object.keys(files)) await symlink(join('..data', name), join(dir, name));
}

/** Replaces the volume's contents with `files` (the same names) the way the kubelet does. */
export async function updateVolume(dir: string, files: Record<string, string | Buffer>): Promise<void> {
  const old = await readlink(join(dir, '..data'));
  const stamp = await writeGeneration(dir, files);
  await symlink(stamp, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  await rm(join(dir, old), { recursive: true, force: true });
}
