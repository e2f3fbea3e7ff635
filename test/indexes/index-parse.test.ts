/**
 * An index is read one top-level item at a time (src/indexes/parse.ts) so that a large one never
 * builds the yaml library's whole document model (bench/index-memory.mjs measures the memory). These
 * tests hold that reading to the whole-document parse: same entries, same errors, for every shape of
 * YAML an index may take, including the ones that must fall back to the whole document.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as yaml from 'yaml';
import { forEachIndexEntry, parseIndexText, topLevelItems } from '../../src/indexes/parse.js';
import { validateIndex } from '../../src/indexes/validate.js';
import { cachePaths, DerivedFiles, indexesDir, searchFileText } from '../../src/indexes/store.js';
import { errorOf } from '../helpers/errors.js';
import { exists, tempDir } from '../helpers/fs.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'falcosecurity-index.yaml');

const ENTRY = (name: string, extra = '') => `- name: ${name}\n  type: plugin\n  registry: ghcr.io\n  repository: acme/${name}\n  description: the ${name} plugin\n  keywords: [a, b]\n${extra}`;

/** What the index was before: one parseDocument of the whole text, then validation. */
function wholeDocument(text: string): unknown {
  const doc = yaml.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) throw new Error(`YAML error: ${doc.errors[0]!.message}`);
  return validateIndex(doc.toJS({ maxAliasCount: 10_000 }), 'x');
}

const SHAPES: [string, string, 'cut' | 'whole'][] = [
  ['a plain list', ENTRY('a') + ENTRY('b') + ENTRY('c'), 'cut'],
  ['comments and blank lines between items, a BOM and a leading ---', `\u{FEFF}# the index\n---\n${ENTRY('a')}\n# between\n\n${ENTRY('b')}`, 'cut'],
  ['CRLF line ends', (ENTRY('a') + ENTRY('b')).replace(/\n/g, '\r\n'), 'cut'],
  ['block scalars with "- " lines inside', ENTRY('a', '  home: |\n    - not an item\n    -\n  license: >-\n    - nor this\n') + ENTRY('b'), 'cut'],
  ['a flow sequence and a flow map over several lines', ENTRY('a', '  sources: [\n    "x",\n    y ]\n  signature: { cosign: {\n      certificate-identity: "x",\n      certificate-oidc-issuer: "y" } }\n') + ENTRY('b'), 'cut'],
  ['a quoted scalar over several lines', ENTRY('a', '  home: "one\n    - two"\n') + ENTRY('b'), 'cut'],
  ['nested lists in an item', ENTRY('a', '  maintainers:\n  - name: x\n    email: y\n  - name: z\n') + ENTRY('b'), 'cut'],
  ['anchors and aliases across items', ENTRY('a', '  maintainers: &m\n    - name: x\n') + ENTRY('b', '  maintainers: *m\n'), 'whole'],
  ['a %YAML directive', `%YAML 1.2\n---\n${ENTRY('a')}`, 'whole'],
  ['a flow list at the top', '[{name: a, type: plugin, registry: ghcr.io, repository: acme/a, description: d, keywords: []}]\n', 'whole'],
  ['an explicit document end', `${ENTRY('a')}...\n`, 'whole'],
];

describe('reading an index one item at a time', () => {
  it.each(SHAPES)('%s: the same entries as the whole document', async (_label, text, how) => {
    expect(topLevelItems(yaml, text) === undefined ? 'whole' : 'cut').toBe(how);
    expect(await parseIndexText(text, 'x')).toEqual(wholeDocument(text));
  });

  it('the real public index: cut into its 28 items, read the same as the whole document', async () => {
    const text = await readFile(FIXTURE, 'utf8');
    expect(topLevelItems(yaml, text)).toHaveLength(28);
    expect(await parseIndexText(text, 'f')).toEqual(wholeDocument(text));
  });

  it('the cache files written entry by entry are byte for byte what the whole list gives, and appear only on commit', async () => {
    const text = await readFile(FIXTURE, 'utf8');
    const cache = await tempDir('derived-');
    const paths = cachePaths(cache, 'f');
    const derived = await DerivedFiles.open(cache, 'f', 'abc');
    const count = await forEachIndexEntry(text, 'f', (e) => derived.add(e));
    const entries = await parseIndexText(text, 'f');
    expect(count).toBe(28);
    expect(await exists(paths.entries)).toBe(false);
    expect(await exists(paths.search)).toBe(false);
    await derived.commit();
    expect(await readFile(paths.entries, 'utf8')).toBe(JSON.stringify({ sha256: 'abc', entries }));
    expect(await readFile(paths.search, 'utf8')).toBe(searchFileText('abc', entries));
    expect(await readdir(indexesDir(cache))).toEqual(['f.entries.json', 'f.search.jsonl']);
  });

  it('a bad index discards what was written of its cache files: the cached copy stays, no temp file is left', async () => {
    const cache = await tempDir('derived-');
    const paths = cachePaths(cache, 'f');
    const good = await DerivedFiles.open(cache, 'f', 'old');
    await forEachIndexEntry(ENTRY('a'), 'f', (e) => good.add(e));
    await good.commit();
    const before = [await readFile(paths.entries, 'utf8'), await readFile(paths.search, 'utf8')];
    // More than a batch of good entries is written before the bad one is met.
    const bad = `${Array.from({ length: 600 }, (_, i) => ENTRY(`e${i}`)).join('')}- name: broken\n`;
    const derived = await DerivedFiles.open(cache, 'f', 'new');
    const err = await errorOf(forEachIndexEntry(bad, 'f', (e) => derived.add(e)));
    expect(err.code).toBe('INDEX_INVALID');
    expect((await readdir(indexesDir(cache))).length).toBe(4); // the two files and their two temp files
    await derived.discard();
    expect((await readdir(indexesDir(cache))).sort()).toEqual(['f.entries.json', 'f.search.jsonl']);
    expect([await readFile(paths.entries, 'utf8'), await readFile(paths.search, 'utf8')]).toEqual(before);
  });

  it.each([
    ['an unclosed flow list', `${ENTRY('a')}${ENTRY('b')}- name: c\n  keywords: [a,\n  type: plugin\n`],
    ['an unclosed quote', `${ENTRY('a')}${ENTRY('b')}${ENTRY('c', '  home: "x\n')}`],
    ['a duplicate key', `${ENTRY('a')}${ENTRY('b', '  type: rulesfile\n')}${ENTRY('c')}`],
    ['a bad indentation', `${ENTRY('a')}- name: b\n   type: plugin\n  registry: x\n`],
  ])('%s in a later item: the same line and column as the whole document', async (_label, text) => {
    const doc = yaml.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    const pos = doc.errors[0]!.linePos![0];
    expect(pos.line).toBeGreaterThan(6); // past the first item
    await expect(parseIndexText(text, 'corp')).rejects.toThrow(`index "corp": the YAML does not parse: line ${pos.line}, column ${pos.col}: `);
  });

  it('every bad entry is named with its position, as before', async () => {
    const text = ENTRY('a') + '- name: b\n  type: plugin\n' + ENTRY('a') + '- just a string\n';
    const err = await parseIndexText(text, 'corp').catch((e: Error) => e);
    expect((err as Error).message).toBe(
      [
        'index "corp": entry 2 ("b"): missing "registry", "repository", "description", "keywords"',
        'index "corp": entry 3 ("a"): name "a" is already used by entry 1',
        'index "corp": entry 4: must be a map with name, type, registry, repository, description, keywords, not a string',
      ].join('\n'),
    );
  });

  it('an empty file, only comments, or a map: the errors of the whole document', async () => {
    await expect(parseIndexText('', 'corp')).rejects.toThrow('index "corp": the file is empty; expected a YAML list of artifact entries');
    await expect(parseIndexText('# nothing\n', 'corp')).rejects.toThrow('index "corp": the file is empty');
    await expect(parseIndexText('entries:\n- name: a\n', 'corp')).rejects.toThrow('index "corp": expected a YAML list of artifact entries, got a map (keys: entries)');
    await expect(parseIndexText(`${ENTRY('a')}other: 1\n`, 'corp')).rejects.toThrow(/^index "corp": the YAML does not parse/);
  });
});
