import { describe, expect, it } from 'vitest';
import { DiginfraError } from '../../src/errors.js';
import { dedupeRoots, resolveDependencies, type DepNode, type DependencySource } from '../../src/resolve/deps.js';
import { errorOf } from '../helpers/errors.js';

/** name -> version -> node; calls are counted. */
function fakeSource(catalog: Record<string, DepNode[]>): DependencySource<DepNode> & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async versions(name) {
      calls.push(`versions ${name}`);
      const list = catalog[name];
      if (!list) throw new DiginfraError('NOT_FOUND', `repository ${name} not found`);
      return [...list.map((n) => n.version), 'latest'];
    },
    async load(name, version) {
      calls.push(`load ${name}:${version}`);
      const n = catalog[name]?.find((x) => x.version === version);
      if (!n) throw new DiginfraError('NOT_FOUND', `${name}:${version} not found`);
      return n;
    },
  };
}

const plugin = (name: string, version: string, deps: DepNode['dependencies'] = []): DepNode => ({ name, version, type: 'plugin', dependencies: deps });
const rules = (name: string, version: string, deps: DepNode['dependencies'] = []): DepNode => ({ name, version, type: 'rulesfile', dependencies: deps });

const catalog = {
  k8saudit: [plugin('k8saudit', '0.6.0'), plugin('k8saudit', '0.7.0'), plugin('k8saudit', '0.7.4'), plugin('k8saudit', '0.8.1')],
  'k8saudit-eks': [plugin('k8saudit-eks', '0.2.0'), plugin('k8saudit-eks', '0.2.3')],
  json: [plugin('json', '0.7.0'), plugin('json', '0.7.2'), plugin('json', '1.0.0')],
  cloudtrail: [plugin('cloudtrail', '1.0.0', [{ name: 'json', version: '0.7.1' }])],
};

describe('resolveDependencies', () => {
  it('adds the newest satisfying version of each dependency (same major, not older), transitively', async () => {
    const src = fakeSource(catalog);
    const out = await resolveDependencies([rules('cloud-rules', '1.0.0', [{ name: 'cloudtrail', version: '1.0.0' }, { name: 'k8saudit', version: '0.7.0' }])], src);
    expect(out.map((o) => `${o.node.name}@${o.node.version}:${o.requested}`)).toEqual([
      'cloud-rules@1.0.0:true',
      'cloudtrail@1.0.0:false',
      'k8saudit@0.8.1:false',
      'json@0.7.2:false',
    ]);
    expect(out.find((o) => o.node.name === 'json')!.requiredBy).toEqual(['cloudtrail 1.0.0']);
  });

  it('several requirers: highest version satisfying all of them', async () => {
    const out = await resolveDependencies(
      [rules('a', '1.0.0', [{ name: 'json', version: '0.7.0' }]), rules('b', '1.0.0', [{ name: 'json', version: '0.7.1' }])],
      fakeSource(catalog),
    );
    const json = out.find((o) => o.node.name === 'json')!;
    expect(json.node.version).toBe('0.7.2');
    expect(json.requiredBy).toEqual(['a 1.0.0', 'b 1.0.0']);
  });

  it('0.7.0 and 0.8.0 asked for: one 0.x version at least 0.8.0 serves both', async () => {
    const out = await resolveDependencies(
      [rules('a-rules', '1.0.0', [{ name: 'k8saudit', version: '0.7.0' }]), rules('b-rules', '2.0.0', [{ name: 'k8saudit', version: '0.8.0' }])],
      fakeSource(catalog),
    );
    const k8saudit = out.find((o) => o.node.name === 'k8saudit')!;
    expect(k8saudit.node.version).toBe('0.8.1');
    expect(k8saudit.requiredBy).toEqual(['a-rules 1.0.0', 'b-rules 2.0.0']);
  });

  it('conflict across majors: names every requirer, what it asked for, and the majors', async () => {
    const err = await errorOf(
      resolveDependencies(
        [rules('a-rules', '1.0.0', [{ name: 'json', version: '0.7.0' }]), rules('b-rules', '2.0.0', [{ name: 'json', version: '1.0.0' }])],
        fakeSource(catalog),
      ),
    );
    expect(err.code).toBe('DEPENDENCY_CONFLICT');
    expect(err.message).toBe(
      'no version of json satisfies every artifact that needs it: a-rules 1.0.0 needs json >=0.7.0 <1.0.0; b-rules 2.0.0 needs json >=1.0.0 <2.0.0 (they ask for different major versions: 0.x and 1.x)',
    );
  });

  it('conflict when no published version is new enough: says the newest there is', async () => {
    const err = await errorOf(
      resolveDependencies(
        [rules('a', '1.0.0', [{ name: 'k8saudit', version: '0.7.0' }]), rules('b', '1.0.0', [{ name: 'k8saudit', version: '0.9.0' }])],
        fakeSource(catalog),
      ),
    );
    expect(err.code).toBe('DEPENDENCY_CONFLICT');
    expect(err.message).toBe(
      'no version of k8saudit satisfies every artifact that needs it: a 1.0.0 needs k8saudit >=0.7.0 <1.0.0; b 1.0.0 needs k8saudit >=0.9.0 <1.0.0 (the newest 0.x version published is 0.8.1, older than 0.9.0; available: 0.6.0, 0.7.0, 0.7.4, 0.8.1)',
    );
  });

  it('an explicitly requested version must satisfy the dependents; a newer one in the same major does', async () => {
    const ok = await resolveDependencies([rules('r', '1.0.0', [{ name: 'k8saudit', version: '0.7.0' }]), plugin('k8saudit', '0.7.0')], fakeSource(catalog));
    expect(ok.map((o) => `${o.node.name}@${o.node.version}`)).toEqual(['r@1.0.0', 'k8saudit@0.7.0']);
    expect(ok[1]!.requested).toBe(true);
    expect(ok[1]!.requiredBy).toEqual(['r 1.0.0']);
    const newer = await resolveDependencies([rules('r', '1.0.0', [{ name: 'k8saudit', version: '0.7.0' }]), plugin('k8saudit', '0.8.1')], fakeSource(catalog));
    expect(newer.map((o) => `${o.node.name}@${o.node.version}`)).toEqual(['r@1.0.0', 'k8saudit@0.8.1']);
    const err = await errorOf(resolveDependencies([rules('r', '1.0.0', [{ name: 'k8saudit', version: '0.7.0' }]), plugin('k8saudit', '0.6.0')], fakeSource(catalog)));
    expect(err.code).toBe('DEPENDENCY_CONFLICT');
    expect(err.message).toBe(
      'no version of k8saudit satisfies every artifact that needs it: the command line asks for k8saudit 0.6.0; r 1.0.0 needs k8saudit >=0.7.0 <1.0.0 (k8saudit 0.6.0 was asked for explicitly)',
    );
  });

  it('alternatives: one already in the plan satisfies the dependency', async () => {
    const dep = { name: 'k8saudit', version: '0.7.0', alternatives: [{ name: 'k8saudit-eks', version: '0.2.0' }] };
    const src = fakeSource(catalog);
    const out = await resolveDependencies([rules('r', '1.0.0', [dep]), plugin('k8saudit-eks', '0.2.3')], src);
    expect(out.map((o) => o.node.name)).toEqual(['r', 'k8saudit-eks']);
    expect(src.calls).toEqual([]);
  });

  it('alternatives: the next is tried when the first is not published', async () => {
    const dep = { name: 'k8saudit-gke', version: '0.1.0', alternatives: [{ name: 'k8saudit-eks', version: '0.2.0' }] };
    const out = await resolveDependencies([rules('r', '1.0.0', [dep])], fakeSource(catalog));
    expect(out.map((o) => `${o.node.name}@${o.node.version}`)).toEqual(['r@1.0.0', 'k8saudit-eks@0.2.3']);
  });

  it('a missing dependency fails with the lookup error', async () => {
    const err = await errorOf(resolveDependencies([rules('r', '1.0.0', [{ name: 'nope', version: '1.0.0' }])], fakeSource(catalog)));
    expect(err.code).toBe('NOT_FOUND');
  });

  it('alternatives: when the first conflicts with another requirer, the next one is used', async () => {
    const withMajors = { ...catalog, k8saudit: [...catalog.k8saudit, plugin('k8saudit', '1.1.0')] };
    const a = rules('a', '1.0.0', [{ name: 'k8saudit', version: '0.7.0', alternatives: [{ name: 'k8saudit-eks', version: '0.2.0' }] }]);
    const b = rules('b', '1.0.0', [{ name: 'k8saudit', version: '1.0.0' }]);
    for (const roots of [[a, b], [b, a]]) {
      const out = await resolveDependencies(roots, fakeSource(withMajors));
      expect(out.filter((o) => !o.requested).map((o) => `${o.node.name}@${o.node.version}<-${o.requiredBy.join(',')}`).sort()).toEqual([
        'k8saudit-eks@0.2.3<-a 1.0.0',
        'k8saudit@1.1.0<-b 1.0.0',
      ]);
    }
  });

  it('alternatives: a version asked for explicitly that the first does not satisfy moves the dependency to the next', async () => {
    const r = rules('r', '1.0.0', [{ name: 'k8saudit', version: '0.7.0', alternatives: [{ name: 'k8saudit-eks', version: '0.2.0' }] }]);
    const out = await resolveDependencies([r, plugin('k8saudit', '0.6.0')], fakeSource(catalog));
    expect(out.map((o) => `${o.node.name}@${o.node.version}`)).toEqual(['r@1.0.0', 'k8saudit@0.6.0', 'k8saudit-eks@0.2.3']);
    expect(out[1]!.requiredBy).toEqual([]);
  });

  it('alternatives: all of them conflicting fails with the conflict', async () => {
    const r = rules('r', '1.0.0', [{ name: 'k8saudit', version: '0.7.0', alternatives: [{ name: 'k8saudit-eks', version: '0.2.0' }] }]);
    const err = await errorOf(resolveDependencies([r, plugin('k8saudit', '0.6.0'), plugin('k8saudit-eks', '0.1.0')], fakeSource(catalog)));
    expect(err.code).toBe('DEPENDENCY_CONFLICT');
    expect(err.message).toContain('the command line asks for k8saudit-eks 0.1.0; r 1.0.0 needs k8saudit-eks >=0.2.0 <1.0.0');
  });

  it('a later requirer moves an earlier choice up within the line', async () => {
    // a needs json ^0.7.0 (would take 0.7.2), cloudtrail needs ^0.7.1: one version serves both.
    const out = await resolveDependencies(
      [rules('a', '1.0.0', [{ name: 'json', version: '0.7.0' }]), rules('b', '1.0.0', [{ name: 'cloudtrail', version: '1.0.0' }])],
      fakeSource(catalog),
    );
    const json = out.filter((o) => o.node.name === 'json');
    expect(json).toHaveLength(1);
    expect(json[0]!.node.version).toBe('0.7.2');
    expect(json[0]!.requiredBy.sort()).toEqual(['a 1.0.0', 'cloudtrail 1.0.0']);
  });
});

describe('dedupeRoots', () => {
  it('keeps the highest version and warns', () => {
    const { roots, warnings } = dedupeRoots([plugin('k8saudit', '0.7.0'), rules('r', '1.0.0'), plugin('k8saudit', '0.8.1'), plugin('k8saudit', '0.8.1')]);
    expect(roots.map((r) => `${r.name}@${r.version}`)).toEqual(['k8saudit@0.8.1', 'r@1.0.0']);
    expect(warnings).toEqual(['k8saudit was asked for twice (0.7.0 and 0.8.1); installing 0.8.1']);
  });
});
