import { describe, expect, it } from 'vitest';
import { resolveIndexedName } from '../../src/indexes/resolve-name.js';
import { parseArtifactRef } from '../../src/reference/reference.js';
import type { IndexEntry, LoadedIndex } from '../../src/indexes/types.js';
import { DiginfraError } from '../../src/errors.js';

function e(name: string, registry: string, repository: string): IndexEntry {
  return { name, type: 'plugin', registry, repository, description: name, keywords: [] };
}

const corp: LoadedIndex = { name: 'corp', url: '/c', entries: [e('k8saudit', 'registry.corp:5000', 'plugins/k8saudit')] };
const pub: LoadedIndex = { name: 'diginfra', url: '/d', entries: [e('k8saudit', 'ghcr.io', 'diginfra/plugins/k8saudit'), e('json', 'ghcr.io', 'diginfra/plugins/json')] };

function name(ref: string) {
  const r = parseArtifactRef(ref);
  if (r.kind !== 'name') throw new Error(`${ref} is not a name`);
  return r.name;
}

describe('resolveIndexedName', () => {
  it('takes the first index in configured order and lists the ones it shadows', () => {
    const r = resolveIndexedName(name('k8saudit:0.7'), [corp, pub]);
    expect(r.index).toBe('corp');
    expect(r.ref).toEqual({ registry: 'registry.corp:5000', repository: 'plugins/k8saudit', tag: '0.7' });
    expect(r.shadowed).toEqual(['diginfra']);
    expect(resolveIndexedName(name('json'), [corp, pub])).toMatchObject({ index: 'diginfra', shadowed: [], ref: { registry: 'ghcr.io', repository: 'diginfra/plugins/json' } });
  });

  it('INDEX::name looks in that index only', () => {
    const r = resolveIndexedName(name('diginfra::k8saudit'), [corp, pub]);
    expect(r.index).toBe('diginfra');
    expect(r.ref).toEqual({ registry: 'ghcr.io', repository: 'diginfra/plugins/k8saudit' });
    expect(() => resolveIndexedName(name('corp::json'), [corp, pub])).toThrow('no artifact named "json" in index "corp"');
  });

  it('an unknown name is ARTIFACT_NOT_FOUND with a hint to search or update', () => {
    try {
      resolveIndexedName(name('k8saudt'), [corp, pub]);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(DiginfraError);
      expect((err as DiginfraError).code).toBe('ARTIFACT_NOT_FOUND');
      expect((err as DiginfraError).message).toBe('no artifact named "k8saudt" in any index (searched corp, diginfra)');
      expect((err as DiginfraError).hint).toBe(
        'did you mean "k8saudit"? run "diginfractl artifact search k8saudt" to look for it, or "diginfractl index update" to refresh the indexes',
      );
    }
  });

  it('an unknown pinned index is INDEX_NOT_FOUND', () => {
    expect(() => resolveIndexedName(name('nope::k8saudit'), [corp, pub])).toThrow(
      expect.objectContaining({ code: 'INDEX_NOT_FOUND', message: 'index "nope" (in "nope::k8saudit") is not configured (configured: corp, diginfra)' }),
    );
  });
});
