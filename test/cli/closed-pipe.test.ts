/**
 * A reader that stops early (`diginfractl repo push ... | head -1`): the command finishes its work,
 * exits with its own status and prints no stack trace (docs/output.md). The built CLI, the real
 * registry; the reader's end is closed before the command writes, so the EPIPE is certain.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { CLI, cliEnv, NODE, requireCli, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

let reg: TestRegistry;
let env: NodeJS.ProcessEnv & { HOME: string };
let rules: string;

beforeAll(async () => {
  requireCli('repo', ['push']);
  reg = await startRegistry();
  env = await cliEnv();
  await writeFile(env.DIGINFRACTL_CONFIG!, stringify({ indexes: [], registry: { plainHttp: [reg.host] } }));
  rules = join(await mkdtemp(join(tmpdir(), 'diginfractl-pipe-')), 'pipe_rules.yaml');
  await writeFile(rules, '- list: pipe\n  items: []\n');
}, 60_000);

afterAll(async () => {
  await reg?.stop();
});

/** Runs the CLI with the read end of stdout (and of stderr, with `closeStderr`) closed before it writes. */
function runWithClosedReader(args: string[], closeStderr = false): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.on('error', reject);
    child.stdout.destroy();
    if (closeStderr) child.stderr.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}

describe('a closed pipe', () => {
  it('repo push | (reader gone): the push completes, exit 0, nothing on stderr', async () => {
    const r = await runWithClosedReader(['repo', 'push', `${reg.host}/rules/pipe`, rules, '--type', 'rulesfile', '--version', '1.0.0', '--add-floating-tags', '-t', 'stable']);
    expect(r).toEqual({ code: 0, signal: null, stderr: '' });
    const info = await runCli(['artifact', 'info', `${reg.host}/rules/pipe:stable`, '-o', 'json'], { env });
    expect((JSON.parse(info.stdout) as { version: string; tags: string[] }[])[0]).toMatchObject({ version: '1.0.0', tags: ['1.0.0', '1', '1.0', 'latest', 'stable'] });
  });

  it('repo push ... | head -1 in a shell: the first line, and no stack trace', async () => {
    const script = `set -o pipefail; "$0" "$1" repo push "$2" "$3" --type rulesfile --version 1.1.0 --add-floating-tags -t more | head -1`;
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn('bash', ['-c', script, NODE, CLI, `${reg.host}/rules/pipe`, rules], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^pushed ${reg.host}/rules/pipe:1\\.1\\.0@sha256:[0-9a-f]{64}\\n$`));
  });

  it('artifact manifest (raw bytes) and a JSON document to a closed pipe: exit 0, quiet', async () => {
    expect(await runWithClosedReader(['artifact', 'manifest', `${reg.host}/rules/pipe:1.0.0`])).toEqual({ code: 0, signal: null, stderr: '' });
    expect(await runWithClosedReader(['artifact', 'info', `${reg.host}/rules/pipe:1.0.0`, '-o', 'json'])).toEqual({ code: 0, signal: null, stderr: '' });
  });

  it('stderr closed too (logs with nowhere to go): the command still does its work and its status stands', async () => {
    const ok = await runWithClosedReader(['repo', 'push', `${reg.host}/rules/pipe`, rules, '--type', 'rulesfile', '--version', '1.2.0', '--log-level', 'debug', '--log-format', 'json'], true);
    expect(ok.code).toBe(0);
    const failed = await runWithClosedReader(['repo', 'pull', `${reg.host}/rules/none:1.0.0`], true);
    expect(failed.code).toBe(1);
    expect((await runCli(['artifact', 'info', `${reg.host}/rules/pipe:1.2.0`], { env })).code).toBe(0);
  });
});
