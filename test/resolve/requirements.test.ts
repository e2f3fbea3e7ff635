import { describe, expect, it } from 'vitest';
import { checkAllowedTypes, checkRequirements, engineSatisfies, filterByType } from '../../src/resolve/requirements.js';
import { errorThrownBy } from '../helpers/errors.js';

describe('engine_version', () => {
  it('needs the same major and at least the required minor.patch', () => {
    expect(engineSatisfies('0.40.0', '0.40.0')).toBe(true);
    expect(engineSatisfies('0.41.2', '0.40.0')).toBe(true);
    expect(engineSatisfies('0.39.9', '0.40.0')).toBe(false);
    expect(engineSatisfies('1.0.0', '0.40.0')).toBe(false);
    expect(engineSatisfies('1.2.0', '1.1.5')).toBe(true);
    expect(engineSatisfies('2.0.0', '1.1.5')).toBe(false);
  });

  it('refuses with one message naming every violation', () => {
    const err = errorThrownBy(() =>
      checkRequirements(
        [
          { label: 'falco-rules 3.0.0', requirements: [{ name: 'engine_version', version: '0.42.0' }] },
          { label: 'ok-rules 1.0.0', requirements: [{ name: 'engine_version', version: '0.30.0' }] },
          { label: 'new-rules 1.0.0', requirements: [{ name: 'engine_version', version: '1.0.0' }] },
        ],
        { engineVersion: '0.41.0' },
      ),
    );
    expect(err.code).toBe('REQUIREMENT_UNMET');
    expect(err.message).toContain('falco-rules 3.0.0 requires engine version 0.42.0');
    expect(err.message).toContain('new-rules 1.0.0 requires engine version 1.0.0');
    expect(err.message).toContain('this engine is 0.41.0');
    expect(err.message).not.toContain('ok-rules');
  });

  it('warns when it cannot check', () => {
    const { warnings } = checkRequirements(
      [{ label: 'r 1.0.0', requirements: [{ name: 'engine_version', version: '0.40.0' }, { name: 'kernel', version: '6.0.0' }] }],
      {},
    );
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain('not checked');
    expect(warnings[1]).toContain('kernel');
  });

  it('rejects a bad engine version', () => {
    expect(errorThrownBy(() => checkRequirements([], { engineVersion: 'abc' })).code).toBe('USAGE');
  });
});

describe('types', () => {
  const items = [
    { label: 'rules 1.0.0', type: 'rulesfile' },
    { label: 'k8saudit 0.7.0', type: 'plugin', requiredBy: ['rules 1.0.0'] },
  ];
  it('allowed types also apply to dependencies', () => {
    expect(() => checkAllowedTypes(items, [])).not.toThrow();
    expect(() => checkAllowedTypes(items, ['rulesfile', 'plugin'])).not.toThrow();
    const err = errorThrownBy(() => checkAllowedTypes(items, ['rulesfile']));
    expect(err.code).toBe('TYPE_NOT_ALLOWED');
    expect(err.message).toContain('k8saudit 0.7.0 is a plugin (a dependency of rules 1.0.0)');
  });
  it('--type filters', () => {
    expect(filterByType(items, 'plugin').kept.map((i) => i.label)).toEqual(['k8saudit 0.7.0']);
    expect(filterByType(items, undefined).skipped).toEqual([]);
  });
});
