import { spawn } from 'node:child_process';
import { mkdtemp, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DIR_LOCK_NAME, acquireDirLocks } from '../../src/install/dir-lock.js';

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

describe('install lock', () => {
  it('is exclusive, waits, then times out with LOCKED', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dirlock-'));
    const first = await acquireDirLocks([dir]);
    const owner = JSON.parse(await readFile(join(dir, DIR_LOCK_NAME), 'utf8'));
    expect(owner.pid).toBe(process.pid);
    let waited = false;
    await expect(acquireDirLocks([dir], { timeoutMs: 300, pollMs: 20, onWait: () => (waited = true) })).rejects.toMatchObject({ code: 'LOCKED' });
    expect(waited).toBe(true);
    // released: the waiter gets it
    const second = acquireDirLocks([dir], { timeoutMs: 5000, pollMs: 20 });
    setTimeout(() => void first.release(), 100);
    const held = await second;
    await held.release();
    expect(await exists(join(dir, DIR_LOCK_NAME))).toBe(false);
  });

  it('takes over a lock whose process is gone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dirlock-'));
    const child = spawn(process.execPath, ['-e', '0']);
    const deadPid = await new Promise<number>((res) => child.on('exit', () => res(child.pid!)));
    await writeFile(join(dir, DIR_LOCK_NAME), JSON.stringify({ pid: deadPid, host: hostname(), startedAt: 'x' }));
    const held = await acquireDirLocks([dir], { timeoutMs: 1000 });
    expect(JSON.parse(await readFile(join(dir, DIR_LOCK_NAME), 'utf8')).pid).toBe(process.pid);
    await held.release();
  });

  it("takes over another host's lock only when it is old", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dirlock-'));
    const path = join(dir, DIR_LOCK_NAME);
    await writeFile(path, JSON.stringify({ pid: 1, host: 'elsewhere', startedAt: 'x' }));
    await expect(acquireDirLocks([dir], { timeoutMs: 200, pollMs: 20, staleMs: 60_000 })).rejects.toMatchObject({ code: 'LOCKED' });
    const old = new Date(Date.now() - 120_000);
    await utimes(path, old, old);
    const held = await acquireDirLocks([dir], { timeoutMs: 1000, staleMs: 60_000 });
    await held.release();
  });

  it('locks several dirs and releases all on failure', async () => {
    const a = await mkdtemp(join(tmpdir(), 'dirlock-a-'));
    const b = await mkdtemp(join(tmpdir(), 'dirlock-b-'));
    const other = await acquireDirLocks([b]);
    await expect(acquireDirLocks([a, b], { timeoutMs: 100, pollMs: 20 })).rejects.toMatchObject({ code: 'LOCKED' });
    expect(await exists(join(a, DIR_LOCK_NAME))).toBe(false);
    await other.release();
    const both = await acquireDirLocks([a, b, a]);
    expect(both.dirs).toHaveLength(2);
    await both.release();
  });
});
