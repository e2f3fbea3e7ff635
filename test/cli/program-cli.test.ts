/**
 * The command tree: the program declares only the command group named first on the command line
 * (start-up cost of `artifact search`), so help, suggestions and global options must not depend on it.
 */
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, NODE, ROOT, cliEnv, runCli } from '../helpers/cli.js';

describe('command tree', () => {
  it('top-level help lists every group; a group\'s help lists its commands', async () => {
    const env = await cliEnv();
    const top = await runCli(['--help'], { env });
    expect(top.code).toBe(0);
    for (const g of ['repo', 'index', 'artifact', 'config', 'version']) expect(top.stdout).toMatch(new RegExp(`^  ${g}\\b`, 'm'));
    const artifact = await runCli(['artifact', '--help'], { env });
    expect(artifact.code).toBe(0);
    for (const c of ['search', 'info', 'install', 'follow', 'rollback']) expect(artifact.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
    const viaHelp = await runCli(['help', 'artifact'], { env });
    expect(viaHelp.stdout).toBe(artifact.stdout);
  });

  it('an unknown command, at the top or in a group, fails with a suggestion and exit code 2', async () => {
    const env = await cliEnv();
    const top = await runCli(['artifcat', 'search'], { env });
    expect(top.code).toBe(2);
    expect(top.stderr).toContain("unknown command 'artifcat'");
    expect(top.stderr).toContain('(Did you mean artifact?)');
    const inGroup = await runCli(['artifact', 'serch', 'x'], { env });
    expect(inGroup.code).toBe(2);
    expect(inGroup.stderr).toContain("unknown command 'serch'");
    expect(inGroup.stderr).toContain('(Did you mean search?)');
  });

  it('global options work before the group and after the command', async () => {
    const env = await cliEnv();
    const other = `${env.HOME}/other.yaml`;
    const { writeFile } = await import('node:fs/promises');
    await writeFile(other, 'indexes: []\n');
    for (const args of [['--config', other, 'config', 'show', '-o', 'json'], ['config', 'show', '-o', 'json', '--config', other]]) {
      const r = await runCli(args, { env });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).path).toBe(other);
    }
  });

  it('the bin runs through its shebang (env -S with the malloc settings, then node), as npm and the image run it', async () => {
    const env = await cliEnv({ PATH: `${dirname(NODE)}:${process.env.PATH}` });
    const out = await new Promise<string>((ok, fail) => execFile(CLI, ['--version'], { env }, (err, stdout) => (err ? fail(err) : ok(stdout))));
    expect(out).toBe('0.1.0\n');
  });

  it('a command that stalls (nothing left to wait for, work unfinished) fails with exit 1 instead of exiting 0 in silence', async () => {
    const run = (work: string) =>
      new Promise<{ code: number; stderr: string }>((ok) => {
        const script = `import('${join(ROOT, 'dist/cli/run.js')}').then((m) => m.failIfUnfinished(${work}))`;
        execFile(NODE, ['-e', script], (err, _stdout, stderr) => ok({ code: err ? Number((err as { code?: number }).code) : 0, stderr }));
      });
    const stalled = await run('new Promise(() => {})');
    expect(stalled.code).toBe(1);
    expect(stalled.stderr).toContain('error: internal error: the command stopped before it finished');
    const finished = await run('new Promise((r) => setTimeout(r, 50))');
    expect(finished).toEqual({ code: 0, stderr: '' });
  });
});
