import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { mkdtemp, readFile, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DIR_LOCK_NAME, acquireDirLocks, currentOwner } from '../../src/install/dir-lock.js';
import { exists } from '../helpers/fs.js';

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
    // As a lock is written now: same host, same PID namespace, so the pid can be judged.
    await writeFile(join(dir, DIR_LOCK_NAME), JSON.stringify({ ...currentOwner(), pid: deadPid, processStart: Date.now() - 1000 }));
    const held = await acquireDirLocks([dir], { timeoutMs: 1000, staleMs: 60_000 });
    expect(JSON.parse(await readFile(join(dir, DIR_LOCK_NAME), 'utf8')).pid).toBe(process.pid);
    await held.release();
  });

  it('records the PID namespace and the process start time of its holder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dirlock-'));
    const held = await acquireDirLocks([dir]);
    const owner = JSON.parse(await readFile(join(dir, DIR_LOCK_NAME), 'utf8'));
    await held.release();
    expect(owner).toMatchObject({ pid: process.pid, host: hostname(), pidNs: readlinkSync('/proc/self/ns/pid') });
    expect(Math.abs(owner.processStart - (Date.now() - process.uptime() * 1000))).toBeLessThan(2000);
  });

  it('takes over a lock that claims this pid but another process start time (a dead process whose pid we have)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dirlock-'));
    const path = join(dir, DIR_LOCK_NAME);
    const self = currentOwner();
    // What pid 1 of a restarted container finds: its own pid, recorded by the previous process.
    await writeFile(path, JSON.stringify({ ...self, processStart: self.processStart! - 3_600_000 }));
    const held = await acquireDirLocks([dir], { timeoutMs: 500, pollMs: 20, staleMs: 60_000 });
    expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ pid: process.pid, processStart: self.processStart });
    await held.release();
  });

  it('a lock of this very process (same pid and start time) is live: a second acquisition waits', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dirlock-'));
    await writeFile(join(dir, DIR_LOCK_NAME), JSON.stringify(currentOwner()));
    await expect(acquireDirLocks([dir], { timeoutMs: 200, pollMs: 20, staleMs: 60_000 })).rejects.toMatchObject({ code: 'LOCKED' });
  });

  it.each([
    { who: 'this pid', pid: process.pid },
    { who: 'pid 1', pid: 1 },
  ])('same host, another PID namespace (two containers of a pod), claiming $who: judged by age only', async ({ pid }) => {
    const dir = await mkdtemp(join(tmpdir(), 'dirlock-'));
    const path = join(dir, DIR_LOCK_NAME);
    await writeFile(path, JSON.stringify({ pid, host: hostname(), startedAt: 'x', pidNs: 'pid:[1]', processStart: currentOwner().processStart }));
    // Fresh: the holder may be alive in its container, whatever its pid means here.
    await expect(acquireDirLocks([dir], { timeoutMs: 200, pollMs: 20, staleMs: 60_000 })).rejects.toMatchObject({ code: 'LOCKED' });
    // Not refreshed for longer than staleMs: abandoned, taken over.
    const old = new Date(Date.now() - 120_000);
    await utimes(path, old, old);
    const held = await acquireDirLocks([dir], { timeoutMs: 1000, pollMs: 20, staleMs: 60_000 });
    expect(JSON.parse(await readFile(path, 'utf8')).pid).toBe(process.pid);
    await held.release();
  });

  it('a fresh lock from another PID namespace is not taken over even when its pid does not exist here', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dirlock-'));
    const child = spawn(process.execPath, ['-e', '0']);
    const deadPid = await new Promise<number>((res) => child.on('exit', () => res(child.pid!)));
    await writeFile(join(dir, DIR_LOCK_NAME), JSON.stringify({ pid: deadPid, host: hostname(), startedAt: 'x', pidNs: 'pid:[1]' }));
    await expect(acquireDirLocks([dir], { timeoutMs: 200, pollMs: 20, staleMs: 60_000 })).rejects.toMatchObject({ code: 'LOCKED' });
  });

  it('a lock without a PID namespace (older format) is judged by age, never by pid', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dirlock-'));
    const path = join(dir, DIR_LOCK_NAME);
    await writeFile(path, JSON.stringify({ pid: 1, host: hostname(), startedAt: 'x' }));
    await expect(acquireDirLocks([dir], { timeoutMs: 200, pollMs: 20, staleMs: 60_000 })).rejects.toMatchObject({ code: 'LOCKED' });
    const old = new Date(Date.now() - 120_000);
    await utimes(path, old, old);
    const held = await acquireDirLocks([dir], { timeoutMs: 1000, pollMs: 20, staleMs: 60_000 });
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
