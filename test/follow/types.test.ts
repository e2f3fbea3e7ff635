/**
 * `artifact follow` of an artifact type other than rulesfile and plugin (built CLI, real registry):
 * placed in the directory given for its type, swapped like a rules file but not checked as YAML, and
 * refused (reason type_not_allowed) when the type has no directory.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliEnv, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tempDir } from '../helpers/fs.js';
import { pushClient, pushFiles } from '../helpers/push.js';

describe('artifact follow: other artifact types (built CLI, real registry)', () => {
  let reg: TestRegistry;
  let env: NodeJS.ProcessEnv;
  let root: string;

  beforeAll(async () => {
    reg = await startRegistry();
    env = await cliEnv();
    root = await tempDir('diginfractl-follow-types-');
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('places an asset in its directory, swaps a new version (old files removed), and never parses it as rules', async () => {
    const client = pushClient();
    const ref = `${reg.host}/assets/geo:stable`;
    // Not YAML at all: a rules file like this would be refused.
    await pushFiles(client, ref, '1.0.0', { 'geo-v1.mmdb': '\u0000\u00ffbinary v1' }, { type: 'asset', name: 'geo' });
    const assets = join(root, 'assets');
    const follow = (...extra: string[]) =>
      runCli(['artifact', 'follow', ref, '--once', '--plain-http', '--rulesfiles-dir', join(root, 'rules'), '--state-dir', join(root, 'state'), ...extra], { env });

    // Not allowed (the default allows rulesfile only), then allowed but without a directory: refused, nothing placed.
    const notAllowed = await follow('--dir', `asset=${assets}`);
    expect(notAllowed.code).toBe(1);
    expect(notAllowed.stdout).toContain('rejected (type_not_allowed)');
    expect(notAllowed.stdout).toContain('geo 1.0.0 is of type "asset", not in the allowed types (rulesfile)');
    const noDir = await follow('--allowed-types', 'rulesfile,asset', '-o', 'json');
    expect(noDir.code).toBe(1);
    const [outcome] = JSON.parse(noDir.stdout) as { reason: string; message: string }[];
    expect(outcome).toMatchObject({ reason: 'type_not_allowed' });
    expect(outcome!.message).toContain('geo 1.0.0 is of type "asset", and no directory is set for that type (--dir asset=DIR, or follow.dirs.asset)');
    expect(await readdir(root)).not.toContain('assets');

    const first = await follow('--allowed-types', 'rulesfile,asset', '--dir', `asset=${assets}`);
    expect(first.stderr).not.toContain('error');
    expect(first.code).toBe(0);
    expect(await readFile(join(assets, 'geo-v1.mmdb'), 'utf8')).toBe('\u0000\u00ffbinary v1');
    expect((await stat(join(assets, 'geo-v1.mmdb'))).mode & 0o777).toBe(0o644);

    await pushFiles(client, ref, '2.0.0', { 'geo-v2.mmdb': '\u0000\u00ffbinary v2' }, { type: 'asset', name: 'geo' });
    const second = await follow('--allowed-types', 'rulesfile,asset', '--dir', `asset=${assets}`);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(`${ref}: updated 2.0.0`);
    expect(await readdir(assets)).toEqual(['geo-v2.mmdb']);
  });
});
