import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { searchIndexes, searchRows } from '../../src/indexes/search.js';
import { searchFileText } from '../../src/indexes/store.js';
import { parseIndexText } from '../../src/indexes/parse.js';
import type { IndexEntry, LoadedIndex } from '../../src/indexes/types.js';

function e(name: string, keywords: string[], description: string, type = 'plugin'): IndexEntry {
  return { name, type, registry: 'ghcr.io', repository: `x/${name}`, description, keywords };
}

const A: LoadedIndex = {
  name: 'a',
  url: '/a',
  entries: [
    e('audit-extra', ['misc'], 'Something'),
    e('k8saudit', ['audit', 'kubernetes'], 'Kubernetes audit events'),
    e('cloudtrail', ['aws', 'audit'], 'AWS CloudTrail logs', 'plugin'),
    e('cloudtrail-rules', ['aws'], 'Rules for CloudTrail', 'rulesfile'),
    e('json', ['parsing'], 'Extract values from JSON; used by the k8s AUDIT plugins'),
    e('okta', ['identity'], 'Okta log events'),
  ],
};
const B: LoadedIndex = { name: 'b', url: '/b', entries: [e('k8saudit', ['audit'], 'A fork of k8saudit'), e('audit', ['x'], 'exact name')] };

const names = (hits: { index: string; entry: IndexEntry }[]) => hits.map((h) => `${h.index}/${h.entry.name}`);

/** Both implementations must agree: over loaded entries, and over the cached search rows. */
function both(indexes: LoadedIndex[], keywords: string[], opts: { type?: string } = {}) {
  const direct = searchIndexes(indexes, keywords, opts);
  const rows = indexes.map((ix) => {
    const text = searchFileText('0'.repeat(64), ix.entries);
    return { index: ix.name, rows: Buffer.from(text.slice(text.indexOf('\n') + 1)) };
  });
  const viaRows = searchRows(rows, keywords, opts);
  expect(names(viaRows)).toEqual(names(direct));
  expect(viaRows.map((h) => h.score)).toEqual(direct.map((h) => h.score));
  return direct;
}

describe('search', () => {
  it('ranks exact name > name prefix > keyword > description', () => {
    expect(names(both([A, B], ['audit']))).toEqual(['b/audit', 'a/audit-extra', 'a/cloudtrail', 'a/k8saudit', 'b/k8saudit', 'a/json']);
  });

  it('is case-insensitive and needs every keyword to match', () => {
    expect(names(both([A], ['CloudTrail', 'AWS']))).toEqual(['a/cloudtrail', 'a/cloudtrail-rules']);
    expect(names(both([A], ['kubernetes', 'okta']))).toEqual([]);
  });

  it('filters by type', () => {
    expect(names(both([A], ['cloudtrail'], { type: 'RulesFile' }))).toEqual(['a/cloudtrail-rules']);
  });

  it('lists everything, by name, when no keyword is given; the same name in two indexes shows twice', () => {
    expect(names(both([A, B], []))).toEqual(['b/audit', 'a/audit-extra', 'a/cloudtrail', 'a/cloudtrail-rules', 'a/json', 'a/k8saudit', 'b/k8saudit', 'a/okta']);
  });

  it('does not match the registry, repository or type fields', () => {
    expect(names(both([A], ['ghcr']))).toEqual([]);
    expect(names(both([A], ['rulesfile']))).toEqual([]);
  });

  it('handles keywords that JSON escapes', () => {
    const ix: LoadedIndex = { name: 'q', url: '/q', entries: [e('quoted', ['a"b'], 'back\\slash and "quotes"'), e('other', [], 'none')] };
    expect(names(both([ix], ['"quotes"']))).toEqual(['q/quoted']);
    expect(names(both([ix], ['back\\slash']))).toEqual(['q/quoted']);
    expect(names(both([ix], ['a"b']))).toEqual(['q/quoted']);
  });

  it('matches non-ASCII text, and ASCII keywords next to it, with the same byte offsets', () => {
    const ix: LoadedIndex = {
      name: 'u',
      url: '/u',
      entries: [
        e('überwachung', ['Sicherheit', 'kubernetes'], 'Überwachung für Kubernetes – mit Regeln'),
        e('naïve-rules', ['audit'], 'Règles d’audit 🚀 for AUDIT logs'),
        e('plain', ['audit'], 'plain ascii'),
      ],
    };
    expect(names(both([ix], ['kubernetes']))).toEqual(['u/überwachung']);
    expect(names(both([ix], ['ÜBERWACHUNG']))).toEqual(['u/überwachung']);
    expect(names(both([ix], ['règles', 'audit']))).toEqual(['u/naïve-rules']);
    expect(names(both([ix], ['audit', '🚀']))).toEqual(['u/naïve-rules']);
    const hit = both([ix], ['regeln'])[0]!;
    expect(hit.entry.description).toBe('Überwachung für Kubernetes – mit Regeln');
  });

  it('agrees with itself on the real index', async () => {
    const entries = await parseIndexText(await readFile(join(import.meta.dirname, '..', 'fixtures', 'falcosecurity-index.yaml'), 'utf8'), 'f');
    const f: LoadedIndex = { name: 'f', url: '/f', entries };
    for (const kws of [['k8s'], ['audit'], ['aws', 'cloudtrail'], ['falco'], [], ['nothing-matches']]) both([f], kws);
    expect(names(both([f], ['k8saudit'])).slice(0, 2)).toEqual(['f/k8saudit', 'f/k8saudit-aks']);
  });
});
