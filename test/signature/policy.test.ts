/**
 * Signature policies of index entries (src/signature/policy.ts): the real falcosecurity index parses,
 * every bad field gets its own sentence at `index add|update`, regexps are cosign's (RE2, unanchored).
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkCosignBlock, describePolicy, entriesForRepository, parsePolicy, policyOf, re2Search } from '../../src/signature/policy.js';
import { parseIndexText } from '../../src/indexes/parse.js';
import { ROOT } from '../helpers/cli.js';
import { errorThrownBy, errorOf } from '../helpers/errors.js';

const ISSUER = 'https://token.actions.githubusercontent.com';
const FALCO_REGEXP = 'https://github.com/falcosecurity/plugins/';

function entry(cosign: unknown): string {
  return `- name: demo
  type: plugin
  registry: ghcr.io
  repository: acme/demo
  description: a demo
  keywords: []
  signature:
    cosign: ${JSON.stringify(cosign)}
`;
}

describe('the real falcosecurity index', () => {
  it("parses, and every entry with a signature block has a keyless policy for its repository's GitHub workflows", async () => {
    const text = await readFile(join(ROOT, 'test/fixtures/falcosecurity-index.yaml'), 'utf8');
    const entries = await parseIndexText(text, 'falcosecurity');
    const signed = entries.filter((e) => e.signature !== undefined);
    expect(signed.length).toBeGreaterThan(10);
    for (const e of signed) {
      expect(policyOf(e, 'falcosecurity')).toEqual({
        kind: 'keyless',
        identityRegexp: expect.stringMatching(/^https:\/\/github\.com\/falcosecurity\/(plugins|rules)\/$/),
        issuer: ISSUER,
        githubWorkflow: {},
        ignoreTlog: false,
      });
    }
    const cloudtrail = policyOf(entries.find((e) => e.name === 'cloudtrail')!, 'falcosecurity')!;
    expect(describePolicy(cloudtrail)).toBe(`signed keylessly by identity matching "${FALCO_REGEXP}", issuer "${ISSUER}"`);
  });

  it('finds the entries, and so the policies, of a full reference by registry and repository', async () => {
    const entries = await parseIndexText(await readFile(join(ROOT, 'test/fixtures/falcosecurity-index.yaml'), 'utf8'), 'falcosecurity');
    const hits = entriesForRepository(entries, 'GHCR.io', 'falcosecurity/plugins/plugin/cloudtrail');
    expect(hits.map((e) => e.name)).toEqual(['cloudtrail']);
    expect(entriesForRepository(entries, 'ghcr.io', 'falcosecurity/plugins/plugin/cloudtrail-not')).toEqual([]);
    expect(entriesForRepository([{ registry: 'index.docker.io', repository: 'acme/x' }], 'docker.io', 'acme/x')).toHaveLength(1);
  });
});

describe("cosign's regexp semantics", () => {
  it('searches unanchored, as Go regexp.MatchString does', () => {
    expect(re2Search(FALCO_REGEXP, 'https://github.com/falcosecurity/plugins/.github/workflows/release.yml@refs/tags/cloudtrail-0.13.0')).toBe(true);
    // Unanchored on both sides: a policy author who wants a prefix writes ^.
    expect(re2Search(FALCO_REGEXP, 'https://evil.example/https://github.com/falcosecurity/plugins/')).toBe(true);
    expect(re2Search(`^${FALCO_REGEXP}`, 'https://evil.example/https://github.com/falcosecurity/plugins/')).toBe(false);
    expect(re2Search('(?i)^HTTPS://GITHUB.COM/', 'https://github.com/x')).toBe(true);
  });

  it('refuses what RE2 does not accept (backreferences, lookaround), naming the field', () => {
    const { problems } = checkCosignBlock({ 'certificate-identity-regexp': '(a)\\1', 'certificate-oidc-issuer-regexp': '(?=x)', 'certificate-oidc-issuer': '' });
    expect(problems).toEqual([
      expect.stringMatching(/^"certificate-identity-regexp" "\(a\)\\1" is not an RE2 regexp \(.*invalid escape sequence/),
      expect.stringMatching(/^"certificate-oidc-issuer-regexp" "\(\?=x\)" is not an RE2 regexp \(.*Perl syntax/),
    ]);
  });
});

describe('policy fields', () => {
  it('reads every keyless field, and falcoctl\'s certificate-github-workflow as the repository claim', () => {
    expect(
      parsePolicy({
        'certificate-identity': 'https://github.com/acme/rules/.github/workflows/release.yml@refs/heads/main',
        'certificate-oidc-issuer-regexp': '^https://token\\.actions\\.githubusercontent\\.com$',
        'certificate-github-workflow-trigger': 'push',
        'certificate-github-workflow-sha': 'abc123',
        'certificate-github-workflow-name': 'Release',
        'certificate-github-workflow': 'acme/rules',
        'certificate-github-workflow-ref': 'refs/heads/main',
        'ignore-tlog': false,
      }),
    ).toEqual({
      kind: 'keyless',
      identity: 'https://github.com/acme/rules/.github/workflows/release.yml@refs/heads/main',
      issuerRegexp: '^https://token\\.actions\\.githubusercontent\\.com$',
      githubWorkflow: { trigger: 'push', sha: 'abc123', name: 'Release', repository: 'acme/rules', ref: 'refs/heads/main' },
      ignoreTlog: false,
    });
  });

  it('reads a key as inline PEM, an absolute file, a file:// URL or an https URL', () => {
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(parsePolicy({ key: pem, 'ignore-tlog': true })).toEqual({ kind: 'keyed', keys: [{ pem: pem.trim() }], ignoreTlog: true });
    expect(parsePolicy({ key: '/etc/diginfractl/cosign.pub' })).toEqual({ kind: 'keyed', keys: [{ file: '/etc/diginfractl/cosign.pub' }], ignoreTlog: false });
    expect(parsePolicy({ key: 'file:///etc/keys/a%20b.pub' })).toMatchObject({ keys: [{ file: '/etc/keys/a b.pub' }] });
    expect(parsePolicy({ key: 'https://acme.example/cosign.pub' })).toMatchObject({ keys: [{ url: 'https://acme.example/cosign.pub' }] });
    expect(describePolicy(parsePolicy({ key: 'https://acme.example/cosign.pub' }))).toBe('signed with the key https://acme.example/cosign.pub');
  });

  it.each([
    [{ 'certificate-identity': 'x', 'certificate-oidc-issuer': 'y', 'certificate-identiy-regexp': 'z' }, /unknown field "certificate-identiy-regexp" \(known: certificate-identity, /],
    [{ 'certificate-identity-regexp': 'x' }, /a keyless policy needs "certificate-oidc-issuer" or "certificate-oidc-issuer-regexp"/],
    [{ 'certificate-oidc-issuer': 'x' }, /a keyless policy needs "certificate-identity" or "certificate-identity-regexp"/],
    [{ 'certificate-identity': 'a', 'certificate-identity-regexp': 'b', 'certificate-oidc-issuer': 'c' }, /set "certificate-identity" or "certificate-identity-regexp", not both/],
    [{ 'certificate-identity': 'a', 'certificate-oidc-issuer': 'c', 'certificate-oidc-issuer-regexp': 'd' }, /set "certificate-oidc-issuer" or "certificate-oidc-issuer-regexp", not both/],
    [{ 'certificate-identity': '', key: '', 'ignore-tlog': false }, /sets neither "key" nor a certificate identity and issuer: it would verify nothing/],
    [{ 'certificate-identity': 7, 'certificate-oidc-issuer': 'c' }, /"certificate-identity" must be a string, not a number/],
    [{ 'certificate-identity': 'a', 'certificate-oidc-issuer': 'c', 'ignore-tlog': 'yes' }, /"ignore-tlog" must be true or false, not a string/],
    [{ key: '/k.pub', 'certificate-identity': 'a' }, /"key" and "certificate-identity" are exclusive/],
    [{ key: 'keys/cosign.pub' }, /"key" "keys\/cosign.pub" is neither inline PEM, an https URL nor an absolute file path/],
    [{ key: 'http://acme.example/cosign.pub' }, /over plain http, where anyone on the path could swap it; use https/],
    [{ key: 'gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k' }, /names a KMS or secret store/],
    [{ key: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----' }, /"key" holds a private key/],
    [{ key: '-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----' }, /"key" is not a PEM public key/],
    [{ 'certificate-github-workflow': 'a/b', 'certificate-github-workflow-repository': 'c/d', 'certificate-identity': 'a', 'certificate-oidc-issuer': 'c' }, /name different repositories/],
    ['issuer: x', /must be a map of cosign verify settings, not a string/],
  ])('refuses %j with a sentence naming the field', (cosign, message) => {
    const err = errorThrownBy(() => parsePolicy(cosign, 'repo verify'));
    expect(err.code).toBe('USAGE');
    expect(err.message).toMatch(/^repo verify: /);
    expect(err.message).toMatch(message);
  });
});

describe('index validation', () => {
  it('refuses a bad policy at index add|update, naming the index, the entry and each field', async () => {
    const err = await errorOf(parseIndexText(entry({ 'certificate-identity-regexp': '(a)\\1', 'ignore-tlog': 'no' }), 'corp'));
    expect(err.code).toBe('INDEX_INVALID');
    expect(err.message).toMatch(/^index "corp": entry 1 \("demo"\): "ignore-tlog" must be true or false, not a string; "certificate-identity-regexp" "\(a\)\\1" is not an RE2 regexp .*; a keyless policy needs "certificate-oidc-issuer"/);
  });

  it('refuses signature kinds other than cosign, and accepts an entry without a signature', async () => {
    const err = await errorOf(parseIndexText(entry({}).replace('    cosign: {}', '    notation: {}'), 'corp'));
    expect(err.message).toContain('"signature" has the unknown kind "notation"; diginfractl verifies "cosign" signatures only');
    const [plain] = await parseIndexText(entry({}).replace(/  signature:\n.*\n/, ''), 'corp');
    expect(policyOf(plain!, 'corp')).toBeUndefined();
  });

  it('policyOf refuses an entry that did not come validated (an old cache) with INDEX_INVALID', () => {
    const err = errorThrownBy(() => policyOf({ name: 'demo', signature: { cosign: { 'certificate-oidc-issuer': 'x' } } }, 'corp'));
    expect(err.code).toBe('INDEX_INVALID');
    expect(err.message).toContain('index "corp": entry "demo": a keyless policy needs "certificate-identity"');
  });
});
