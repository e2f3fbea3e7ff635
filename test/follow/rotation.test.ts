/**
 * Rotation without restarts, end to end: the built agent with its registry credentials, its CA
 * bundle and its cosign key mounted the way the kubelet mounts a Secret or ConfigMap (a `..data`
 * symlink into a timestamped dir, the files symlinks into `..data`), each updated by renaming a new
 * `..data_tmp` over `..data`. After each swap the agent works with the new file at its next checks,
 * without a restart and without any change of its config file's text.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { parseOciReference } from '../../src/reference/reference.js';
import { RegistryClient } from '../../src/registry/index.js';
import { signDigest } from '../../src/signature/cosign.js';
import { cliEnv } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { mountVolume, updateVolume } from '../helpers/kubelet-volume.js';
import { pushClient, pushRules } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeTlsFiles } from '../helpers/tls.js';
import { SigstoreStandin } from '../signature/sigstore-standin.js';
import { metricValue, scrape, startAgent, waitFor, type Agent } from './setup.js';

const RULES = (v: string): string => `- macro: rotated_${v.replace(/\W/g, '_')}\n  condition: (evt.type = open)\n`;

/** docker's config.json with one credential for `host`. */
function dockerConfig(host: string, username: string, password: string): string {
  return JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } } });
}

describe('artifact follow: rotated Secrets and ConfigMaps apply without a restart', () => {
  const registries: TestRegistry[] = [];
  const agents: Agent[] = [];

  afterAll(async () => {
    for (const a of agents) await a.stop();
    for (const r of registries) await r.stop();
  });

  /** The agent following `ref` every second, with `registry` as its config's registry section. */
  async function follow(ref: string, registry: Record<string, unknown>, configDir?: string) {
    const root = await tempDir();
    const rules = join(root, 'rules');
    const env = await cliEnv(configDir ? { DIGINFRACTL_CONFIG: join(configDir, 'diginfractl.yaml') } : {});
    if (!configDir) await writeFile(env.DIGINFRACTL_CONFIG!, stringify({ registry }));
    const agent = startAgent([ref, '--every', '1s', '--jitter', '0', '--rulesfiles-dir', rules, '--state-dir', join(root, 'state'), '--metrics-addr', '127.0.0.1:0'], env);
    agents.push(agent);
    const port = await agent.port();
    const live = join(rules, 'falco_rules.yaml');
    const failing = () => waitFor('failed checks', async () => metricValue(await scrape(port), 'diginfractl_follow_checks_total', { ref, result: 'error' }) >= 2, 15_000);
    const installed = (v: string) => waitFor(`${v} installed`, async () => (await readFile(live, 'utf8').catch(() => '')) === RULES(v), 10_000);
    return { agent, port, failing, installed };
  }

  it('registry credentials: a pull Secret fixed in its volume is used at the next check', async () => {
    const reg = await startRegistry({ auth: 'htpasswd' });
    registries.push(reg);
    const ref = `${reg.host}/rotation/creds:stable`;
    const publisher = new RegistryClient({ hostSettings: () => ({ plainHttp: true }), credentials: { get: async () => ({ username: reg.username!, password: reg.password! }) } });
    await pushRules(publisher, ref, '1.0.0', { content: RULES('1.0.0') });
    await publisher.close();

    const secret = join(await tempDir(), 'registry-auth');
    await mountVolume(secret, { 'config.json': dockerConfig(reg.host, reg.username!, 'not-the-password') });
    const a = await follow(ref, { plainHttp: [reg.host], authFile: join(secret, 'config.json') });
    await a.failing();
    expect(metricValue(await scrape(a.port), 'diginfractl_registry_requests_total', { code: '401' })).toBeGreaterThan(0);

    await updateVolume(secret, { 'config.json': dockerConfig(reg.host, reg.username!, reg.password!) });
    await a.installed('1.0.0');
    expect(a.agent.logs.some((l) => l.event === 'files-changed' && l.kind === 'credentials')).toBe(true);
    // The check that swapped the files records its success just after the rename.
    await waitFor('the failure streak reset', async () => metricValue(await scrape(a.port), 'diginfractl_follow_consecutive_failures', { ref }) === 0, 5_000);
  });

  it('a CA bundle: the new one is trusted from the next check on', async () => {
    const reg = await startRegistry({ tls: true });
    registries.push(reg);
    const ref = `${reg.host}/rotation/ca:stable`;
    const publisher = new RegistryClient({ hostSettings: () => ({ caFile: reg.caFile! }) });
    await pushRules(publisher, ref, '1.0.0', { content: RULES('1.0.0') });
    await publisher.close();

    // The Secret first holds a CA that did not sign the registry's certificate (the one being replaced).
    const caSecret = join(await tempDir(), 'registry-ca');
    await mountVolume(caSecret, { 'ca.crt': await readFile((await makeTlsFiles(await tempDir())).caFile) });
    const a = await follow(ref, { caFiles: { [reg.host]: join(caSecret, 'ca.crt') } });
    await a.failing();
    expect(a.agent.logs.some((l) => /certificate|CERT/i.test(String(l.err ?? '')))).toBe(true);

    await updateVolume(caSecret, { 'ca.crt': await readFile(reg.caFile!) });
    await a.installed('1.0.0');
    expect(a.agent.logs.some((l) => l.event === 'files-changed' && l.kind === 'ca')).toBe(true);
  });

  it('a cosign key in the ConfigMap beside the config: a version refused for its signature goes in once the key is rotated', async () => {
    const reg = await startRegistry();
    registries.push(reg);
    const ref = `${reg.host}/rotation/signed:stable`;
    const push = pushClient();
    const pem = (k: KeyObject): string => k.export({ type: 'spki', format: 'pem' }) as string;
    const old = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const rotated = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const sign = async (digest: string, key: KeyObject) => signDigest(push, parseOciReference(ref), digest, key);
    await sign(await pushRules(push, ref, '1.0.0', { content: RULES('1.0.0') }), old.privateKey);

    // The chart's layout: diginfractl.yaml and cosign-0.pub in one ConfigMap volume.
    const configDir = join(await tempDir(), 'config');
    const config = stringify({ registry: { plainHttp: [reg.host], cosignKeys: [join(configDir, 'cosign-0.pub')] } });
    await mountVolume(configDir, { 'diginfractl.yaml': config, 'cosign-0.pub': pem(old.publicKey) });
    const a = await follow(ref, {}, configDir);
    await a.installed('1.0.0');

    // 2.0.0 is signed with the new key only: refused while the old key is the one mounted.
    await sign(await pushRules(push, ref, '2.0.0', { content: RULES('2.0.0') }), rotated.privateKey);
    await waitFor('2.0.0 refused', async () => metricValue(await scrape(a.port), 'diginfractl_follow_rejected_total', { ref, reason: 'signature' }) === 1);

    // The ConfigMap is updated: same config text, the new key.
    await updateVolume(configDir, { 'diginfractl.yaml': config, 'cosign-0.pub': pem(rotated.publicKey) });
    await a.installed('2.0.0');
    expect(a.agent.logs.some((l) => l.event === 'files-changed' && l.kind === 'trust')).toBe(true);
    expect(a.agent.logs.some((l) => l.event === 'config-reloaded')).toBe(false);
  });

  it('a trusted_root.json in the ConfigMap: read again when it changes; a broken one is refused and the previous stays', async () => {
    const reg = await startRegistry();
    registries.push(reg);
    const ref = `${reg.host}/rotation/rooted:stable`;
    await pushRules(pushClient(), ref, '1.0.0', { content: RULES('1.0.0') });
    const first = await SigstoreStandin.start(await tempDir());
    const second = await SigstoreStandin.start(await tempDir());
    const root = (s: SigstoreStandin) => readFile(s.trustedRootFile, 'utf8');

    const configDir = join(await tempDir(), 'config');
    const config = stringify({ registry: { plainHttp: [reg.host], trustedRoot: join(configDir, 'trusted_root.json') } });
    await mountVolume(configDir, { 'diginfractl.yaml': config, 'trusted_root.json': await root(first) });
    const a = await follow(ref, {}, configDir);
    await a.installed('1.0.0');

    await updateVolume(configDir, { 'diginfractl.yaml': config, 'trusted_root.json': await root(second) });
    await waitFor('the new root read', async () => a.agent.logs.some((l) => l.event === 'files-changed' && l.kind === 'trust'), 10_000);
    await updateVolume(configDir, { 'diginfractl.yaml': config, 'trusted_root.json': '{"not": "a trusted root"' });
    await waitFor('the broken root refused', async () => a.agent.logs.some((l) => l.event === 'files-reload-failed' && l.kind === 'trust'), 10_000);
    expect(a.agent.logs.some((l) => l.event === 'config-reloaded')).toBe(false);
    // Still running and checking.
    const checks = metricValue(await scrape(a.port), 'diginfractl_follow_checks_total', { ref, result: 'unchanged' });
    await waitFor('checks go on', async () => metricValue(await scrape(a.port), 'diginfractl_follow_checks_total', { ref, result: 'unchanged' }) > checks, 10_000);
  });
});
