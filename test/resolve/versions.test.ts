import { describe, expect, it } from 'vitest';
import {
  compareVersions,
  compatibleLine,
  dependencyRange,
  floatingRange,
  highestSatisfyingAll,
  isFloatingTag,
  lineOf,
  resolveFloatingTag,
  satisfiesDependency,
  versionTags,
} from '../../src/resolve/versions.js';
import { siblingRepository } from '../../src/resolve/locate.js';

describe('floating tags', () => {
  it('recognises MAJOR and MAJOR.MINOR only', () => {
    expect(isFloatingTag('1')).toBe(true);
    expect(isFloatingTag('1.2')).toBe(true);
    expect(isFloatingTag('0')).toBe(true);
    expect(isFloatingTag('1.2.3')).toBe(false);
    expect(isFloatingTag('latest')).toBe(false);
    expect(isFloatingTag('01')).toBe(false);
    expect(floatingRange('1')).toBe('1.x');
    expect(floatingRange('1.2')).toBe('1.2.x');
    expect(floatingRange('v1')).toBeUndefined();
  });

  it('picks the highest release of the line, ignoring prereleases and other lines', () => {
    const tags = ['1.0.0', '1.2.0', '1.2.7', '1.10.1', '2.0.0', '1.11.0-rc.1', 'latest', '1', '1.2', 'v1.99.0'];
    expect(resolveFloatingTag('1', tags)).toBe('1.10.1');
    expect(resolveFloatingTag('1.2', tags)).toBe('1.2.7');
    expect(resolveFloatingTag('2', tags)).toBe('2.0.0');
    expect(resolveFloatingTag('3', tags)).toBeUndefined();
    expect(resolveFloatingTag('latest', tags)).toBeUndefined();
  });

  it('keeps strict semver tags only', () => {
    expect(versionTags(['1.0.0', 'v1.0.0', '1.0', 'latest', '1.0.0-rc.1'])).toEqual(['1.0.0', '1.0.0-rc.1']);
  });
});

describe('dependency versions', () => {
  it('same major and not older, for 0.x too: 0.7.0 accepts 0.9.1, as the ecosystem reads it', () => {
    expect(satisfiesDependency('1.4.0', '1.2.0')).toBe(true);
    expect(satisfiesDependency('1.1.0', '1.2.0')).toBe(false);
    expect(satisfiesDependency('2.0.0', '1.2.0')).toBe(false);
    expect(satisfiesDependency('0.7.3', '0.7.0')).toBe(true);
    expect(satisfiesDependency('0.8.0', '0.7.0')).toBe(true);
    expect(satisfiesDependency('0.9.1', '0.7.0')).toBe(true);
    expect(satisfiesDependency('0.6.9', '0.7.0')).toBe(false);
    expect(satisfiesDependency('1.0.0', '0.7.0')).toBe(false);
    expect(satisfiesDependency('garbage', '0.7.0')).toBe(false);
    expect(dependencyRange('0.7.0')).toBe('>=0.7.0 <1.0.0');
    expect(dependencyRange('1.2.0')).toBe('>=1.2.0 <2.0.0');
  });

  it('finds the newest version satisfying all requirers', () => {
    const tags = ['0.6.0', '0.7.0', '0.7.5', '0.8.0', '1.0.0', 'latest'];
    expect(highestSatisfyingAll(tags, ['0.7.0', '0.7.2'])).toBe('0.8.0');
    expect(highestSatisfyingAll(tags, ['0.7.0', '0.8.0'])).toBe('0.8.0');
    expect(highestSatisfyingAll(tags, ['0.7.0', '0.9.0'])).toBeUndefined();
    expect(highestSatisfyingAll(['1.2.0', '1.5.0', '2.0.0'], ['1.0.0', '1.3.0'])).toBe('1.5.0');
  });

  it('tells major lines apart', () => {
    expect(lineOf('1.2.3')).toBe('1.x');
    expect(lineOf('0.7.1')).toBe('0.x');
    expect(compatibleLine(['1.0.0', '1.9.0'])).toBe(true);
    expect(compatibleLine(['1.0.0', '2.0.0'])).toBe(false);
    expect(compatibleLine(['0.7.0', '0.8.0'])).toBe(true);
    expect(compatibleLine(['0.7.0', '1.0.0'])).toBe(false);
  });

  it('compares versions, semver above non-semver', () => {
    expect(compareVersions('1.10.0', '1.9.0')).toBeGreaterThan(0);
    expect(compareVersions('1.0.0', 'latest')).toBeGreaterThan(0);
    expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
  });
});

describe('siblingRepository', () => {
  it('replaces the last path component', () => {
    expect(siblingRepository({ registry: 'ghcr.io', repository: 'acme/rules/k8saudit-rules' }, 'k8saudit')).toEqual({ registry: 'ghcr.io', repository: 'acme/rules/k8saudit' });
    expect(siblingRepository({ registry: 'localhost:5000', repository: 'rules' }, 'json')).toEqual({ registry: 'localhost:5000', repository: 'json' });
  });
});
