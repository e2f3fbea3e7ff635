/**
 * What the engine sees while `artifact install` upgrades its rules: readers that read the live files
 * in a tight loop, from before the upgrade starts until it has ended, never find a file missing,
 * short or mixed, only the whole old bytes or the whole new ones (install places each file with one
 * rename; a remove + copy would show a reader both a missing and a partial file). The files are
 * large (8 MiB) so that any window between removing and writing a file is wide enough to be seen,
 * and inotify (fs.watch) tells deterministically how each live name changed: by one rename only.
 */
import { watch } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistryClient } from '../../src/registry/index.js';
import { requireCli, runCli, spawnCli } from '../helpers/cli.js';
import { pushClient } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { node, pushOneLayer } from './setup.js';

const SIZE = 8 * 1024 * 1024;
const NAMES = ['a.yaml', 'b.yaml', 'c.yaml', 'd.yaml'];
const OLD = Buffer.alloc(SIZE, '1');
const NEW = Buffer.alloc(SIZE, '2');

let reg: TestRegistry;
let client: RegistryClient;
const ref = (version: string): string => `${reg.host}/torn/rules:${version}`;

beforeAll(async () => {
  requireCli('artifact', ['install']);
  reg = await startRegistry();
  client = pushClient();
  await pushOneLayer(client, ref('1.0.0'), { name: 'torn', version: '1.0.0', files: Object.fromEntries(NAMES.map((n) => [n, OLD])) });
  await pushOneLayer(client, ref('2.0.0'), { name: 'torn', version: '2.0.0', files: Object.fromEntries(NAMES.map((n) => [n, NEW])) });
}, 120_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
});

describe('artifact install while the engine reads its files', () => {
  it('a reader looping over the live files sees whole old or whole new bytes, never a missing or partial file', async () => {
    const n = await node([reg.host]);
    expect((await runCli(['artifact', 'install', ref('1.0.0')], { env: n.env })).code).toBe(0);

    let running = true;
    const seen = { old: 0, new: 0, reads: 0 };
    const torn: string[] = [];
    // As the engine loads a file: open it, then read it. Most reads look at its size and both ends
    // (cheap, so the loop is tight); every 16th reads it whole.
    const reader = async (name: string): Promise<void> => {
      const head = Buffer.alloc(4096);
      const tail = Buffer.alloc(4096);
      while (running) {
        seen.reads++;
        const fh = await open(join(n.rules, name), 'r').catch((err: NodeJS.ErrnoException) => err);
        if (fh instanceof Error) {
          torn.push(`${name}: ${fh.code ?? fh.message}`);
          continue;
        }
        try {
          let got: Buffer;
          if (seen.reads % 16 === 0) got = await fh.readFile();
          else {
            const { size } = await fh.stat();
            await fh.read(head, 0, head.length, 0);
            await fh.read(tail, 0, tail.length, Math.max(0, size - tail.length));
            got = size === SIZE && head.equals(tail) ? (head[0] === OLD[0] ? OLD : head[0] === NEW[0] ? NEW : head) : Buffer.from(`${size} bytes`);
          }
          if (got.equals(OLD)) seen.old++;
          else if (got.equals(NEW)) seen.new++;
          else torn.push(`${name}: ${got.toString('latin1', 0, 40)}..., neither version`);
        } finally {
          await fh.close();
        }
      }
    };
    // And what happens to the live names, from the kernel (inotify): a rename gives one "rename"
    // event; a remove + copy gives two and a "change" per write, whether a reader was there or not.
    const events = new Map<string, string[]>(NAMES.map((name) => [name, []]));
    const watcher = watch(n.rules, (event, name) => void (name !== null && events.get(name)?.push(event)));
    watcher.on('error', () => undefined);
    const readers = NAMES.map(reader);
    // Let every reader see the old version before the upgrade starts.
    while (seen.old < NAMES.length * 2) await new Promise((r) => setTimeout(r, 5));
    const child = spawnCli(['artifact', 'install', ref('2.0.0')], { env: n.env });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    // And the new one after it ended.
    const after = seen.new;
    while (seen.new < after + NAMES.length * 2) await new Promise((r) => setTimeout(r, 5));
    running = false;
    await Promise.all(readers);
    watcher.close();

    expect(code).toBe(0);
    expect(torn).toEqual([]);
    expect(Object.fromEntries(events)).toEqual(Object.fromEntries(NAMES.map((name) => [name, ['rename']])));
    expect(seen.old).toBeGreaterThan(0);
    expect(seen.new).toBeGreaterThan(0);
    for (const name of NAMES) expect((await readFile(join(n.rules, name))).equals(NEW)).toBe(true);
  }, 60_000);
});
