import { describe, expect, it } from 'vitest';
import { errorThrownBy } from '../helpers/errors.js';
import { parseDependency, parseRequirement } from '../../src/resolve/index.js';

describe('dependencies and requirements on the command line', () => {
  it('parses dependencies with alternatives and requirements', () => {
    expect(parseDependency('k8saudit:0.7.0|k8saudit-eks:0.2.0')).toEqual({
      name: 'k8saudit',
      version: '0.7.0',
      alternatives: [{ name: 'k8saudit-eks', version: '0.2.0' }],
    });
    expect(parseRequirement('engine_version:0.40.0')).toEqual({ name: 'engine_version', version: '0.40.0' });
    expect(() => parseDependency('k8saudit')).toThrow(/NAME:VERSION/);
    expect(() => parseRequirement('engine_version:latest')).toThrow(/not a semver/);
  });

  it('names the flag in each error, with a USAGE code', () => {
    for (const [parse, flag] of [
      [parseDependency, '--depends-on'],
      [parseRequirement, '--requires'],
    ] as const) {
      expect(errorThrownBy(() => parse(':1.0.0'))).toMatchObject({ code: 'USAGE', message: `${flag} ":1.0.0" must be NAME:VERSION` });
    }
  });
});
