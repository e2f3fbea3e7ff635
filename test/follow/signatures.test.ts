/**
 * The follower and signature policies, in process against a real registry and the Sigstore stand-in:
 * a refusal is counted by reason in diginfractl_follow_rejected_total and keeps the files, a signature
 * that appears later (a bundle referrer) earns another look, and with verification off each version
 * installed is counted in diginfractl_unverified_installs_total and warned about.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admitSignature, verifiesSignatures, type SignatureIo } from '../../src/follow/admission.js';
import { Follower } from '../../src/follow/follower.js';
import type { IndexEntry, LoadedIndex } from '../../src/indexes/types.js';
import { createFollowMetrics } from '../../src/metrics/follow-metrics.js';
import { parseOciReference } from '../../src/reference/reference.js';
import { RegistryClient } from '../../src/registry/index.js';
import { DiginfraError } from '../../src/errors.js';
import { loadTrustMaterial } from '../../src/signature/index.js';
import { tempDir } from '../helpers/fs.js';
import { pushClient, pushRules } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { GITHUB_ISSUER, SigstoreStandin } from '../signature/sigstore-standin.js';
import { followSettings, memoryLogger, metricValue } from './setup.js';

const RELEASE = 'https://github.com/acme/rules/.github/workflows/release.yml@refs/tags/v1';

let reg: TestRegistry;
let client: RegistryClient;
let standin: SigstoreStandin;
let index: LoadedIndex;

beforeAll(async () => {
  reg = await startRegistry();
  client = pushClient();
  standin = await SigstoreStandin.start(await tempDir('follow-sigstore-'));
  const entry: IndexEntry = {
    name: 'rules',
    type: 'rulesfile',
    registry: reg.host,
    repository: 'acme/rules',
    description: 'rules',
    keywords: ['rules'],
    signature: { cosign: { 'certificate-identity-regexp': '^https://github\\.com/acme/', 'certificate-oidc-issuer': GITHUB_ISSUER } },
  };
  index = { name: 'acme', url: 'file:///acme.yaml', entries: [entry] };
}, 60_000);

afterAll(async () => {
  await client?.close();
  await reg?.stop();
});

async function follower(ref: string, verification: 'on' | 'off') {
  const root = await tempDir('follow-sig-');
  const metrics = createFollowMetrics({ defaultMetrics: false });
  const { logger, lines } = memoryLogger();
  const settings = followSettings(root, [ref], { verification });
  const trust = await loadTrustMaterial({ trustedRootFile: standin.trustedRootFile, cacheDir: root });
  const f = new Follower(settings, {
    logger,
    metrics,
    client: new RegistryClient({ hostSettings: () => ({ plainHttp: true }), retry: { attempts: 1 } }),
    signatures: { trust: async () => trust, indexes: async () => [index] },
  });
  return { f, metrics, lines, rules: join(root, 'rules') };
}

describe('follow with signature policies (in process)', () => {
  it('counts a refusal by reason signature and keeps the files; a bundle added later earns another look', async () => {
    const ref = `${reg.host}/acme/rules:stable`;
    const repo = parseOciReference(ref);
    const v1 = await pushRules(client, ref, '1.0.0', { content: '- list: v1\n  items: []\n' });
    await standin.signV2(client, repo, v1, { identity: RELEASE });
    const { f, metrics, lines, rules } = await follower(ref, 'on');
    expect(await f.check(ref)).toMatchObject({ result: 'updated', version: '1.0.0' });
    expect(lines.find((l) => l.event === 'verified')).toMatchObject({ signer: RELEASE, format: 'cosign-v2' });

    const v2 = await pushRules(client, ref, '2.0.0', { content: '- list: v2\n  items: []\n' });
    await standin.signV3(client, repo, v2, { identity: 'https://github.com/mallory/rules/.github/workflows/x.yml@refs/heads/main' });
    expect(await f.check(ref)).toMatchObject({ result: 'rejected', reason: 'signature', message: expect.stringContaining('is signed by "https://github.com/mallory/') });
    expect(metricValue(await metrics.registry.metrics(), 'diginfractl_follow_rejected_total', { ref, reason: 'signature' })).toBe(1);
    expect(await readFile(join(rules, 'falco_rules.yaml'), 'utf8')).toBe('- list: v1\n  items: []\n');
    // Nothing changed: still refused, from the state, without another download.
    expect(await f.check(ref)).toMatchObject({ result: 'rejected', reason: 'signature' });
    // The publisher's own bundle arrives as a referrer: the next check installs it.
    await standin.signV3(client, repo, v2, { identity: RELEASE });
    expect(await f.check(ref)).toMatchObject({ result: 'updated', version: '2.0.0' });
    await f.stop();
  });

  it('with verification off, installs and counts each version in diginfractl_unverified_installs_total, with a warning', async () => {
    const ref = `${reg.host}/acme/rules:unverified`;
    await pushRules(client, ref, '3.0.0', { content: '- list: v3\n  items: []\n' });
    const { f, metrics, lines } = await follower(ref, 'off');
    expect(await f.check(ref)).toMatchObject({ result: 'updated', version: '3.0.0' });
    expect(metricValue(await metrics.registry.metrics(), 'diginfractl_unverified_installs_total', { ref })).toBe(1);
    expect(lines.find((l) => l.event === 'unverified')).toMatchObject({ level: 40, msg: expect.stringContaining('installed without verifying its signature') });
    await f.stop();
  });
});

describe('admission of signatures', () => {
  const io = (verify: (() => Promise<unknown>) | undefined, calls: string[] = []): SignatureIo => ({
    state: async () => (calls.push('state'), 'none'),
    verifier: async () => verify,
  });

  it('verifies under policies when on, with keys alone for a library caller, never when off', () => {
    expect(verifiesSignatures({ verification: 'on' })).toBe(true);
    expect(verifiesSignatures({ verifyKeys: ['/k.pub'] })).toBe(true);
    expect(verifiesSignatures({})).toBe(false);
    expect(verifiesSignatures({ verification: 'off', verifyKeys: ['/k.pub'] })).toBe(false);
  });

  it('admits what no policy covers without reading its signatures; SIGNATURE_IDENTITY is a refusal', async () => {
    const calls: string[] = [];
    expect(await admitSignature([], io(undefined, calls))).toMatchObject({ admitted: true });
    expect(calls).toEqual([]);
    const verdict = await admitSignature([], io(async () => Promise.reject(new DiginfraError('SIGNATURE_IDENTITY', 'signed by someone else'))));
    expect(verdict).toEqual({ admitted: false, reason: 'signature', message: 'signed by someone else', remember: { signatures: 'none' } });
  });
});
