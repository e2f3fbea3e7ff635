/**
 * Hostile archives, hand-made, against the extractor and the built CLI with a real registry: names
 * that would spoof output (control characters), names that leave the staging dir even when the first
 * check lets them by (nothing may be created outside staging), archives `repo push` must refuse, and
 * layers whose media type does not match the artifact's type.
 */
import { lstat, mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { checkLayer, extractLayer } from '../../src/artifact/extract-layer.js';
import { pushArtifact } from '../../src/artifact/push.js';
import { parseOciReference } from '../../src/reference/reference.js';
import type { RegistryClient } from '../../src/registry/index.js';
import { requireCli, runCli } from '../helpers/cli.js';
import { errorOf } from '../helpers/errors.js';
import { exists, tempDir } from '../helpers/fs.js';
import { hostileLayer, pushRawArtifact } from '../helpers/hostile.js';
import { pushClient } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { namesIn, node } from './setup.js';

let reg: TestRegistry;
let client: RegistryClient;

beforeAll(async () => {
  requireCli('artifact', ['install', 'follow']);
  requireCli('repo', ['push', 'pull']);
  reg = await startRegistry();
  client = pushClient();
}, 60_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
});

/** A temp root with a staging dir two levels down, so `../../x` would still land inside the root. */
async function staging(): Promise<{ root: string; dir: string }> {
  const root = await mkdtemp(join(tmpdir(), 'hostile-'));
  const dir = join(root, 'dest', 'sub', 'staging');
  await mkdir(dir, { recursive: true });
  return { root, dir };
}

/** Every path under `root` that is not the staging dir, one of its parents, or inside it. */
async function outsideStaging(root: string, dir: string): Promise<string[]> {
  const stagingRel = relative(root, dir);
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const name of await readdir(d)) {
      const abs = join(d, name);
      const rel = relative(root, abs);
      if (!rel.startsWith(`${stagingRel}/`) && !`${stagingRel}/`.startsWith(`${rel}/`)) out.push(rel);
      if ((await lstat(abs)).isDirectory()) await walk(abs);
    }
  };
  await walk(root);
  return out;
}

describe('file names with control characters', () => {
  const names = ['rules.yaml\ninstalled rulesfile evil 6.6.6', 'a\rb.yaml', 'tab\there.yaml', 'esc\u001b[2Jx.yaml', 'del\u007f.yaml', 'csi\u009b31m.yaml', 'dir\nname/x.yaml'];

  it.each(names)('extractLayer refuses %j and writes nothing', async (name) => {
    const { root, dir } = await staging();
    const err = await errorOf(extractLayer(Readable.from([hostileLayer([{ path: 'ok.yaml', data: 'x' }, { path: name, data: 'y' }])]), dir, { maxBytes: 1 << 20 }));
    expect(err.code).toBe('UNSAFE_ARCHIVE');
    expect(err.message).toContain(`entry ${JSON.stringify(name)} has a control character in its name`);
    expect(await outsideStaging(root, dir)).toEqual([]);
    expect(await readdir(dir)).not.toContain(name.split('/')[0]);
  });

  it('artifact install refuses the artifact: exit 1, the name escaped on one line, no spoofed output, nothing installed', async () => {
    const spoof = 'rules.yaml\ninstalled rulesfile trusted 9.9.9 from ghcr.io/trusted/rules:9.9.9';
    await pushRawArtifact(client, `${reg.host}/evil/spoof:1.0.0`, {
      type: 'rulesfile',
      name: 'spoof',
      version: '1.0.0',
      layers: [{ bytes: hostileLayer([{ path: spoof, data: '- list: x\n  items: []\n' }]) }],
    });
    const n = await node([reg.host]);
    const r = await runCli(['artifact', 'install', `${reg.host}/evil/spoof:1.0.0`], { env: n.env });
    expect(r.code).toBe(1);
    expect(r.stdout).not.toContain('installed rulesfile trusted');
    expect(r.stderr).not.toMatch(/^installed rulesfile trusted/m);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
    expect(errors).toEqual([`error: entry ${JSON.stringify(spoof)} has a control character in its name`]);
    expect(await namesIn(n.rules)).toEqual([]);
  });
});

describe('the guard before anything is created', () => {
  it('with the entry-name checks gone, a name leaving staging is still refused before any directory is made outside it', async () => {
    vi.resetModules();
    // The mutation an outside tester made: safeRelative normalizes but refuses nothing.
    vi.doMock('../../src/artifact/extract-checks.js', async (importOriginal) => ({
      ...(await importOriginal<typeof import('../../src/artifact/extract-checks.js')>()),
      safeRelative: (path: string) => path.split('/').filter((p) => p !== '' && p !== '.').join('/'),
    }));
    try {
      const { extractLayer: unguarded } = await import('../../src/artifact/extract-layer.js');
      for (const entries of [
        [{ path: '../../escape/deep/er/file.yaml', data: 'x' }],
        [{ path: '../../escape-dir/', type: 'Directory' as const }],
        [{ path: 'ok/../../../escape2/f.yaml', data: 'x' }],
      ]) {
        const { root, dir } = await staging();
        // A fresh module graph: its DiginfraError is another class than this file's, so no errorOf here.
        const err = (await unguarded(Readable.from([hostileLayer(entries)]), dir, { maxBytes: 1 << 20 }).then(
          () => undefined,
          (e: unknown) => e,
        )) as { code?: string; message: string };
        expect(err.code).toBe('UNSAFE_ARCHIVE');
        expect(err.message).toContain('leaves the target directory');
        expect(await outsideStaging(root, dir)).toEqual([]);
      }
    } finally {
      vi.doUnmock('../../src/artifact/extract-checks.js');
      vi.resetModules();
    }
  });
});


/** Layers every consumer refuses, each with the message extraction gives. */
const refused: { what: string; entries: Parameters<typeof hostileLayer>[0]; message: string }[] = [
  { what: 'a ../ entry', entries: [{ path: 'ok.yaml', data: 'x' }, { path: '../evil.yaml', data: 'x' }], message: 'entry "../evil.yaml" leaves the target directory with ".."' },
  { what: 'an absolute path', entries: [{ path: '/etc/evil.yaml', data: 'x' }], message: 'entry "/etc/evil.yaml" has an absolute path' },
  { what: 'a symbolic link', entries: [{ path: 'link.yaml', type: 'SymbolicLink', linkpath: '/etc/shadow' }], message: 'entry "link.yaml" is a symbolic link to "/etc/shadow"' },
  { what: 'a newline in a name', entries: [{ path: 'a\nb.yaml', data: 'x' }], message: 'entry "a\\nb.yaml" has a control character in its name' },
  { what: 'a file made a directory', entries: [{ path: 'a', data: 'x' }, { path: 'a/b.yaml', data: 'y' }], message: 'entry "a/b.yaml" needs "a" to be a directory' },
  { what: 'the same file twice', entries: [{ path: 'r.yaml', data: 'x' }, { path: './r.yaml', data: 'y' }], message: 'entry "./r.yaml" appears twice' },
];

describe('repo push checks a .tar.gz by the rules of extraction', () => {
  it.each(refused)('checkLayer and extractLayer refuse $what with the same error', async ({ entries, message }) => {
    const layer = hostileLayer(entries);
    const checked = await errorOf(checkLayer(Readable.from([layer]), { maxBytes: 1 << 20 }));
    const { dir } = await staging();
    const extracted = await errorOf(extractLayer(Readable.from([layer]), dir, { maxBytes: 1 << 20 }));
    expect(checked.code).toBe('UNSAFE_ARCHIVE');
    expect(checked.message).toContain(message);
    expect(checked.message).toBe(extracted.message);
  });

  it.each(refused)('pushArtifact refuses a .tar.gz with $what and uploads nothing', async ({ entries, message }) => {
    const file = join(await tempDir('hostile-push-'), 'rules.tar.gz');
    await writeFile(file, hostileLayer(entries));
    const repo = `evil/push-${Math.random().toString(36).slice(2, 8)}`;
    const err = await errorOf(pushArtifact(client, parseOciReference(`${reg.host}/${repo}:1.0.0`), { type: 'rulesfile', version: '1.0.0', files: [file] }));
    expect(err.code).toBe('UNSAFE_ARCHIVE');
    expect(err.message.startsWith(`refusing to push ${file}: `)).toBe(true);
    expect(err.message).toContain(message);
    expect(err.hint).toContain('nothing was pushed');
    // Not even the config blob: the repository was never created.
    expect(await exists(join(reg.storageDir, 'docker/registry/v2/repositories', repo))).toBe(false);
  });

  it('the CLI exits 1 naming the file and the entry; a clean archive and a plain file still push', async () => {
    const n = await node([reg.host]);
    const dir = await tempDir('hostile-push-');
    const bad = join(dir, 'bad.tar.gz');
    await writeFile(bad, hostileLayer(refused[0]!.entries));
    const r = await runCli(['repo', 'push', `${reg.host}/evil/cli:1.0.0`, bad, '--type', 'rulesfile', '--version', '1.0.0'], { env: n.env });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: refusing to push ${bad}: entry "../evil.yaml" leaves the target directory with ".."`);
    expect(r.stderr).toContain('hint: nothing was pushed');
    expect(await exists(join(reg.storageDir, 'docker/registry/v2/repositories/evil/cli'))).toBe(false);

    const good = join(dir, 'good.tar.gz');
    await writeFile(good, hostileLayer([{ path: 'rules/', type: 'Directory' }, { path: 'rules/a.yaml', data: '- list: a\n  items: []\n' }]));
    const ok = await runCli(['repo', 'push', `${reg.host}/good/archive:1.0.0`, good, '--type', 'rulesfile', '--version', '1.0.0'], { env: n.env });
    expect(ok.stderr).not.toContain('error:');
    expect(ok.code).toBe(0);
    const plain = join(dir, 'plain.yaml');
    await writeFile(plain, '- list: p\n  items: []\n');
    expect((await runCli(['repo', 'push', `${reg.host}/good/plain:1.0.0`, plain, '--type', 'rulesfile', '--version', '1.0.0'], { env: n.env })).code).toBe(0);
  });

  it('refuses a file to pack whose name has a control character', async () => {
    const file = join(await tempDir('hostile-push-'), 'x\ny.yaml');
    await writeFile(file, '- list: x\n  items: []\n');
    const err = await errorOf(pushArtifact(client, parseOciReference(`${reg.host}/evil/name:1.0.0`), { type: 'rulesfile', version: '1.0.0', files: [file] }));
    expect(err.code).toBe('UNSAFE_ARCHIVE');
    expect(err.message).toContain('has a control character in its name');
  });
});

describe('a layer whose media type is not the artifact\'s type', () => {
  it('is refused by install, pull and follow alike, and nothing is written', async () => {
    const ref = `${reg.host}/evil/mixed:1.0.0`;
    await pushRawArtifact(client, ref, {
      type: 'rulesfile',
      name: 'mixed',
      version: '1.0.0',
      layers: [
        { bytes: hostileLayer([{ path: 'rules.yaml', data: '- list: x\n  items: []\n' }]) },
        { bytes: hostileLayer([{ path: 'libevil.so', data: '\u007fELF' }]), mediaType: 'application/vnd.cncf.diginfra.plugin.layer.v1+tar.gz' },
      ],
    });
    const n = await node([reg.host]);
    const state = join(n.env.HOME, 'state');
    const runs = {
      install: await runCli(['artifact', 'install', ref], { env: n.env }),
      pull: await runCli(['repo', 'pull', ref, '--dest', n.pulled], { env: n.env }),
      follow: await runCli(['artifact', 'follow', ref, '--once', '--rulesfiles-dir', n.rules, '--state-dir', state, '--plain-http'], { env: n.env }),
    };
    for (const [command, r] of Object.entries(runs)) {
      expect(r.code, command).toBe(1);
      expect(r.stderr + r.stdout, command).toMatch(/mixed:1\.0\.0(@sha256:[a-f0-9]{64})? is a rulesfile artifact, but its layer sha256:[a-f0-9]{64} is a plugin layer/);
    }
    expect(await namesIn(n.rules)).toEqual([]);
    expect(await namesIn(n.pulled)).toEqual([]);
  });
});
