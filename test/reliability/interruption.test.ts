/**
 * kill -9 of a real `artifact install` in the middle of a multi-file upgrade (300 files: some
 * identical, most changed, some new, some removed), at many points of its move phase, then the
 * recovery the next install runs first: the rules dir is exactly one version again, the one its lock
 * file records, with no staging dir, backup, record or lock left.
 *
 * The points are reached deterministically: DIGINFRACTL_TEST_STOP_AT makes the install stop itself
 * (SIGSTOP) after the Nth change of its move phase (util/fs/place-sets.ts), so the test can first
 * see the mix a kill leaves there (that is what recovery must repair), then SIGKILL it.
 */
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recoverInterruptedChanges } from '../../src/install/recover.js';
import { readLockfile } from '../../src/install/lockfile.js';
import type { RegistryClient } from '../../src/registry/index.js';
import { INTENT_NAME } from '../../src/util/index.js';
import { requireCli, runCli, spawnCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { pushClient } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { installedFiles, leftoversIn, namesIn, node, processState, pushOneLayer, type Node } from './setup.js';

type Version = Record<string, string>;

const pad = (i: number): string => String(i).padStart(3, '0');
/** v1: r000..r299. */
const V1: Version = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`r${pad(i)}.yaml`, `# v1 r${pad(i)}\n`]));
/** v2: r000..r009 identical, r010..r249 changed, r250..r299 gone, n000..n049 new. */
const V2: Version = {
  ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`r${pad(i)}.yaml`, `# v1 r${pad(i)}\n`])),
  ...Object.fromEntries(Array.from({ length: 240 }, (_, i) => [`r${pad(i + 10)}.yaml`, `# v2 r${pad(i + 10)}\n`])),
  ...Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`n${pad(i)}.yaml`, `# v2 n${pad(i)}\n`])),
};
/** Changes of the upgrade, in the order it makes them: 50 new files, 240 replaced, then 50 removals. */
const PLACES = 290;
const CHANGES = PLACES + 50;

let reg: TestRegistry;
let client: RegistryClient;
const ref = (version: string): string => `${reg.host}/churn/rules:${version}`;

beforeAll(async () => {
  requireCli('artifact', ['install']);
  reg = await startRegistry();
  client = pushClient();
  await pushOneLayer(client, ref('1.0.0'), { name: 'churn', version: '1.0.0', files: V1 });
  await pushOneLayer(client, ref('2.0.0'), { name: 'churn', version: '2.0.0', files: V2 });
}, 120_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
});



/** Starts the upgrade to 2.0.0 and returns once it stopped itself at `point` (a live, stopped process). */
async function stoppedUpgrade(n: Node, point: string): Promise<{ pid: number; kill: () => Promise<void> }> {
  const child = spawnCli(['artifact', 'install', ref('2.0.0')], { env: { ...n.env, DIGINFRACTL_TEST_STOP_AT: point } });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const pid = child.pid!;
  for (const started = Date.now(); (await processState(pid)) !== 'T'; await sleep(20)) {
    if (child.exitCode !== null || Date.now() - started > 30_000) throw new Error(`the install did not stop at ${point} (exit ${child.exitCode}): ${stderr}`);
  }
  return {
    pid,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The rules dir holds exactly one version, the one its lock file records, and nothing else of ours. */
async function expectOneVersion(n: Node, expected: '1.0.0' | '2.0.0'): Promise<void> {
  const lock = await readLockfile(join(n.rules, 'diginfractl.lock'));
  const entry = lock!.artifacts.find((a) => a.name === 'churn')!;
  expect(entry.version).toBe(expected);
  const files = await installedFiles(n.rules);
  expect(Object.keys(files).sort()).toEqual([...entry.files].sort());
  expect(files).toEqual(expected === '1.0.0' ? V1 : V2);
  expect(await leftoversIn(n.rules)).toEqual([]);
  expect(await namesIn(n.rules)).toEqual([...Object.keys(files), 'diginfractl.lock'].sort());
}

const POINTS: { point: string; placed: number; removed: number; settles: '1.0.0' | '2.0.0' }[] = [
  { point: 'change:0', placed: 0, removed: 0, settles: '1.0.0' },
  { point: 'change:1', placed: 1, removed: 0, settles: '1.0.0' },
  { point: 'change:25', placed: 25, removed: 0, settles: '1.0.0' },
  { point: 'change:150', placed: 150, removed: 0, settles: '1.0.0' },
  { point: `change:${PLACES}`, placed: PLACES, removed: 0, settles: '1.0.0' },
  { point: `change:${PLACES + 25}`, placed: PLACES, removed: 25, settles: '1.0.0' },
  { point: `change:${CHANGES}`, placed: PLACES, removed: 50, settles: '1.0.0' },
  { point: 'commit', placed: PLACES, removed: 50, settles: '2.0.0' },
];

describe('kill -9 during the move phase of an upgrade', () => {
  it.each(POINTS)('killed at $point, recovery makes it $settles again', async ({ point, placed, removed, settles }) => {
    const n = await node([reg.host]);
    expect((await runCli(['artifact', 'install', ref('1.0.0')], { env: n.env })).code).toBe(0);
    await expectOneVersion(n, '1.0.0');

    const upgrade = await stoppedUpgrade(n, point);
    // What a kill here leaves: `placed` files of v2 in (new ones first, then replaced), `removed` gone.
    const mid = await installedFiles(n.rules);
    const v2Only = Object.keys(mid).filter((f) => mid[f] === V2[f] && V1[f] !== V2[f]).length;
    expect(v2Only).toBe(placed);
    expect(Object.keys(V1).filter((f) => !(f in V2) && !(f in mid))).toHaveLength(removed);
    expect(await namesIn(n.rules)).toContain(INTENT_NAME);
    await upgrade.kill();
    const lockNow = await readLockfile(join(n.rules, 'diginfractl.lock'));
    expect(lockNow!.artifacts[0]!.version).toBe(point === 'commit' ? '2.0.0' : '1.0.0');

    const settled = await recoverInterruptedChanges([n.rules], { timeoutMs: 10_000 });
    expect(settled.map((s) => s.outcome)).toEqual([settles === '2.0.0' ? 'completed' : 'rolled-back']);
    expect(settled[0]!.record.pid).toBe(upgrade.pid);
    await expectOneVersion(n, settles);
    // Nothing left to do the second time.
    expect(await recoverInterruptedChanges([n.rules])).toEqual([]);
  }, 60_000);

  it('a reinstall of the version the lock file already records is completed, not undone', async () => {
    const n = await node([reg.host]);
    expect((await runCli(['artifact', 'install', ref('2.0.0')], { env: n.env })).code).toBe(0);
    // Someone edited 100 of the installed files; installing 2.0.0 again puts them back.
    for (let i = 10; i < 110; i++) await writeFile(join(n.rules, `r${pad(i)}.yaml`), 'edited by hand\n');
    const upgrade = await stoppedUpgrade(n, 'change:40');
    await upgrade.kill();
    const settled = await recoverInterruptedChanges([n.rules]);
    expect(settled.map((s) => s.outcome)).toEqual(['completed']);
    await expectOneVersion(n, '2.0.0');
  }, 60_000);

  it('refuses a record that points outside the directories it names, and touches nothing', async () => {
    const n = await node([reg.host]);
    expect((await runCli(['artifact', 'install', ref('1.0.0')], { env: n.env })).code).toBe(0);
    const victim = join(await tempDir('victim-'), 'keep.txt');
    await writeFile(victim, 'keep');
    const forged = { version: 1, pid: 1, host: 'x', startedAt: 'then', dirs: [n.rules], changes: [{ op: 'remove', path: victim, backup: join(n.rules, '.x') }], newDirs: [], scratch: [] };
    await writeFile(join(n.rules, INTENT_NAME), JSON.stringify(forged));
    await expect(recoverInterruptedChanges([n.rules])).rejects.toThrow(/leaves the directories the record names/);
    expect(await readFile(victim, 'utf8')).toBe('keep');
  });

  it('the next artifact install settles it first, says so, then does its own work', async () => {
    const n = await node([reg.host]);
    expect((await runCli(['artifact', 'install', ref('1.0.0')], { env: n.env })).code).toBe(0);
    const upgrade = await stoppedUpgrade(n, 'change:200');
    await upgrade.kill();
    // A plain rerun of the same upgrade: first the mix is undone, then 2.0.0 is installed properly.
    const r = await runCli(['artifact', 'install', ref('2.0.0'), '-o', 'json'], { env: n.env });
    expect(r.code, r.stderr).toBe(0);
    const warning = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event?: string; outcome?: string; interruptedPid?: number; msg: string })
      .find((l) => l.event === 'recovered');
    expect(warning).toMatchObject({ outcome: 'rolled-back', interruptedPid: upgrade.pid });
    expect(warning!.msg).toContain(`an install killed while moving files (pid ${upgrade.pid}`);
    await expectOneVersion(n, '2.0.0');
  }, 60_000);
});
