import { describe, expect, it } from 'vitest';
import {
  formatArtifactRef,
  formatReference,
  parseArtifactRef,
  parseOciReference,
  referenceSelector,
  apiHost,
} from '../../src/reference/reference.js';
import { DiginfraError } from '../../src/errors.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('parseOciReference', () => {
  it.each([
    ['ghcr.io/diginfra/k8saudit', { registry: 'ghcr.io', repository: 'diginfra/k8saudit' }],
    ['ghcr.io/diginfra/k8saudit:0.7.0', { registry: 'ghcr.io', repository: 'diginfra/k8saudit', tag: '0.7.0' }],
    [`ghcr.io/diginfra/k8saudit@${DIGEST}`, { registry: 'ghcr.io', repository: 'diginfra/k8saudit', digest: DIGEST }],
    ['localhost:5000/rules:1', { registry: 'localhost:5000', repository: 'rules', tag: '1' }],
    ['localhost/rules', { registry: 'localhost', repository: 'rules' }],
    ['127.0.0.1:5000/a/b/c:latest', { registry: '127.0.0.1:5000', repository: 'a/b/c', tag: 'latest' }],
    ['[::1]:5000/a:x', { registry: '[::1]:5000', repository: 'a', tag: 'x' }],
    ['docker.io/alpine', { registry: 'docker.io', repository: 'library/alpine' }],
    ['index.docker.io/library/alpine:3', { registry: 'docker.io', repository: 'library/alpine', tag: '3' }],
    ['falcosecurity/rules', { registry: 'docker.io', repository: 'falcosecurity/rules' }],
    ['my-org/sub.repo_x/y__z:v1.2-rc.1', { registry: 'docker.io', repository: 'my-org/sub.repo_x/y__z', tag: 'v1.2-rc.1' }],
    [`ghcr.io/diginfra/k8saudit:0.7.0@${DIGEST}`, { registry: 'ghcr.io', repository: 'diginfra/k8saudit', tag: '0.7.0', digest: DIGEST }],
    [`localhost:5000/rules:1@${DIGEST}`, { registry: 'localhost:5000', repository: 'rules', tag: '1', digest: DIGEST }],
  ])('%s', (input, expected) => {
    expect(parseOciReference(input)).toEqual(expected);
  });

  it.each([
    ['', /empty reference/],
    ['ghcr.io/Diginfra/rules', /must be lower-case/],
    ['ghcr.io/rules:', /empty tag/],
    ['ghcr.io/rules:-bad', /tag "-bad"/],
    [`ghcr.io/rules:${'x'.repeat(129)}`, /tag/],
    ['ghcr.io/rules@sha256:abc', /digest "sha256:abc"/],
    ['ghcr.io/rules@', /empty digest/],
    [`ghcr.io/rules:1@sha256:abc`, /digest "sha256:abc"/],
    ['ghcr.io//rules', /empty path component/],
    ['ghcr.io/rules/', /empty path component/],
    ['https://ghcr.io/rules', /URL scheme/],
    ['ghcr.io/ru--les-', /may only hold/],
    ['bad_host.io:99999999/x', /not a valid host/],
  ])('rejects %j', (input, message) => {
    let caught: unknown;
    try {
      parseOciReference(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DiginfraError);
    expect((caught as DiginfraError).code).toBe('REF_INVALID');
    expect((caught as DiginfraError).message).toMatch(message);
    expect((caught as DiginfraError).message).toContain(`"${input}"`);
  });

  it('formats back to the canonical form, defaulting the tag', () => {
    expect(formatReference(parseOciReference('localhost:5000/rules'))).toBe('localhost:5000/rules:latest');
    expect(formatReference(parseOciReference('alpine:3'))).toBe('docker.io/library/alpine:3');
    expect(formatReference(parseOciReference(`ghcr.io/x@${DIGEST}`))).toBe(`ghcr.io/x@${DIGEST}`);
    expect(referenceSelector(parseOciReference('ghcr.io/x'))).toBe('latest');
    expect(referenceSelector(parseOciReference(`ghcr.io/x@${DIGEST}`))).toBe(DIGEST);
  });

  it('takes REPO:TAG@DIGEST, the form the tool prints, back whole: the digest decides, the tag is shown', () => {
    const printed = `ghcr.io/x:1.2.0@${DIGEST}`;
    expect(referenceSelector(parseOciReference(printed))).toBe(DIGEST);
    expect(formatReference(parseOciReference(printed))).toBe(printed);
    expect(parseArtifactRef(printed)).toEqual({ kind: 'oci', ref: { registry: 'ghcr.io', repository: 'x', tag: '1.2.0', digest: DIGEST } });
  });

  it('maps Docker Hub to its API host', () => {
    expect(apiHost('docker.io')).toBe('registry-1.docker.io');
    expect(apiHost('ghcr.io')).toBe('ghcr.io');
  });
});

describe('parseArtifactRef', () => {
  it('treats a name without "/" as an index name', () => {
    expect(parseArtifactRef('k8saudit')).toEqual({ kind: 'name', name: { name: 'k8saudit' } });
    expect(parseArtifactRef('k8saudit:1')).toEqual({ kind: 'name', name: { name: 'k8saudit', tag: '1' } });
  });

  it('pins an index with INDEX::name', () => {
    expect(parseArtifactRef('corp::k8saudit:0.7')).toEqual({ kind: 'name', name: { name: 'k8saudit', tag: '0.7', index: 'corp' } });
    expect(formatArtifactRef(parseArtifactRef('corp::k8saudit:0.7'))).toBe('corp::k8saudit:0.7');
  });

  it('treats anything with "/" as an OCI reference', () => {
    expect(parseArtifactRef('localhost:5000/rules:1')).toEqual({
      kind: 'oci',
      ref: { registry: 'localhost:5000', repository: 'rules', tag: '1' },
    });
  });

  it.each([
    ['K8saudit', /lower-case/],
    ['k8saudit@sha256:abc', /full REGISTRY\/REPOSITORY@sha256/],
    ['::k8saudit', /index name/],
    ['corp::a/b', /no "\/"/],
    ['corp::', /empty artifact name/],
  ])('rejects %j', (input, message) => {
    expect(() => parseArtifactRef(input)).toThrow(message);
  });
});
