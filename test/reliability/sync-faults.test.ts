/**
 * A disk that fails the fsync that must come before a file is renamed into place. A rename of bytes
 * that are not on disk can leave an empty or partial file after a crash, so the fsync is part of the
 * guarantee: when it fails (EIO), the write fails and the destination keeps its previous content; and
 * every file is synced before its rename. A real disk will not fail on demand, so `FileHandle.sync`
 * is made to fail for chosen paths, and every sync and rename is recorded in order.
 */
import type * as FsPromises from 'node:fs/promises';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

const disk = vi.hoisted(() => ({
  /** Paths whose fsync fails with EIO. */
  failSync: (_path: string): boolean => false,
  /** Every sync (of a file: `sync <path>`) and rename (`rename <from> <to>`), in order. */
  log: [] as string[],
}));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof FsPromises>();
  const { withOpenHook } = await import('../helpers/failing-disk.js');
  return {
    ...withOpenHook(real, (fh, path) => {
      const realSync = fh.sync.bind(fh);
      fh.sync = async () => {
        if ((await fh.stat()).isFile()) disk.log.push(`sync ${path}`);
        if (disk.failSync(path)) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO', syscall: 'fsync' });
        await realSync();
      };
    }),
    rename: async (from: string, to: string) => {
      disk.log.push(`rename ${String(from)} ${String(to)}`);
      await real.rename(from, to);
    },
  };
});

const { makeStagingDir, placeFiles, placeFileSets, removeDir, writeFileAtomic } = await import('../../src/util/index.js');
const { errorOf } = await import('../helpers/errors.js');
const { tempDir } = await import('../helpers/fs.js');
const { tree } = await import('../util/fs/helpers.js');

beforeEach(() => {
  disk.failSync = () => false;
  disk.log.length = 0;
});

/** A destination with `files`, and a staging dir in it holding `staged` (name -> content). */
async function setup(files: Record<string, string>, staged: Record<string, string>) {
  const dest = join(await tempDir('sync-'), 'rules');
  await mkdir(dest, { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(join(dest, name), content);
  const stagingDir = await makeStagingDir(dest);
  for (const [name, content] of Object.entries(staged)) await writeFile(join(stagingDir, name), content);
  return { dest, stagingDir, set: { stagingDir, destDir: dest, files: Object.keys(staged).map((rel) => ({ rel, mode: 0o644 })) } };
}

/** Each rename of a file out of `stagingDir` (or of a temp file) in the log comes after a sync of that very file. */
function expectSyncedBeforeRename(renamedFrom: (from: string) => boolean): number {
  let checked = 0;
  disk.log.forEach((entry, i) => {
    const [op, from] = entry.split(' ');
    if (op !== 'rename' || !renamedFrom(from!)) return;
    expect(disk.log.slice(0, i), `${from} renamed without a sync before`).toContain(`sync ${from}`);
    checked++;
  });
  return checked;
}

describe('install placement (placeFileSets) when fsync fails', () => {
  it('fails, and every destination keeps its previous files', async () => {
    const { dest, stagingDir, set } = await setup({ 'a.yaml': 'old a', 'b.yaml': 'old b', 'gone.yaml': 'old' }, { 'a.yaml': 'new a', 'b.yaml': 'new b', 'c.yaml': 'new c' });
    const live = async (): Promise<Record<string, string>> => Object.fromEntries(Object.entries(await tree(dest)).filter(([k]) => !k.startsWith('.diginfractl-staging-')));
    const before = await live();
    disk.failSync = (path) => path === join(stagingDir, 'b.yaml');
    const err = await errorOf(placeFileSets([set], { skipIdentical: true, remove: [join(dest, 'gone.yaml')], intent: { dir: dest } }));
    expect(err.code).toBe('IO');
    expect(err.message).toContain(`cannot place ${join(dest, 'b.yaml')}: EIO`);
    await removeDir(stagingDir);
    expect(await tree(dest)).toEqual(before);
  });

  it('syncs every file before renaming it in', async () => {
    const { stagingDir, set } = await setup({ 'a.yaml': 'old a' }, Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`f${i}.yaml`, `new ${i}`])));
    await placeFileSets([set], { skipIdentical: true, intent: { dir: set.destDir } });
    expect(expectSyncedBeforeRename((from) => from.startsWith(`${stagingDir}/`))).toBe(20);
  });
});

describe('placeFiles (repo pull, the follow swap) when fsync fails', () => {
  it('fails before that file is renamed: it keeps its previous content', async () => {
    const { dest, stagingDir, set } = await setup({ 'a.yaml': 'old a' }, { 'a.yaml': 'new a' });
    disk.failSync = (path) => path === join(stagingDir, 'a.yaml');
    const err = await errorOf(placeFiles(stagingDir, set.files, dest, { skipIdentical: true }));
    expect(err.message).toContain('EIO');
    expect(await readFile(join(dest, 'a.yaml'), 'utf8')).toBe('old a');
    expect(disk.log.filter((e) => e.startsWith('rename'))).toEqual([]);
  });

  it('syncs every file before renaming it in', async () => {
    const { dest, stagingDir, set } = await setup({}, { 'a.yaml': 'a', 'b.yaml': 'b', 'c.yaml': 'c' });
    await placeFiles(stagingDir, set.files, dest, { skipIdentical: true });
    expect(expectSyncedBeforeRename((from) => from.startsWith(`${stagingDir}/`))).toBe(3);
  });
});

describe('writeFileAtomic (lock files, state, config) when fsync fails', () => {
  it('fails, leaves the destination as it was and no temp file', async () => {
    const dir = await tempDir('sync-atomic-');
    const path = join(dir, 'diginfractl.lock');
    await writeFile(path, 'old lock');
    disk.failSync = (p) => basename(p).startsWith('.diginfractl.lock.tmp-');
    const err = await errorOf(writeFileAtomic(path, 'new lock'));
    expect(err.code).toBe('IO');
    expect(err.message).toContain('EIO');
    expect(await readFile(path, 'utf8')).toBe('old lock');
    expect(await readdir(dir)).toEqual(['diginfractl.lock']);
  });

  it('syncs the temp file before renaming it over the destination', async () => {
    const dir = await tempDir('sync-atomic-');
    await writeFileAtomic(join(dir, 'x.yaml'), 'x');
    expect(expectSyncedBeforeRename((from) => basename(from).startsWith('.x.yaml.tmp-'))).toBe(1);
  });
});

// An install end to end on such a disk: nothing of it is visible, the lock file included.
describe('artifact install when the disk fails the fsync of a new file', () => {
  const ctx = {} as { reg: import('../helpers/registry.js').TestRegistry; client: import('../../src/registry/index.js').RegistryClient };
  beforeAll(async () => {
    const { startRegistry } = await import('../helpers/registry.js');
    const { pushClient, pushFiles } = await import('../helpers/push.js');
    ctx.reg = await startRegistry();
    ctx.client = pushClient();
    await pushFiles(ctx.client, `${ctx.reg.host}/sync/rules:1.0.0`, '1.0.0', { 'a.yaml': '- list: a\n  items: [1]\n', 'b.yaml': '- list: b\n  items: [1]\n' });
    await pushFiles(ctx.client, `${ctx.reg.host}/sync/rules:2.0.0`, '2.0.0', { 'a.yaml': '- list: a\n  items: [2]\n', 'b.yaml': '- list: b\n  items: [2]\n' });
  }, 60_000);
  afterAll(async () => {
    await ctx.client?.close();
    await ctx.reg?.stop();
  });

  it('fails with the error, and the rules dir and its lock file are as before', async () => {
    const { dirs, install } = await import('../install/setup.js');
    const d = await dirs();
    await install(ctx.client, d, [`${ctx.reg.host}/sync/rules:1.0.0`]);
    const before = await tree(d.rules);
    disk.failSync = (path) => path.includes('.diginfractl-staging-') && basename(path) === 'b.yaml';
    const err = await errorOf(install(ctx.client, d, [`${ctx.reg.host}/sync/rules:2.0.0`]));
    expect(err.message).toContain('EIO');
    expect(await tree(d.rules)).toEqual(before);
  });
});
