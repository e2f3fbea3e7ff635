import { describe, expect, it } from 'vitest';
import { parseChallenge } from '../../src/registry/auth/challenge.js';
import { mergeScopes, repositoryScope } from '../../src/registry/auth/scope.js';
import { TokenCache } from '../../src/registry/auth/token-cache.js';
import { backoffDelay, parseRetryAfter, DEFAULT_RETRY } from '../../src/registry/transport.js';

describe('parseChallenge', () => {
  it('parses a Bearer challenge with quoted params', () => {
    expect(
      parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'),
    ).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' },
    });
  });

  it('parses Basic, unquoted values and escapes', () => {
    expect(parseChallenge('Basic realm="Registry \\"x\\""')).toEqual({ scheme: 'basic', params: { realm: 'Registry "x"' } });
    expect(parseChallenge('bearer realm=https://a/t, service=s')).toEqual({ scheme: 'bearer', params: { realm: 'https://a/t', service: 's' } });
    expect(parseChallenge('Negotiate')).toEqual({ scheme: 'other', params: {} });
    expect(parseChallenge(undefined)).toBeUndefined();
  });
});

describe('scopes', () => {
  it('builds and merges repository scopes into one sorted set', () => {
    expect(repositoryScope('a/b', ['push', 'pull', 'pull'])).toBe('repository:a/b:pull,push');
    expect(mergeScopes(['repository:b:pull', 'repository:a:push', 'repository:a:pull', 'repository:b:pull'])).toEqual([
      'repository:a:pull,push',
      'repository:b:pull',
    ]);
  });
});

describe('TokenCache', () => {
  it('expires tokens a margin before the issuer says', () => {
    let now = 1_000_000;
    const cache = new TokenCache(() => now);
    cache.set('k', 't', 60);
    expect(cache.get('k')).toBe('t');
    now += 49_000;
    expect(cache.get('k')).toBe('t');
    now += 2_000;
    expect(cache.get('k')).toBeUndefined();
  });

  it('defaults to 60 s when no expiry is given', () => {
    let now = 0;
    const cache = new TokenCache(() => now);
    cache.set('k', 't', undefined);
    now = 45_000;
    expect(cache.get('k')).toBe('t');
    now = 55_000;
    expect(cache.get('k')).toBeUndefined();
  });
});

describe('retry timing', () => {
  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });

  it('backs off exponentially within the cap', () => {
    const policy = { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(0, policy, () => 0)).toBe(50);
    expect(backoffDelay(0, policy, () => 1)).toBe(100);
    expect(backoffDelay(3, policy, () => 1)).toBe(800);
    expect(backoffDelay(10, policy, () => 1)).toBe(1000);
  });
});
