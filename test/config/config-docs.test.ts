/** docs/configuration.md documents every key and its environment variable; the example is valid. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { KEYS } from '../../src/config/keys.js';
import { validateConfig } from '../../src/config/validate.js';
import { defaultConfig } from '../../src/config/types.js';

const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'configuration.md'), 'utf8');

describe('docs/configuration.md', () => {
  it.each(KEYS.map((k) => [k.path, k.env]))('documents %s and %s in one table row', (path, env) => {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${path}\` |`));
    expect(row, path).toBeDefined();
    expect(row).toContain(`\`${env}\``);
  });

  it('states the defaults the code uses', () => {
    const d = defaultConfig();
    expect(doc).toMatch(/\| `follow\.every` \| `6h` \|/);
    expect(d.follow.every).toBe('6h');
    expect(doc).toMatch(/\| `follow\.jitter` \| `0\.1` \|/);
    expect(d.follow.jitter).toBe(0.1);
    expect(doc).toContain(`| \`install.rulesfilesDir\` | \`${d.install.rulesfilesDir}\` |`);
    expect(doc).toContain(`| \`install.pluginsDir\` | \`${d.install.pluginsDir}\` |`);
    expect(doc).toContain(`| \`follow.stateDir\` | \`${d.follow.stateDir}\` |`);
    expect(doc).toContain(d.indexes[0]!.url);
  });

  it('has an example that validates', () => {
    const block = /## Example\n\n```yaml\n([\s\S]*?)```/.exec(doc)![1]!;
    const c = validateConfig(parse(block), 'docs example');
    expect(c.indexes.map((i) => i.name)).toEqual(['corp', 'diginfra']);
  });
});
