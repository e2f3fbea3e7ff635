/**
 * The hot swap, driven directly: 200 swaps between two versions of a rules file while another process
 * reads the file in a tight loop must never show it partial, empty or missing; identical files are not
 * renamed; files the new version no longer ships are deleted; staging dirs are dot-named; the sweep of
 * a crash's leftovers spares staging dirs still in use.
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stageFromDir, swapFiles, removeDir, sweepStaging } from '../../src/follow/swap.js';
import { NODE } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { RULES_FIXTURE } from '../helpers/push.js';

/** Reads `file` as fast as it can until `stop` appears; prints counts of each outcome as JSON. */
const READER = `
const fs = require('node:fs');
const [file, a, b, stop] = process.argv.slice(1);
const A = fs.readFileSync(a), B = fs.readFileSync(b);
const out = { reads: 0, a: 0, b: 0, bad: 0, missing: 0, empty: 0, samples: [] };
let n = 0;
for (;;) {
  if ((++n & 255) === 0 && fs.existsSync(stop)) break;
  let got;
  try { got = fs.readFileSync(file); } catch (e) { out.missing++; continue; }
  out.reads++;
  if (got.length === 0) out.empty++;
  else if (got.equals(A)) out.a++;
  else if (got.equals(B)) out.b++;
  else { out.bad++; if (out.samples.length < 3) out.samples.push(got.length); }
}
process.stdout.write(JSON.stringify(out));
`;

describe('swapFiles', () => {
  it('200 swaps under a tight-loop reader: every read is one whole version', async () => {
    const root = await tempDir();
    const dest = join(root, 'rules');
    const va = join(root, 'va');
    const vb = join(root, 'vb');
    await mkdir(va);
    await mkdir(vb);
    const a = await readFile(RULES_FIXTURE);
    // B is much shorter than A: a torn read would show up as a length of neither.
    const b = Buffer.from('- macro: short_version\n  condition: (evt.type = open)\n');
    await writeFile(join(va, 'falco_rules.yaml'), a);
    await writeFile(join(vb, 'falco_rules.yaml'), b);
    const files = [{ rel: 'falco_rules.yaml', mode: 0o644 }];
    let staged = await stageFromDir(va, files, dest);
    await swapFiles(staged);
    await removeDir(staged.staging);

    const stopFile = join(root, 'stop');
    const reader = spawn(NODE, ['-e', READER, join(dest, 'falco_rules.yaml'), join(va, 'falco_rules.yaml'), join(vb, 'falco_rules.yaml'), stopFile], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    reader.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    const done = new Promise<void>((res) => reader.once('exit', () => res()));
    // Let the reader get going before the first swap.
    await new Promise((r) => setTimeout(r, 200));

    let placed = 0;
    for (let i = 0; i < 200; i++) {
      staged = await stageFromDir(i % 2 === 0 ? vb : va, files, dest);
      const r = await swapFiles(staged);
      await removeDir(staged.staging);
      placed += r.placed.length;
    }
    await writeFile(stopFile, '');
    await done;
    const result = JSON.parse(out) as { reads: number; a: number; b: number; bad: number; missing: number; empty: number; samples: number[] };
    expect(placed).toBe(200);
    expect(result.bad).toBe(0);
    expect(result.empty).toBe(0);
    expect(result.missing).toBe(0);
    expect(result.a).toBeGreaterThan(0);
    expect(result.b).toBeGreaterThan(0);
    expect(result.reads).toBeGreaterThan(1000);
    console.log(`reader: ${result.reads} reads during 200 swaps (${result.a} of A, ${result.b} of B), none partial, empty or missing`);
    // No staging dir is left, and the last swap (i = 199, odd) put A back.
    expect(await readdir(dest)).toEqual(['falco_rules.yaml']);
    expect(await readFile(join(dest, 'falco_rules.yaml'))).toEqual(a);
  }, 120_000);

  it('leaves identical files alone, deletes files the new version no longer ships, stages in a dot dir', async () => {
    const root = await tempDir();
    const dest = join(root, 'rules');
    const v1 = join(root, 'v1');
    const v2 = join(root, 'v2');
    await mkdir(v1);
    await mkdir(v2);
    await writeFile(join(v1, 'a.yaml'), '- macro: a\n');
    await writeFile(join(v1, 'b.yaml'), '- macro: b\n');
    await writeFile(join(v2, 'a.yaml'), '- macro: a\n');
    await writeFile(join(v2, 'c.yaml'), '- macro: c\n');
    await mkdir(dest);
    await writeFile(join(dest, 'unrelated.yaml'), '- macro: mine\n');

    let staged = await stageFromDir(v1, [{ rel: 'a.yaml', mode: 0o644 }, { rel: 'b.yaml', mode: 0o644 }], dest);
    expect(staged.staging.startsWith(dest)).toBe(true);
    expect(staged.staging.slice(dest.length + 1).startsWith('.')).toBe(true);
    expect(staged.staging).not.toMatch(/\.ya?ml$/);
    const r1 = await swapFiles(staged);
    await removeDir(staged.staging);
    expect(r1.placed.sort()).toEqual(['a.yaml', 'b.yaml']);
    const inode = (await stat(join(dest, 'a.yaml'))).ino;

    staged = await stageFromDir(v2, [{ rel: 'a.yaml', mode: 0o644 }, { rel: 'c.yaml', mode: 0o644 }], dest);
    const r2 = await swapFiles(staged, ['a.yaml', 'b.yaml']);
    await removeDir(staged.staging);
    expect(r2).toEqual({ placed: ['c.yaml'], unchanged: ['a.yaml'], removed: ['b.yaml'] });
    expect((await stat(join(dest, 'a.yaml'))).ino).toBe(inode);
    expect((await readdir(dest)).sort()).toEqual(['a.yaml', 'c.yaml', 'unrelated.yaml']);
  });

  it('refuses paths that leave the target dir', async () => {
    const root = await tempDir();
    await expect(swapFiles({ dest: join(root, 'd'), staging: join(root, 'd/.s'), files: [{ rel: '../x.yaml', mode: 0o644 }] })).rejects.toMatchObject({ code: 'UNSAFE_ARCHIVE' });
    await expect(swapFiles({ dest: join(root, 'd'), staging: join(root, 'd/.s'), files: [] }, ['../../etc/passwd'])).rejects.toMatchObject({ code: 'UNSAFE_ARCHIVE' });
  });

  it('sweepStaging removes staging dirs older than 10 minutes, but never one this process still uses', async () => {
    const root = await tempDir();
    const dest = join(root, 'rules');
    const crashed = join(dest, '.diginfractl-staging-crashed');
    const inUse = join(dest, '.diginfractl-staging-inuse');
    const fresh = join(dest, '.diginfractl-staging-fresh');
    for (const d of [crashed, inUse, fresh]) await mkdir(d, { recursive: true });
    await writeFile(join(dest, 'falco_rules.yaml'), '- macro: live\n');
    const longAgo = new Date(Date.now() - 11 * 60_000);
    await utimes(crashed, longAgo, longAgo);
    await utimes(inUse, longAgo, longAgo);
    await utimes(join(dest, 'falco_rules.yaml'), longAgo, longAgo);
    expect(await sweepStaging(dest, [inUse])).toEqual([crashed]);
    expect((await readdir(dest)).sort()).toEqual(['.diginfractl-staging-fresh', '.diginfractl-staging-inuse', 'falco_rules.yaml']);
    // A missing dir is nothing to sweep.
    expect(await sweepStaging(join(root, 'missing'))).toEqual([]);
  });
});
