import { describe, expect, it } from 'vitest';
import { errorThrownBy } from '../helpers/errors.js';
import { checkPlatform } from '../../src/config/checks.js';
import {
  chooseFromIndex,
  formatPlatform,
  hostPlatform,
  parsePlatform,
  platformOrHost,
  platformProblem,
  platformsOf,
  samePlatform,
  type Platform,
} from '../../src/platform/index.js';

const AMD64: Platform = { os: 'linux', architecture: 'amd64' };
const ARM64: Platform = { os: 'linux', architecture: 'arm64' };
const ARM_V7: Platform = { os: 'linux', architecture: 'arm', variant: 'v7' };

describe('OS/ARCH[/VARIANT]', () => {
  it.each([
    ['linux/amd64', AMD64],
    ['linux/arm64', ARM64],
    ['linux/arm/v7', ARM_V7],
    ['windows/amd64', { os: 'windows', architecture: 'amd64' }],
    ['linux/mips64_le', { os: 'linux', architecture: 'mips64_le' }],
    ['my_os/arm/v8_2', { os: 'my_os', architecture: 'arm', variant: 'v8_2' }],
  ])('parses %s and formats it back', (text, platform) => {
    expect(parsePlatform(text)).toEqual(platform);
    expect(formatPlatform(parsePlatform(text))).toBe(text);
    expect(platformProblem(text)).toBeUndefined();
  });

  it.each(['amd64', 'linux', 'linux/', '/amd64', 'linux/amd64/v8/x', 'Linux/amd64', 'linux/AMD64', 'linux/amd-64', 'linux amd64', ''])(
    'refuses %j with USAGE, naming the form',
    (text) => {
      const err = errorThrownBy(() => parsePlatform(text));
      expect(err.code).toBe('USAGE');
      expect(err.message).toBe(`platform "${text}" must be OS/ARCH such as linux/amd64 or linux/arm64`);
    },
  );

  it('is the grammar of install.platform in the config too', () => {
    for (const text of ['linux/amd64', 'linux/arm/v7', 'my_os/arm/v8_2', 'amd64', 'linux/amd64/v8/x', 'Linux/amd64']) {
      expect(checkPlatform(text)).toBe(platformProblem(text));
    }
    expect(checkPlatform('amd64')).toBe('"amd64" must be OS/ARCH such as linux/amd64 or linux/arm64');
  });

  it.each([
    [AMD64, AMD64, true],
    [AMD64, ARM64, false],
    [ARM_V7, { os: 'linux', architecture: 'arm' }, true],
    [{ os: 'linux', architecture: 'arm' }, ARM_V7, true],
    [ARM_V7, { os: 'linux', architecture: 'arm', variant: 'v6' }, false],
    [AMD64, { os: 'windows', architecture: 'amd64' }, false],
  ])('%j matches %j: %s (a variant counts only when both name one)', (a, b, same) => {
    expect(samePlatform(a, b)).toBe(same);
  });
});

describe('this machine', () => {
  it.each([
    ['linux', 'x64', { os: 'linux', architecture: 'amd64' }],
    ['linux', 'arm64', { os: 'linux', architecture: 'arm64' }],
    ['linux', 'arm', { os: 'linux', architecture: 'arm' }],
    ['linux', 'ia32', { os: 'linux', architecture: '386' }],
    ['linux', 'ppc64', { os: 'linux', architecture: 'ppc64le' }],
    ['linux', 's390x', { os: 'linux', architecture: 's390x' }],
    ['linux', 'riscv64', { os: 'linux', architecture: 'riscv64' }],
    ['darwin', 'arm64', { os: 'darwin', architecture: 'arm64' }],
    ['win32', 'x64', { os: 'windows', architecture: 'amd64' }],
    ['linux', 'loong64', { os: 'linux', architecture: 'loong64' }],
  ])('Node %s/%s is %j in OCI words', (os, arch, platform) => {
    expect(hostPlatform(os, arch)).toEqual(platform);
  });

  it('is the default when no platform is given, else the one given', () => {
    expect(hostPlatform()).toEqual(hostPlatform(process.platform, process.arch));
    expect(platformOrHost(undefined)).toEqual(hostPlatform());
    expect(platformOrHost('')).toEqual(hostPlatform());
    expect(platformOrHost('linux/arm/v7')).toEqual(ARM_V7);
    expect(errorThrownBy(() => platformOrHost('arm')).code).toBe('USAGE');
  });
});

/** What an image index holds, as far as choosing reads it (its entries are descriptors). */
type Index = { manifests?: { digest: string; platform?: Platform }[] };

describe('choosing from an image index', () => {
  const index: Index = {
    manifests: [
      { digest: 'sha256:amd', platform: AMD64 },
      { digest: 'sha256:attestation' },
      { digest: 'sha256:arm', platform: ARM_V7 },
      { digest: 'sha256:arm64', platform: ARM64 },
    ],
  };

  it.each([
    [AMD64, 'sha256:amd'],
    [ARM64, 'sha256:arm64'],
    [ARM_V7, 'sha256:arm'],
    [{ os: 'linux', architecture: 'arm' }, 'sha256:arm'],
  ])('takes the entry for %j', (platform, digest) => {
    const { entry, offered } = chooseFromIndex(index, platform, 'acme/json:1.0.0');
    expect(entry.digest).toBe(digest);
    expect(offered).toEqual([AMD64, ARM_V7, ARM64]);
  });

  it('takes the first of two entries for the same platform', () => {
    const twice = { manifests: [{ digest: 'sha256:first', platform: AMD64 }, { digest: 'sha256:second', platform: AMD64 }] };
    expect(chooseFromIndex(twice, AMD64, 'x').entry.digest).toBe('sha256:first');
  });

  it.each<[Index, Platform, string]>([
    [index, { os: 'linux', architecture: 's390x' }, 'acme/json:1.0.0 has no build for linux/s390x; it has: linux/amd64, linux/arm/v7, linux/arm64'],
    [{ manifests: [{ digest: 'sha256:attestation' }] }, AMD64, 'acme/json:1.0.0 has no build for linux/amd64; it has: no platforms'],
    [{}, AMD64, 'acme/json:1.0.0 has no build for linux/amd64; it has: no platforms'],
  ])('fails with PLATFORM_NOT_FOUND listing what the index has (%#)', (idx, platform, message) => {
    const err = errorThrownBy(() => chooseFromIndex(idx, platform, 'acme/json:1.0.0'));
    expect(err.code).toBe('PLATFORM_NOT_FOUND');
    expect(err.message).toBe(message);
    expect(err.hint).toMatch(/--platform/);
  });

  it('lists the platforms an index offers, in order, skipping entries without one', () => {
    expect(platformsOf(index.manifests!)).toEqual([AMD64, ARM_V7, ARM64]);
    expect(platformsOf([])).toEqual([]);
  });
});
