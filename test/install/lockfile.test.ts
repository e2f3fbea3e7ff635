import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findRequested, formatLockfile, lockClosure, mergeLock, readLockfile, writeLockfile, type LockEntry } from '../../src/install/lockfile.js';

const entry = (name: string, extra: Partial<LockEntry> = {}): LockEntry => ({
  name,
  type: 'plugin',
  version: '1.0.0',
  registry: 'localhost:5000',
  repository: `plugins/${name}`,
  tag: '1.0.0',
  digest: `sha256:${'a'.repeat(64)}`,
  manifestDigest: `sha256:${'b'.repeat(64)}`,
  dir: '/usr/share/diginfra/plugins',
  files: [`lib${name}.so`],
  ...extra,
});

describe('lock file', () => {
  it('round-trips through YAML, sorted and stable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lock-'));
    const path = join(dir, 'diginfractl.lock');
    const lock = { version: 1, artifacts: [entry('zeta', { requested: ['zeta:1'] }), entry('alpha', { platform: 'linux/amd64', dependencies: ['zeta'] })] };
    await writeLockfile(path, lock);
    const text = await readFile(path, 'utf8');
    expect(text.indexOf('name: alpha')).toBeLessThan(text.indexOf('name: zeta'));
    expect(text).toContain('manifestDigest: sha256:bbbb');
    const back = await readLockfile(path);
    expect(back!.artifacts.map((a) => a.name).sort()).toEqual(['alpha', 'zeta']);
    expect(await formatLockfile(back!)).toBe(text);
    expect(await readLockfile(join(dir, 'none.lock'))).toBeUndefined();
  });

  it('rejects garbage with LOCKFILE_MISMATCH', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lock-'));
    const path = join(dir, 'diginfractl.lock');
    await writeFile(path, 'version: 1\nartifacts:\n  - name: x\n');
    await expect(readLockfile(path)).rejects.toMatchObject({ code: 'LOCKFILE_MISMATCH' });
    await writeFile(path, 'version: 7\n');
    await expect(readLockfile(path)).rejects.toMatchObject({ code: 'LOCKFILE_MISMATCH' });
  });

  it('merges: replaces by name, keeps other artifacts and earlier requests', () => {
    const prev = { version: 1, artifacts: [entry('a', { requested: ['a:1'] }), entry('b')] };
    const next = mergeLock(prev, [entry('a', { version: '1.1.0' }), entry('c', { requested: ['c'] })]);
    expect(next.artifacts.map((x) => `${x.name}@${x.version}`).sort()).toEqual(['a@1.1.0', 'b@1.0.0', 'c@1.0.0']);
    expect(findRequested(next, 'a:1')!.version).toBe('1.1.0');
    expect(findRequested(next, 'c')!.name).toBe('c');
    // a ref that now answers to another artifact moves there
    const moved = mergeLock(next, [entry('d', { requested: ['a:1'] })]);
    expect(findRequested(moved, 'a:1')!.name).toBe('d');
    expect(moved.artifacts.find((x) => x.name === 'a')!.requested).toBeUndefined();
  });

  it('closure follows recorded dependencies', () => {
    const lock = { version: 1, artifacts: [entry('r', { dependencies: ['p', 'q'] }), entry('p'), entry('x')] };
    const { entries, missing } = lockClosure(lock, [lock.artifacts[0]!], true);
    expect(entries.map((e) => e.name)).toEqual(['r', 'p']);
    expect(missing).toEqual(['q (a dependency of r)']);
    expect(lockClosure(lock, [lock.artifacts[0]!], false).entries.map((e) => e.name)).toEqual(['r']);
  });
});
