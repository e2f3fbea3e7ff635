import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { engineVersionFrom, engineVersionSource } from '../../src/follow/engine-version.js';
import { checkRulesFiles, isRulesYaml, runValidateCmd } from '../../src/follow/validate.js';
import { tempDir } from '../helpers/fs.js';

describe('rules file checks', () => {
  it('accepts a YAML list, refuses other YAML, broken YAML and empty files (in a worker thread)', async () => {
    const dir = await tempDir();
    const write = async (name: string, text: string) => {
      const path = join(dir, name);
      await writeFile(path, text);
      return { path, label: name };
    };
    await expect(checkRulesFiles([await write('ok.yaml', '- rule: a\n  condition: x\n'), await write('ok2.yaml', '- required_engine_version: 0.40.0\n')])).resolves.toBeUndefined();
    await expect(checkRulesFiles([await write('map.yaml', 'rule: a\n')])).rejects.toMatchObject({ reason: 'not_a_list', code: 'VALIDATION_FAILED' });
    await expect(checkRulesFiles([await write('text.yaml', 'just text')])).rejects.toMatchObject({ reason: 'not_a_list' });
    await expect(checkRulesFiles([await write('ok3.yaml', '- a\n'), await write('broken.yaml', '- a: [1, 2\n')])).rejects.toMatchObject({ reason: 'invalid_yaml', message: expect.stringContaining('broken.yaml is not valid YAML: line') });
    await expect(checkRulesFiles([await write('empty.yaml', '')])).rejects.toMatchObject({ reason: 'invalid_yaml' });
    await expect(checkRulesFiles([{ path: join(dir, 'missing.yaml'), label: 'missing.yaml' }])).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(checkRulesFiles([])).resolves.toBeUndefined();
    expect(isRulesYaml('a/b.yaml')).toBe(true);
    expect(isRulesYaml('x.YML')).toBe(true);
    expect(isRulesYaml('libx.so')).toBe(false);
  });

  it("runs the check's child with the Node options it is given (the CLI gives the agent's, less its lean V8 flags)", async () => {
    const dir = await tempDir();
    const file = join(dir, 'ok.yaml');
    await writeFile(file, '- rule: a\n');
    const marker = join(dir, 'preloaded');
    const preload = join(dir, 'preload.cjs');
    await writeFile(preload, `require('node:fs').writeFileSync(${JSON.stringify(marker)}, process.execArgv.join(' '));\n`);
    await checkRulesFiles([{ path: file, label: 'ok.yaml' }], { execArgv: ['--require', preload, '--max-semi-space-size=1'] });
    expect(await readFile(marker, 'utf8')).toBe(`--require ${preload} --max-semi-space-size=1`);
    await expect(checkRulesFiles([{ path: file, label: 'ok.yaml' }], { execArgv: ['--no-such-node-option'] })).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining('bad option') });
  });

  it('runs --validate-cmd with the staged path last, quoting it', async () => {
    const dir = await tempDir();
    const seen = join(dir, 'seen');
    const script = join(dir, 'v.sh');
    await writeFile(script, `#!/bin/sh\nprintf '%s\\n' "$@" > '${seen}'\ncase "$2" in *bad*) echo "nope: $2" >&2; exit 4;; esac\nexit 0\n`);
    await chmod(script, 0o755);
    const good = join(dir, 'good rules; $(rm -rf x).yaml');
    await runValidateCmd(`${script} --flag`, good, 'good');
    const { readFile } = await import('node:fs/promises');
    expect(await readFile(seen, 'utf8')).toBe(`--flag\n${good}\n`);
    await expect(runValidateCmd(`${script} --flag`, join(dir, 'bad.yaml'), 'bad')).rejects.toMatchObject({ reason: 'validate_cmd', message: expect.stringContaining('exited with 4: nope') });
    await expect(runValidateCmd('/nonexistent/validator', good, 'x')).rejects.toMatchObject({ reason: 'validate_cmd' });
    await expect(runValidateCmd('sleep 10; :', good, 'slow', { timeoutMs: 200 })).rejects.toMatchObject({ message: expect.stringContaining('did not finish') });
  });
});

describe('engine version', () => {
  it('reads engine_version from a versions document', () => {
    expect(engineVersionFrom({ engine_version: '0.40.0' })).toBe('0.40.0');
    expect(engineVersionFrom({ engine_version: 31 })).toBe('0.31.0');
    expect(engineVersionFrom({ version: '1' })).toBeUndefined();
    expect(engineVersionFrom([])).toBeUndefined();
  });

  it('a fixed version needs no URL; none at all checks nothing; a dead URL fails with NETWORK', async () => {
    expect(await engineVersionSource({ version: '0.41.0' }).get()).toBe('0.41.0');
    expect(await engineVersionSource({}).get()).toBeUndefined();
    await expect(engineVersionSource({ url: 'http://127.0.0.1:1/versions', timeoutMs: 500 }).get()).rejects.toMatchObject({ code: 'NETWORK' });
  });
});
