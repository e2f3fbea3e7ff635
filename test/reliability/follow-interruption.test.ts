/**
 * kill -9 of a real `artifact follow` in the middle of a multi-file swap (some files identical, most
 * changed, some new, some removed), at many points, then a restart: follow settles the interrupted
 * swap before anything else (its intent record, written before the first rename), so the rules dir
 * holds exactly one version again, the one follow's state records, and nothing else of ours.
 *
 * The points are reached as in interruption.test.ts: DIGINFRACTL_TEST_STOP_AT makes the agent stop
 * itself (SIGSTOP) there; the test looks at the mix, SIGKILLs it, and restarts follow with the
 * registry gone (its proxy closed), so that what the restart does to the dir is the recovery alone.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistryClient } from '../../src/registry/index.js';
import { INTENT_NAME } from '../../src/util/index.js';
import { requireCli, runCli, spawnCli } from '../helpers/cli.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { pushClient } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { installedFiles, namesIn, node, processState, pushOneLayer, type Node } from './setup.js';

type Version = Record<string, string>;

const pad = (i: number): string => String(i).padStart(2, '0');
/** v1: r00..r59. */
const V1: Version = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`r${pad(i)}.yaml`, `- list: v1_r${pad(i)}\n  items: []\n`]));
/** v2: r00..r04 identical, r05..r44 changed, r45..r59 gone, n00..n09 new. */
const V2: Version = {
  ...Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`r${pad(i)}.yaml`, V1[`r${pad(i)}.yaml`]!])),
  ...Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`r${pad(i + 5)}.yaml`, `- list: v2_r${pad(i + 5)}\n  items: []\n`])),
  ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`n${pad(i)}.yaml`, `- list: v2_n${pad(i)}\n  items: []\n`])),
};
/** Renames of the swap (10 new, 40 replaced), then 15 removals. */
const PLACES = 50;
const CHANGES = PLACES + 15;

let reg: TestRegistry;
let client: RegistryClient;

beforeAll(async () => {
  requireCli('artifact', ['follow']);
  reg = await startRegistry();
  client = pushClient();
  await pushOneLayer(client, `${reg.host}/churn/rules:1.0.0`, { name: 'churn', version: '1.0.0', files: V1 });
  await pushOneLayer(client, `${reg.host}/churn/rules:2.0.0`, { name: 'churn', version: '2.0.0', files: V2 });
}, 120_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
});



/** The version follow's state records as installed (its only ref). */
async function stateVersion(stateDir: string): Promise<{ version: string; files: string[] }> {
  const [key] = await readdir(join(stateDir, 'follow'));
  const state = JSON.parse(await readFile(join(stateDir, 'follow', key!, 'state.json'), 'utf8')) as { current: { version: string; files: string[] } };
  return state.current;
}

/** The rules dir holds exactly one version, the one follow's state records, and nothing else. */
async function expectOneVersion(n: Node, stateDir: string, expected: '1.0.0' | '2.0.0'): Promise<void> {
  const recorded = await stateVersion(stateDir);
  expect(recorded.version).toBe(expected);
  const files = await installedFiles(n.rules);
  expect(Object.keys(files).sort()).toEqual([...recorded.files].sort());
  expect(files).toEqual(expected === '1.0.0' ? V1 : V2);
  expect(await namesIn(n.rules)).toEqual(Object.keys(files).sort());
}

const POINTS: { point: string; settles: '1.0.0' | '2.0.0' }[] = [
  { point: 'change:0', settles: '1.0.0' },
  { point: 'change:1', settles: '1.0.0' },
  { point: 'change:25', settles: '1.0.0' },
  { point: `change:${PLACES}`, settles: '1.0.0' },
  { point: `change:${PLACES + 7}`, settles: '1.0.0' },
  { point: `change:${CHANGES}`, settles: '1.0.0' },
  { point: 'commit', settles: '2.0.0' },
];

describe('kill -9 of artifact follow during a swap', () => {
  it.each(POINTS)('killed at $point, the restart makes the dir $settles again, as its state says', async ({ point, settles }) => {
    const proxy = await startFaultProxy(reg);
    const n = await node([proxy.host]);
    const stateDir = join(n.env.HOME, 'state');
    const follow = (tag: string): string[] => ['artifact', 'follow', `${proxy.host}/churn/rules:${tag}`, '--once', '--rulesfiles-dir', n.rules, '--state-dir', stateDir];
    // The followed tag `live` points at 1.0.0, then at 2.0.0.
    const retag = async (version: string): Promise<void> => {
      const m = await client.fetchManifest({ registry: reg.host, repository: 'churn/rules', tag: version });
      await client.pushManifest({ registry: reg.host, repository: 'churn/rules', tag: 'live' }, m.bytes, m.descriptor.mediaType);
    };
    await retag('1.0.0');
    const first = await runCli(follow('live'), { env: n.env });
    expect(first.code, first.stderr).toBe(0);
    await expectOneVersion(n, stateDir, '1.0.0');

    await retag('2.0.0');
    const child = spawnCli(follow('live'), { env: { ...n.env, DIGINFRACTL_TEST_STOP_AT: point } });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    for (const started = Date.now(); (await processState(child.pid!)) !== 'T'; await sleep(20)) {
      if (child.exitCode !== null || Date.now() - started > 30_000) throw new Error(`follow did not stop at ${point} (exit ${child.exitCode}): ${stderr}`);
    }
    // A mix (or a finished swap not yet recorded) with the record that says how to settle it.
    expect(await namesIn(n.rules)).toContain(INTENT_NAME);
    child.kill('SIGKILL');
    await exited;

    // The restart cannot reach the registry: what it does to the dir is the recovery alone.
    await proxy.close();
    const restart = await runCli(follow('live'), { env: n.env, timeoutMs: 60_000 });
    expect(restart.code, restart.stderr).toBe(1);
    const recovered = restart.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { event?: string; outcome?: string; interruptedPid?: number })
      .find((l) => l.event === 'recovered');
    expect(recovered).toMatchObject({ outcome: settles === '2.0.0' ? 'completed' : 'rolled-back', interruptedPid: child.pid });
    await expectOneVersion(n, stateDir, settles);
  }, 90_000);
});
