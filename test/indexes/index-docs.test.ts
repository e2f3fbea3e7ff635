/** docs/indexes.md: its example entry is a valid index, and its cache file names are the real ones. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseIndexText } from '../../src/indexes/parse.js';
import { cachePaths } from '../../src/indexes/store.js';

const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'indexes.md'), 'utf8');

describe('docs/indexes.md', () => {
  it('shows a valid index entry', async () => {
    const block = /## The file\n\n[^`]*```yaml\n([\s\S]*?)```/.exec(doc)![1]!;
    const [entry] = await parseIndexText(block, 'docs');
    expect(entry).toMatchObject({ name: 'k8saudit', type: 'plugin', signature: { cosign: {} } });
  });

  it('names the cache files the code writes', () => {
    for (const p of Object.values(cachePaths('/c', 'NAME'))) expect(doc).toContain(`\`${p.split('/').at(-1)}\``);
  });
});
