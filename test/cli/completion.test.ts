/**
 * `diginfractl completion bash|zsh|fish` (falcoctl has it too): commands, flags, flag values, and
 * artifact names from the cached indexes, never the network. The bash script is run in a real bash,
 * as the shell calls it; zsh and fish are not installed here, so their scripts are checked for the
 * call they make.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { CLI, cliEnv, NODE, requireCli, runCli } from '../helpers/cli.js';
import { writeIndexFile } from './index-file.js';

let env: NodeJS.ProcessEnv & { HOME: string };

beforeAll(async () => {
  requireCli('index', ['add']);
  env = await cliEnv();
  const dir = await mkdtemp(join(tmpdir(), 'diginfractl-completion-'));
  const entry = (name: string, type: string) => ({ name, type, registry: 'ghcr.io', repository: `acme/${name}` });
  const corp = await writeIndexFile(dir, 'corp.yaml', [entry('k8saudit', 'plugin'), entry('k8saudit-rules', 'rulesfile'), entry('json', 'plugin')]);
  const other = await writeIndexFile(dir, 'other.yaml', [entry('k8saudit-eks', 'plugin')]);
  // Two cached indexes, and one never fetched whose server does not exist: completion must not try it.
  await writeFile(env.DIGINFRACTL_CONFIG!, stringify({ indexes: [] }));
  for (const [name, url] of [['corp', corp], ['other', other]]) {
    expect((await runCli(['index', 'add', name!, url!], { env })).code).toBe(0);
  }
  const config = parse(await readFile(env.DIGINFRACTL_CONFIG!, 'utf8')) as { indexes: unknown[] };
  config.indexes.push({ name: 'offline', url: 'https://unreachable.invalid/index.yaml' });
  await writeFile(env.DIGINFRACTL_CONFIG!, stringify(config));
  // `diginfractl` on PATH, as the scripts call it.
  const bin = join(dir, 'bin');
  await mkdir(bin);
  await writeFile(join(bin, 'diginfractl'), `#!/bin/sh\nexec "${NODE}" "${CLI}" "$@"\n`);
  await chmod(join(bin, 'diginfractl'), 0o755);
  env.PATH = `${bin}:${process.env.PATH}`;
}, 60_000);

/** What `diginfractl __complete` offers for the last of `words`. */
async function complete(...words: string[]): Promise<string[]> {
  const r = await runCli(['__complete', '--', ...words], { env });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout.split('\n').filter(Boolean);
}

/** Runs the bash script as bash does on TAB, for the command line `line` (cursor at its end). */
function bashComplete(line: string): Promise<string[]> {
  const script = `source <(diginfractl completion bash)
COMP_LINE="$1"; COMP_POINT=\${#COMP_LINE}
read -ra COMP_WORDS <<< "$COMP_LINE"; COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 ))
_diginfractl_complete
printf '%s\\n' "\${COMPREPLY[@]}"`;
  return new Promise((resolve, reject) =>
    execFile('bash', ['-c', script, 'bash', line], { env, timeout: 20_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.split('\n').filter(Boolean)))),
  );
}

describe('completion', () => {
  it('commands, subcommands (aliases too), flags and their values', async () => {
    expect(await complete('ar')).toEqual(['artifact']);
    expect(await complete('')).toEqual(expect.arrayContaining(['repo', 'index', 'artifact', 'config', 'completion', 'version']));
    expect(await complete('')).not.toContain('__complete');
    expect(await complete('artifact', 'in')).toEqual(['info', 'install']);
    expect(await complete('registry', 'pu')).toEqual(['push', 'pull']);
    expect(await complete('repo', 'pull', '--de')).toEqual(['--dest', '--dest-dir']);
    expect(await complete('artifact', 'search', '--type', '')).toEqual(['rulesfile', 'plugin', 'asset']);
    expect(await complete('config', 'show', '-o', '')).toEqual(['yaml', 'json']);
    expect(await complete('--log-format', '')).toEqual(['text', 'json', 'color']);
  });

  it('artifact names from the cached indexes, INDEX::NAME too, index names; no network for the index never fetched', async () => {
    const started = Date.now();
    expect(await complete('artifact', 'install', 'k8s')).toEqual(['k8saudit', 'k8saudit-eks', 'k8saudit-rules']);
    expect(await complete('artifact', 'info', 'corp::k8')).toEqual(['corp::k8saudit', 'corp::k8saudit-rules']);
    expect(await complete('repo', 'pull', '--plain-http', 'js')).toEqual(['json']);
    expect(await complete('index', 'remove', '')).toEqual(['corp', 'other', 'offline']);
    expect(await complete('artifact', 'search', '--index', 'o')).toEqual(['other', 'offline']);
    expect(await complete('repo', 'push', 'x')).toEqual([]);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('the bash script completes as bash calls it, INDEX::NAME after bash splits the word at ":"', async () => {
    expect(await bashComplete('diginfractl artifact ins')).toEqual(['install']);
    expect(await bashComplete('diginfractl artifact install k8saudit-')).toEqual(['k8saudit-eks', 'k8saudit-rules']);
    expect(await bashComplete('diginfractl artifact install other::k8s')).toEqual(['k8saudit-eks']);
    expect(await bashComplete('diginfractl artifact install ')).toEqual(['json', 'k8saudit', 'k8saudit-eks', 'k8saudit-rules']);
  });

  it('zsh and fish scripts ask the same command; another shell is refused', async () => {
    for (const shell of ['zsh', 'fish']) {
      const r = await runCli(['completion', shell], { env });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('diginfractl __complete --');
    }
    expect((await runCli(['completion', 'zsh'], { env })).stdout).toMatch(/^#compdef diginfractl$/m);
    expect((await runCli(['completion', 'fish'], { env })).stdout).toContain("complete -c diginfractl -a '(__diginfractl_complete)'");
    const tcsh = await runCli(['completion', 'tcsh'], { env });
    expect(tcsh.code).toBe(2);
    expect(tcsh.stderr).toContain('no completion for "tcsh": give bash, zsh or fish');
  });
});
