/**
 * Admission of a new version, without a registry: each check's verdict and reason (the `reason` label
 * of diginfractl_follow_rejected_total), the order the checks run in and what each reads, and when a
 * refused digest earns another look. Validation runs on real staged files (the YAML check's child
 * process, a --validate-cmd script).
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiginfraError } from '../../src/errors.js';
import {
  admitDependencies,
  admitRequirements,
  admitSignature,
  admitStaged,
  admitType,
  admitVersion,
  rejectionKey,
  worthAnotherLook,
  type AdmissionIo,
  type AdmissionPolicy,
  type Candidate,
  type SignatureIo,
} from '../../src/follow/admission.js';
import { signatureOf, type InstalledArtifact, type InstalledView } from '../../src/follow/dependencies.js';
import type { Rejection } from '../../src/follow/state.js';
import { tempDir } from '../helpers/fs.js';

const policy: AdmissionPolicy = { dirs: {}, allowedTypes: ['rulesfile'], installLockfiles: ['/etc/diginfra/rules.d/diginfractl.lock'] };

function candidate(over: Partial<Candidate> = {}): Candidate {
  return { ref: 'registry.example/rules:1', label: 'rules 2.0.0', type: 'rulesfile', requirements: [], dependencies: [], ...over };
}

function view(installed: InstalledArtifact[], known = true): InstalledView {
  return { installed, known, signature: signatureOf(installed) };
}

/** Signature reads that say what they were asked, in order; `verify` fails with `failure` when given. */
function signatures(calls: string[], state: string, failure?: Error): SignatureIo {
  return {
    async state() {
      calls.push('state');
      return state;
    },
    async verifier(keyPaths) {
      calls.push(`keys ${keyPaths.join(',')}`);
      return async () => {
        calls.push('verify');
        if (failure) throw failure;
      };
    },
  };
}

/** Reads that record which were made; the signatures' verification passes. */
function io(calls: string[], over: Partial<AdmissionIo> = {}): AdmissionIo {
  return {
    async engineVersion() {
      calls.push('engine');
      return '0.40.0';
    },
    async installed() {
      calls.push('installed');
      return view([]);
    },
    signatures: signatures(calls, 'sha256:sig1'),
    ...over,
  };
}

async function stagedFiles(files: Record<string, string>): Promise<{ staging: string; files: { rel: string; mode: number }[] }> {
  const staging = await tempDir('diginfractl-staged-');
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(join(staging, rel, '..'), { recursive: true });
    await writeFile(join(staging, rel), text);
  }
  return { staging, files: Object.keys(files).map((rel) => ({ rel, mode: 0o644 })) };
}

describe('admission: type', () => {
  it('admits rules files, plugins and the types with a directory, of those allowed', () => {
    expect(admitType(candidate(), policy)).toMatchObject({ admitted: true });
    expect(admitType(candidate({ type: 'plugin' }), { dirs: {}, allowedTypes: [] })).toMatchObject({ admitted: true });
    expect(admitType(candidate({ type: 'asset' }), { dirs: { asset: '/srv/assets' }, allowedTypes: [] })).toMatchObject({ admitted: true });
  });

  it('refuses a type not allowed, and one follow has no directory for (type_not_allowed)', () => {
    expect(admitType(candidate({ type: 'plugin' }), policy)).toEqual({
      admitted: false,
      reason: 'type_not_allowed',
      message: 'rules 2.0.0 is of type "plugin", not in the allowed types (rulesfile)',
    });
    const noDir = admitType(candidate({ type: 'asset' }), { dirs: {}, allowedTypes: [] });
    expect(noDir).toMatchObject({ admitted: false, reason: 'type_not_allowed', message: expect.stringContaining('--dir asset=DIR, or follow.dirs.asset') });
    // A type named like an Object property has no directory either.
    expect(admitType(candidate({ type: 'constructor' }), { dirs: {}, allowedTypes: [] })).toMatchObject({ admitted: false, reason: 'type_not_allowed' });
  });
});

describe('admission: signature', () => {
  it('reads the keys, notes the signatures, then verifies; a verified digest is admitted', async () => {
    const calls: string[] = [];
    expect(await admitSignature(['/keys/a.pub', '/keys/b.pub'], signatures(calls, 'sha256:sig1'))).toMatchObject({ admitted: true });
    expect(calls).toEqual(['keys /keys/a.pub,/keys/b.pub', 'state', 'verify']);
  });

  it('refuses a missing or invalid signature (signature) and remembers the signatures it saw', async () => {
    for (const code of ['SIGNATURE_MISSING', 'SIGNATURE_INVALID'] as const) {
      const verdict = await admitSignature(['/keys/a.pub'], signatures([], 'none', new DiginfraError(code, `no signature of rules 2.0.0 verifies (${code})`)));
      expect(verdict).toEqual({ admitted: false, reason: 'signature', message: `no signature of rules 2.0.0 verifies (${code})`, remember: { signatures: 'none' } });
    }
  });

  it('lets any other failure (the registry, an unreadable key) through as an error', async () => {
    await expect(admitSignature(['/keys/a.pub'], signatures([], 'none', new DiginfraError('NETWORK', 'registry unreachable')))).rejects.toMatchObject({ code: 'NETWORK' });
  });
});

describe('admission: requirements', () => {
  const needs040 = candidate({ requirements: [{ name: 'engine_version', version: '0.40.0' }] });

  it('refuses a version the running engine is too old for (requirements), remembering both', () => {
    expect(admitRequirements(needs040, '0.39.2')).toMatchObject({
      admitted: false,
      reason: 'requirements',
      message: expect.stringContaining('rules 2.0.0 requires engine version 0.40.0'),
      remember: { requirements: [{ name: 'engine_version', version: '0.40.0' }], engineVersion: '0.39.2' },
    });
  });

  it("admits a new enough engine; an unknown engine version only warns, with follow's options", () => {
    expect(admitRequirements(needs040, '0.40.1')).toMatchObject({ admitted: true, warnings: [] });
    const unknown = admitRequirements(needs040, undefined);
    expect(unknown.admitted).toBe(true);
    expect(unknown.warnings).toEqual([{ message: 'rules 2.0.0 requires engine_version 0.40.0; not checked (give --engine-version or --engine-versions-url, or set follow.engineVersion)' }]);
  });
});

describe('admission: dependencies', () => {
  const needsK8saudit = candidate({ dependencies: [{ name: 'k8saudit', version: '0.7.0' }] });

  it('refuses a version whose plugin is not installed in a version it accepts (dependencies)', () => {
    const installed = view([{ name: 'k8saudit', version: '0.6.1', type: 'plugin' }]);
    expect(admitDependencies(needsK8saudit, installed, policy.installLockfiles)).toEqual({
      admitted: false,
      reason: 'dependencies',
      message:
        'rules 2.0.0 needs k8saudit >=0.7.0 <1.0.0 (installed: k8saudit 0.6.1); install it (diginfractl artifact install k8saudit:0.7.0) and restart the engine, and this version is installed at the next check',
      remember: { dependencies: [{ name: 'k8saudit', version: '0.7.0' }], installed: 'plugin/k8saudit@0.6.1' },
    });
    expect(admitDependencies(needsK8saudit, view([{ name: 'k8saudit', version: '0.7.2', type: 'plugin' }]), policy.installLockfiles)).toMatchObject({ admitted: true });
  });

  it('without a lock file it cannot tell: admitted, with a warning naming the lock files', () => {
    const verdict = admitDependencies(needsK8saudit, view([], false), policy.installLockfiles);
    expect(verdict).toMatchObject({ admitted: true, warnings: [{ fields: { dependencies: ['k8saudit'] } }] });
    expect(verdict.warnings?.[0]?.message).toContain('no lock file at /etc/diginfra/rules.d/diginfractl.lock; installing it anyway');
  });
});

describe('admission: validation of the staged files', () => {
  it('refuses a rules file that is not YAML (invalid_yaml) or not a list (not_a_list)', async () => {
    const broken = await stagedFiles({ 'falco_rules.yaml': '- macro: [unclosed\n' });
    expect(await admitStaged(candidate(), broken, {})).toMatchObject({ admitted: false, reason: 'invalid_yaml', message: expect.stringContaining('rules 2.0.0: falco_rules.yaml is not valid YAML') });
    const map = await stagedFiles({ 'ok_rules.yaml': '- rule: a\n', 'sub/map_rules.yaml': 'rule: a\n' });
    expect(await admitStaged(candidate(), map, {})).toMatchObject({ admitted: false, reason: 'not_a_list', message: expect.stringContaining('sub/map_rules.yaml') });
  });

  it('refuses what --validate-cmd rejects (validate_cmd), after the YAML check passed', async () => {
    const dir = await tempDir();
    const script = join(dir, 'engine-validate.sh');
    await writeFile(script, '#!/bin/sh\necho "rule x: unknown field" >&2\nexit 3\n');
    await chmod(script, 0o755);
    const staged = await stagedFiles({ 'falco_rules.yaml': '- rule: x\n' });
    expect(await admitStaged(candidate(), staged, { validateCmd: script })).toMatchObject({
      admitted: false,
      reason: 'validate_cmd',
      message: expect.stringContaining('exited with 3: rule x: unknown field'),
    });
    expect(await admitStaged(candidate(), staged, { validateCmd: 'true' })).toMatchObject({ admitted: true });
  });

  it("checks rules files only: another type's files are its own format", async () => {
    const staged = await stagedFiles({ 'config.yaml': 'not: a list\n' });
    expect(await admitStaged(candidate({ type: 'asset' }), staged, { validateCmd: 'false' })).toMatchObject({ admitted: true });
  });

  it('a stop (the abort signal) ends it with the reason, before the next --validate-cmd', async () => {
    const staged = await stagedFiles({ 'falco_rules.yaml': '- rule: x\n' });
    const abort = new AbortController();
    const reason = new Error('shutting down');
    abort.abort(reason);
    await expect(admitStaged(candidate(), staged, { validateCmd: 'true' }, abort.signal)).rejects.toBe(reason);
  });
});

describe('admission: order, and what each check reads', () => {
  it('the first refusal ends it: a refused type reads nothing', async () => {
    const calls: string[] = [];
    const verdict = await admitVersion(candidate({ type: 'plugin', requirements: [{ name: 'engine_version', version: '0.1.0' }] }), { ...policy, verifyKeys: ['/k.pub'] }, io(calls));
    expect(verdict).toMatchObject({ admitted: false, reason: 'type_not_allowed' });
    expect(calls).toEqual([]);
  });

  it('signatures only with keys, the engine only with requirements, what is installed only with dependencies', async () => {
    const calls: string[] = [];
    expect(await admitVersion(candidate(), policy, io(calls))).toEqual({ admitted: true, warnings: [] });
    expect(calls).toEqual([]);
    const full = candidate({ requirements: [{ name: 'engine_version', version: '0.40.0' }], dependencies: [{ name: 'json', version: '0.7.0' }] });
    expect(await admitVersion(full, { ...policy, verifyKeys: ['/k.pub'] }, io(calls, { installed: async () => (calls.push('installed'), view([{ name: 'json', version: '0.7.1', type: 'plugin' }])) }))).toMatchObject({
      admitted: true,
    });
    expect(calls).toEqual(['keys /k.pub', 'state', 'verify', 'engine', 'installed']);
  });

  it('a refusal after a warning keeps the warning', async () => {
    const c = candidate({ requirements: [{ name: 'plugin_api', version: '3.0.0' }], dependencies: [{ name: 'k8saudit', version: '0.7.0' }] });
    const verdict = await admitVersion(c, policy, io([]));
    expect(verdict).toMatchObject({ admitted: false, reason: 'dependencies', warnings: [{ message: expect.stringContaining('plugin_api 3.0.0, which diginfractl does not know how to check') }] });
  });
});

describe('admission: another look at a refused digest', () => {
  const base = { digest: 'sha256:aa', version: '2.0.0', message: 'refused', at: '2025-01-01T00:00:00.000Z' };

  it('never for a digest rolled back from', async () => {
    expect(await worthAnotherLook({ ...base, reason: 'rollback' }, policy, io([]))).toBe(false);
  });

  it('for requirements: when the engine version changed to one that meets them', async () => {
    const r: Rejection = { ...base, reason: 'requirements', requirements: [{ name: 'engine_version', version: '0.40.0' }], engineVersion: '0.39.0' };
    const engine = (v: string) => io([], { engineVersion: async () => v });
    expect(await worthAnotherLook(r, policy, engine('0.39.0'))).toBe(false);
    expect(await worthAnotherLook(r, policy, engine('0.39.5'))).toBe(false);
    expect(await worthAnotherLook(r, policy, engine('0.40.0'))).toBe(true);
  });

  it('for dependencies: when what is installed changed so that they are met', async () => {
    const before = view([{ name: 'k8saudit', version: '0.6.1', type: 'plugin' }]);
    const r: Rejection = { ...base, reason: 'dependencies', dependencies: [{ name: 'k8saudit', version: '0.7.0' }], installed: before.signature };
    const installed = (v: InstalledView) => io([], { installed: async () => v });
    expect(await worthAnotherLook(r, policy, installed(before))).toBe(false);
    expect(await worthAnotherLook(r, policy, installed(view([{ name: 'k8saudit', version: '0.6.2', type: 'plugin' }])))).toBe(false);
    expect(await worthAnotherLook(r, policy, installed(view([{ name: 'k8saudit', version: '0.7.0', type: 'plugin' }])))).toBe(true);
  });

  it('for a signature: when a signature appeared; otherwise when the settings that refused it changed', async () => {
    const withKeys = { ...policy, verifyKeys: ['/k.pub'] };
    const r: Rejection = { ...base, reason: 'signature', signatures: 'none', key: rejectionKey(withKeys) };
    expect(await worthAnotherLook(r, withKeys, io([], { signatures: signatures([], 'none') }))).toBe(false);
    expect(await worthAnotherLook(r, withKeys, io([], { signatures: signatures([], 'sha256:sig') }))).toBe(true);
    expect(await worthAnotherLook(r, { ...withKeys, verifyKeys: ['/rotated.pub'] }, io([], { signatures: signatures([], 'none') }))).toBe(true);
    const typeRefused: Rejection = { ...base, reason: 'type_not_allowed', key: rejectionKey(policy) };
    expect(await worthAnotherLook(typeRefused, policy, io([]))).toBe(false);
    expect(await worthAnotherLook(typeRefused, { ...policy, allowedTypes: ['rulesfile', 'plugin'] }, io([]))).toBe(true);
  });
});
