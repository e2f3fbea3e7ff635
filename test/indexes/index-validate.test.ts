import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseIndexText } from '../../src/indexes/parse.js';
import { validateIndex } from '../../src/indexes/validate.js';
import { isDiginfraError } from '../../src/errors.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'falcosecurity-index.yaml');

function entry(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'k8saudit',
    type: 'plugin',
    registry: 'ghcr.io',
    repository: 'diginfra/plugins/k8saudit',
    description: 'Kubernetes audit events',
    keywords: ['audit', 'kubernetes'],
    ...over,
  };
}

function error(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    expect(isDiginfraError(err, 'INDEX_INVALID')).toBe(true);
    return err as Error;
  }
  throw new Error('expected INDEX_INVALID');
}

describe('index files', () => {
  it('loads the real public falcosecurity index unchanged, signature blocks included', async () => {
    const entries = await parseIndexText(await readFile(FIXTURE, 'utf8'), 'falcosecurity');
    expect(entries).toHaveLength(28);
    const cloudtrail = entries.find((e) => e.name === 'cloudtrail')!;
    expect(cloudtrail.type).toBe('plugin');
    expect(cloudtrail.repository).toBe('falcosecurity/plugins/plugin/cloudtrail');
    expect(cloudtrail.signature).toMatchObject({ cosign: { 'certificate-oidc-issuer': 'https://token.actions.githubusercontent.com' } });
    expect(cloudtrail.maintainers).toEqual([{ email: 'cncf-falco-dev@lists.cncf.io', name: 'The Falco Authors' }]);
  });

  it('keeps unknown fields', () => {
    expect(validateIndex([entry({ 'x-custom': { a: 1 }, deprecated: true })], 'corp')[0]).toMatchObject({ 'x-custom': { a: 1 }, deprecated: true });
  });

  it('names the index, the entry (position and name) and the field', () => {
    const { registry: _r, ...noRegistry } = entry();
    const e = error(() => validateIndex([entry({ name: 'a' }), entry({ name: 'b' }), entry({ name: 'c' }), noRegistry], 'corp'));
    expect(e.message).toBe('index "corp": entry 4 ("k8saudit"): missing "registry"');
    expect((e as { hint?: string }).hint).toMatch(/previous cached copy/);
  });

  it('reports every bad entry in one message', () => {
    const e = error(() =>
      validateIndex(
        [
          entry({ name: 'ok' }),
          { name: 'partial', type: 'plugin' },
          entry({ name: 'Bad Name', keywords: 'audit' }),
          entry({ name: 'ok', registry: 'not a host', repository: 'UPPER/case' }),
          'just a string',
          entry({ name: undefined, description: '' }),
          entry({ name: 'types', maintainers: 'me', sources: [1], home: 3 }),
        ],
        'corp',
      ),
    );
    expect(e.message.split('\n')).toEqual([
      'index "corp": entry 2 ("partial"): missing "registry", "repository", "description", "keywords"',
      'index "corp": entry 3 ("Bad Name"): "name" "Bad Name" must be lower-case letters, digits, ".", "_" or "-" (it is what users type); "keywords" must be a list of strings, not a string',
      'index "corp": entry 4 ("ok"): "registry" "not a host" is not a host[:port]; "repository" "UPPER/case" is not an OCI repository path (lower-case components separated by "/"); name "ok" is already used by entry 1',
      'index "corp": entry 5: must be a map with name, type, registry, repository, description, keywords, not a string',
      'index "corp": entry 6 (no name): missing "name"; "description" is empty',
      'index "corp": entry 7 ("types"): "home" must be a string, not a number; "sources" must be a list of strings; "maintainers" must be a list of {name, email} maps',
    ]);
  });

  it('refuses a map, a scalar, an empty file and HTML, saying what it got', async () => {
    expect(error(() => validateIndex({ apiVersion: 'v1', entries: {} }, 'corp')).message).toBe(
      'index "corp": expected a YAML list of artifact entries, got a map (keys: apiVersion, entries)',
    );
    expect(error(() => validateIndex(42, 'corp')).message).toBe('index "corp": expected a YAML list of artifact entries, got a number');
    expect(error(() => validateIndex(null, 'corp')).message).toBe('index "corp": the file is empty; expected a YAML list of artifact entries');
    await expect(parseIndexText('<!DOCTYPE html><html><body>Sign in</body></html>', 'corp')).rejects.toThrow('index "corp": got an HTML/XML page, not a YAML index');
    await expect(parseIndexText('- name: [\n', 'corp')).rejects.toThrow(/^index "corp": the YAML does not parse: line \d+, column \d+/);
    expect(validateIndex([], 'corp')).toEqual([]);
  });
});
