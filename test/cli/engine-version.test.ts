/**
 * Engine versions as Falco reports them, against the real registry and a local versions endpoint:
 * `{"engine_version":"31","engine_version_semver":"0.31.0",...}` is engine 0.31.0 (not 31), a bare
 * number alone is the legacy minor form, a refusal names the URL and the version, and an unknown
 * engine version is said once per run, not once per artifact.
 */
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeReading, engineVersionOfDocument, parseEngineVersion } from '../../src/resolve/engine-version.js';
import { checkRequirements } from '../../src/resolve/requirements.js';
import type { RegistryClient } from '../../src/registry/index.js';
import { cliEnv, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/fs.js';
import { listenOnLoopback } from '../helpers/net.js';
import { pushRules } from '../helpers/push.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { clientFor } from '../install/setup.js';

/** What Falco 0.37's web server answers at /versions. */
const FALCO_VERSIONS = {
  default_driver_version: '7.0.0+driver',
  driver_api_version: '8.0.0',
  driver_schema_version: '2.0.0',
  engine_version: '31',
  engine_version_semver: '0.31.0',
  falco_version: '0.37.1',
  libs_version: '0.14.3',
  plugin_api_version: '3.2.0',
};

let reg: TestRegistry;
let client: RegistryClient;
let server: Server;
let versionsUrl: string;
/** What the versions endpoint answers now. */
let answer: unknown = FALCO_VERSIONS;
let env: Awaited<ReturnType<typeof cliEnv>>;

const rules = (name: string) => `- list: ${name}\n  items: []\n`;

beforeAll(async () => {
  reg = await startRegistry();
  client = clientFor(reg);
  await pushRules(client, `${reg.host}/rules/needs031:1.0.0`, '1.0.0', { name: 'needs031', content: rules('a'), fileName: 'needs031.yaml', requirements: [{ name: 'engine_version', version: '0.31.0' }] });
  await pushRules(client, `${reg.host}/rules/needs026:1.0.0`, '1.0.0', { name: 'needs026', content: rules('b'), fileName: 'needs026.yaml', requirements: [{ name: 'engine_version', version: '0.26.0' }] });
  await pushRules(client, `${reg.host}/rules/needs032:1.0.0`, '1.0.0', { name: 'needs032', content: rules('c'), fileName: 'needs032.yaml', requirements: [{ name: 'engine_version', version: '0.32.0' }] });
  server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer)));
  versionsUrl = `http://127.0.0.1:${await listenOnLoopback(server)}/versions`;
  env = await cliEnv();
}, 60_000);

afterAll(async () => {
  server?.close();
  await client?.close();
  await reg?.stop();
});

async function follow(refs: string[], extra: string[] = []) {
  const dir = await tempDir('engine-follow-');
  const r = await runCli(
    ['artifact', 'follow', ...refs.map((r) => `${reg.host}/rules/${r}:1.0.0`), '--once', '--rulesfiles-dir', join(dir, 'rules'), '--state-dir', join(dir, 'state'), '--plain-http', ...extra],
    { env },
  );
  return { ...r, dir };
}

describe('engine version parsing (pure)', () => {
  it('prefers engine_version_semver; a bare number is the legacy minor form; anything else is no version', () => {
    expect(engineVersionOfDocument(FALCO_VERSIONS)).toEqual({ version: '0.31.0', field: 'engine_version_semver', raw: '0.31.0' });
    expect(engineVersionOfDocument({ engine_version: '31' })).toEqual({ version: '0.31.0', field: 'engine_version', raw: '31' });
    expect(engineVersionOfDocument({ engine_version: 17 })?.version).toBe('0.17.0');
    expect(engineVersionOfDocument({ engine_version: '0.40.0' })?.version).toBe('0.40.0');
    // A semver field that is not a semver does not hide a good legacy one.
    expect(engineVersionOfDocument({ engine_version_semver: 'unknown', engine_version: 30 })?.version).toBe('0.30.0');
    expect(engineVersionOfDocument({ engine_version_semver: '31', engine_version: 30 })?.version).toBe('0.30.0');
    expect(engineVersionOfDocument({ falco_version: '0.37.1' })).toBeUndefined();
    expect(engineVersionOfDocument('0.31.0')).toBeUndefined();
    expect(describeReading({ version: '0.31.0', field: 'engine_version', raw: '31' })).toBe('engine_version "31" (read as 0.31.0)');
    expect(describeReading({ version: '0.31.0', field: 'engine_version_semver', raw: '0.31.0' })).toBe('engine_version_semver "0.31.0"');
    for (const [value, version] of [
      ['0.31.0', '0.31.0'],
      ['v0.31.0', '0.31.0'],
      ['0.31', '0.31.0'],
      ['31', '0.31.0'],
      [31, '0.31.0'],
      ['1.2.3-rc.1', '1.2.3-rc.1'],
      ['abc', undefined],
      [1.5, undefined],
      [-1, undefined],
      ['31.x', undefined],
    ] as const) {
      expect(parseEngineVersion(value), String(value)).toBe(version);
    }
  });

  it('says an unknown engine version once for all the artifacts of a run', () => {
    const subjects = [
      { label: 'a 1.0.0', requirements: [{ name: 'engine_version', version: '0.31.0' }] },
      { label: 'b 1.0.0', requirements: [{ name: 'engine_version', version: '0.26.0' }] },
    ];
    expect(checkRequirements(subjects, {}).warnings).toEqual([
      'a 1.0.0 requires engine_version 0.31.0, b 1.0.0 requires engine_version 0.26.0; not checked (give --engine-version or set install.engineVersion)',
    ]);
    expect(checkRequirements(subjects, { engineUnknownSaid: true }).warnings).toEqual([]);
  });
});

describe('follow with a Falco-shaped versions endpoint', () => {
  it('reads {"engine_version":"31","engine_version_semver":"0.31.0"} as 0.31.0: rules for 0.31 and 0.26 go in', async () => {
    answer = FALCO_VERSIONS;
    const r = await follow(['needs031', 'needs026'], ['--engine-versions-url', versionsUrl]);
    expect(r.stdout).toContain(`${reg.host}/rules/needs031:1.0.0: updated 1.0.0`);
    expect(r.stdout).toContain(`${reg.host}/rules/needs026:1.0.0: updated 1.0.0`);
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(join(r.dir, 'rules', 'needs031.yaml'), 'utf8')).toBe(rules('a'));
  });

  it('a bare number alone is the legacy minor form', async () => {
    answer = { engine_version: 31 };
    const r = await follow(['needs031'], ['--engine-versions-url', versionsUrl]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('updated 1.0.0');
  });

  it('an answer without an engine version fails the check, naming the URL and what it answered', async () => {
    answer = { falco_version: '0.37.1', engine_version: 'unknown' };
    const r = await follow(['needs031'], ['--engine-versions-url', versionsUrl]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`engine versions URL ${versionsUrl} answered no engine version ("engine_version_semver" or "engine_version"): {"falco_version":"0.37.1","engine_version":"unknown"}`);
  });

  it('a refusal names the version and the URL it was read from', async () => {
    answer = FALCO_VERSIONS;
    const r = await follow(['needs032'], ['--engine-versions-url', versionsUrl]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`^${reg.host}/rules/needs032:1\\.0\\.0: rejected \\(requirements\\) 1\\.0\\.0 sha256:[0-9a-f]{64}: `, 'm'));
    expect(r.stdout).toContain(`needs032 1.0.0 requires engine version 0.32.0 (same major, at least 0.32.0); this engine is 0.31.0, read from ${versionsUrl}`);
  });
});

describe('no engine version known', () => {
  const unchecked = (stderr: string) => stderr.split('\n').filter((l) => l.includes('not checked'));

  it('follow says so once per run, not once per artifact', async () => {
    const r = await follow(['needs031', 'needs026']);
    expect(r.code, r.stderr).toBe(0);
    expect(unchecked(r.stderr)).toHaveLength(1);
    expect(unchecked(r.stderr)[0]).toContain('requires engine_version');
    expect(unchecked(r.stderr)[0]).toContain('--engine-versions-url');
  });

  it('install says so once for all the artifacts it installs', async () => {
    const dir = await tempDir('engine-install-');
    const r = await runCli(
      ['artifact', 'install', `${reg.host}/rules/needs031:1.0.0`, `${reg.host}/rules/needs026:1.0.0`, '--rulesfiles-dir', dir, '--plugins-dir', dir, '--plain-http'],
      { env },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(unchecked(r.stderr)).toHaveLength(1);
    expect(unchecked(r.stderr)[0]).toContain('needs031 1.0.0 requires engine_version 0.31.0, needs026 1.0.0 requires engine_version 0.26.0; not checked');
  });
});
