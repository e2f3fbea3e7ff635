/**
 * `diginfractl index add|list|update|remove` end to end: the built CLI as a child process, indexes
 * served by a real HTTP server on 127.0.0.1 (with and without basic auth, with ETags), file:// and
 * plain paths; every bad input leaves the config, the cached copy and the credentials as they were.
 */
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ServerResponse } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cliEnv, runCli } from '../helpers/cli.js';
import { deadPort } from '../helpers/net.js';
import { makeTlsFiles } from '../helpers/tls.js';
import { GOOD_INDEX, indexHandler, serve, type Served } from '../indexes/server.js';

type Env = Awaited<ReturnType<typeof cliEnv>>;
let env: Env;
let server: Served;
let authServer: Served;
/** What the main server answers on each path; tests change it. */
const bodies: Record<string, string> = {};
/** Paths that answer something special instead. */
const special: Record<string, (res: ServerResponse) => void> = {};

beforeAll(async () => {
  const normal = indexHandler(bodies);
  server = await serve((req, res) => {
    const s = special[req.url ?? ''];
    if (s) s(res);
    else normal(req, res);
  });
  authServer = await serve(indexHandler({ '/private.yaml': GOOD_INDEX }, { auth: { user: 'alice', password: 'hunter2-secret' } }));
});

afterAll(async () => {
  await server?.close();
  await authServer?.close();
});

beforeEach(async () => {
  env = await cliEnv();
  for (const k of Object.keys(bodies)) delete bodies[k];
  bodies['/index.yaml'] = GOOD_INDEX;
  // Start from a config without the default index, so nothing reaches the internet.
  await writeFile(env.DIGINFRACTL_CONFIG!, 'indexes: []\n');
});

const cacheDir = () => join(env.XDG_CACHE_HOME!, 'diginfractl', 'indexes');
const cli = (args: string[], input?: string) => runCli(args, { env, ...(input !== undefined && { input }) });
const config = () => readFile(env.DIGINFRACTL_CONFIG!, 'utf8');

async function cacheFiles(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of await readdir(cacheDir()).catch(() => [] as string[])) out[f] = await readFile(join(cacheDir(), f), 'utf8');
  return out;
}

describe('index add', () => {
  it('fetches and validates over http (with a warning), then saves the index to the config and caches it', async () => {
    const r = await cli(['index', 'add', 'corp', `${server.base}/index.yaml`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`index "corp" added: 2 entries from ${server.base}/index.yaml\n`);
    expect(r.stderr).toContain('index \\"corp\\" is fetched over plain http://');
    expect(await config()).toMatch(new RegExp(`^indexes:\\n  - name: corp\\n    url: ${server.base}/index.yaml\\n    added: \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\n$`));
    expect((await cacheFiles())['corp.yaml']).toBe(GOOD_INDEX);
    const meta = JSON.parse((await cacheFiles())['corp.json']!);
    expect(meta).toMatchObject({ name: 'corp', url: `${server.base}/index.yaml`, entries: 2, etag: expect.any(String) });

    const list = await cli(['index', 'list']);
    expect(list.code).toBe(0);
    const [header, row] = list.stdout.trim().split('\n');
    expect(header).toMatch(/^NAME\s+URL\s+ADDED\s+UPDATED\s+ENTRIES$/);
    expect(row).toMatch(new RegExp(`^corp\\s+${server.base}/index.yaml\\s+\\S+Z\\s+\\S+Z\\s+2$`));
  });

  it('https: verifies the certificate, trusting registry.caFiles for the index host', async () => {
    const dir = dirname(env.DIGINFRACTL_CONFIG!);
    const tls = await makeTlsFiles(dir);
    const s = await serve(indexHandler({ '/index.yaml': GOOD_INDEX }), tls);
    try {
      const untrusted = await cli(['index', 'add', 'secure', `${s.base}/index.yaml`]);
      expect(untrusted.code).toBe(1);
      expect(untrusted.stderr).toMatch(new RegExp(`error: index "secure": cannot reach ${s.base.replace(/\./g, '\\.')}/index\\.yaml: .*certificate`, 'i'));
      expect(await config()).toBe('indexes: []\n');
      const host = s.base.replace('https://', '');
      await writeFile(env.DIGINFRACTL_CONFIG!, `indexes: []\nregistry:\n  caFiles:\n    "${host}": ${tls.caFile}\n`);
      const r = await cli(['index', 'add', 'secure', `${s.base}/index.yaml`]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).not.toContain('plain http');
      expect(await config()).toContain(`  - name: secure\n    url: ${s.base}/index.yaml\n`);
      expect(await config()).toContain(`    "${host}": ${tls.caFile}\n`);
    } finally {
      await s.close();
    }
  });

  it('takes file:// URLs and plain paths (stored absolute)', async () => {
    const dir = dirname(env.DIGINFRACTL_CONFIG!);
    await mkdir(join(dir, 'idx'));
    await writeFile(join(dir, 'idx', 'a.yaml'), GOOD_INDEX);
    const url = pathToFileURL(join(dir, 'idx', 'a.yaml')).href;
    expect((await cli(['index', 'add', 'viafile', url])).code).toBe(0);
    const rel = await runCli(['index', 'add', 'viapath', 'idx/a.yaml'], { env, cwd: dir });
    expect(rel.code, rel.stderr).toBe(0);
    expect(rel.stderr).not.toContain('plain http');
    const json = JSON.parse((await cli(['index', 'list', '-o', 'json'])).stdout);
    expect(json.map((i: { name: string; url: string; entries: number }) => [i.name, i.url, i.entries])).toEqual([
      ['viafile', url, 2],
      ['viapath', join(dir, 'idx', 'a.yaml'), 2],
    ]);
  });

  it('a private index: basic auth from --password-stdin, stored 0600 apart from the config, never printed', async () => {
    const url = `${authServer.base}/private.yaml`;
    const denied = await cli(['index', 'add', 'priv', url]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain(`error: index "priv": ${url} answered 401 Unauthorized\n`);
    expect(denied.stderr).toContain(`hint: this index needs credentials: diginfractl index add priv ${url} --username USER --password-stdin --force\n`);
    expect(await config()).toBe('indexes: []\n');
    expect(await cacheFiles()).toEqual({});

    const r = await cli(['index', 'add', 'priv', url, '--username', 'alice', '--password-stdin'], 'hunter2-secret\n');
    expect(r.code, r.stderr).toBe(0);
    const credsPath = join(dirname(env.DIGINFRACTL_CONFIG!), 'index-credentials.json');
    expect((await stat(credsPath)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(credsPath, 'utf8'))).toEqual({ indexes: { priv: { username: 'alice', password: 'hunter2-secret' } } });
    expect(await config()).not.toContain('hunter2');

    const update = await cli(['index', 'update', '--log-level', 'debug']);
    expect(update.code, update.stderr).toBe(0);
    expect(update.stdout).toMatch(/^priv\s+unchanged\s+2$/m);
    const list = await cli(['index', 'list', '-o', 'json']);
    const show = await cli(['config', 'show']);
    for (const out of [r, update, list, show]) expect(out.stdout + out.stderr).not.toContain('hunter2');

    const removed = await cli(['index', 'remove', 'priv']);
    expect(removed.code).toBe(0);
    expect(JSON.parse(await readFile(credsPath, 'utf8'))).toEqual({ indexes: {} });
  });

  it('credentials that cannot be saved: the index is not added and its cache files are not left half made', async () => {
    const credsPath = join(dirname(env.DIGINFRACTL_CONFIG!), 'index-credentials.json');
    await mkdir(join(credsPath, 'in-the-way'), { recursive: true });
    const r = await cli(['index', 'add', 'priv', `${authServer.base}/private.yaml`, '--username', 'alice', '--password-stdin'], 'hunter2-secret\n');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: index credentials ${credsPath}: cannot read`);
    expect(r.stderr).not.toContain('hunter2');
    expect(await config()).toBe('indexes: []\n');
    expect(await cacheFiles()).toEqual({});
  });

  it('refuses an existing name unless --force, which replaces it in place', async () => {
    await writeFile(env.DIGINFRACTL_CONFIG!, '# keep me\nindexes:\n  - name: first\n    url: /nowhere/a.yaml\n  - name: corp\n    url: /nowhere/b.yaml\nfollow:\n  every: 1h # hourly\n');
    const before = await config();
    const r = await cli(['index', 'add', 'corp', `${server.base}/index.yaml`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error: index "corp" already exists (/nowhere/b.yaml)\nhint: add --force to replace it, or run "diginfractl index remove corp" first\n');
    expect(await config()).toBe(before);
    const forced = await cli(['index', 'add', 'corp', `${server.base}/index.yaml`, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toContain('index "corp" replaced: 2 entries');
    const after = await config();
    expect(after).toMatch(new RegExp(`^# keep me\\nindexes:\\n  - name: first\\n    url: /nowhere/a.yaml\\n  - name: corp\\n    url: ${server.base}/index.yaml\\n    added: \\S+\\nfollow:\\n  every: 1h # hourly\\n$`));
  });

  it('checks its arguments before doing anything', async () => {
    const mark = server.requests.length;
    const cases: [string[], string, number][] = [
      [['index', 'add', 'bad/name', '/x'], 'error: index name "bad/name" must start with a letter or digit', 2],
      [['index', 'add', 'x', 'ftp://host/i.yaml'], 'error: index URL "ftp://host/i.yaml": is not an https://, http://, gs://, s3:// or file:// URL, nor a local path', 2],
      [['index', 'add', 'x', 'https://u:p@host/i.yaml'], 'error: index URL must not hold credentials', 2],
      [['index', 'add', 'x', `${server.base}/index.yaml`, '--username', 'u'], 'error: --username needs --password-stdin', 2],
      [['index', 'add', 'x', `${server.base}/index.yaml`, '--password-stdin'], 'error: --password-stdin needs --username', 2],
      [['index', 'add', 'x', '/some/file.yaml', '--username', 'u', '--password-stdin'], 'error: credentials only apply to http:// and https:// indexes', 2],
    ];
    for (const [args, text, code] of cases) {
      const r = await cli(args, 'pw\n');
      expect(r.code, args.join(' ')).toBe(code);
      expect(r.stderr).toContain(text);
    }
    expect(server.requests.slice(mark)).toHaveLength(0);
    expect(await config()).toBe('indexes: []\n');
  });
});

describe('bad indexes are refused with a clear error, and nothing changes', () => {
  const big = (res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/yaml' });
    let sent = 0;
    let closed = false;
    res.on('close', () => (closed = true));
    const chunk = Buffer.from('# padding padding padding padding padding padding padding padding\n'.repeat(1024));
    const pump = () => {
      while (!closed && sent < 64 * 1024 * 1024) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  };
  const cases: [string, (res: ServerResponse) => void, string][] = [
    ['404', (res) => res.writeHead(404).end('no'), 'answered 404 Not Found'],
    ['401', (res) => res.writeHead(401).end('no'), 'answered 401 Unauthorized'],
    ['an HTML page', (res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>login</body></html>'), 'returned an HTML page (content-type text/html), not a YAML index'],
    ['a YAML map', (res) => res.writeHead(200).end('apiVersion: v1\nentries: {}\n'), 'expected a YAML list of artifact entries, got a map (keys: apiVersion, entries)'],
    ['a body over 10 MB', big, 'is larger than 10485760 bytes (10 MiB); refusing to read it'],
    [
      // Past the cache writer's buffer: the cache files being written are on disk when the bad entry comes.
      'a bad entry after 3000 good ones',
      (res) => res.writeHead(200).end(`${Array.from({ length: 3000 }, (_, i) => `- name: g${i}\n  type: plugin\n  registry: ghcr.io\n  repository: acme/g${i}\n  description: entry ${i}\n  keywords: [a]\n`).join('')}- name: last\n`),
      'index "corp": entry 3001 ("last"): missing "type", "registry", "repository", "description", "keywords"',
    ],
    [
      'bad entries',
      (res) => res.writeHead(200).end(`${GOOD_INDEX}- name: nokeywords\n  type: plugin\n  registry: ghcr.io\n  repository: a/b\n  description: d\n- name: k8saudit\n  type: plugin\n`),
      'index "corp": entry 3 ("nokeywords"): missing "keywords"\nindex "corp": entry 4 ("k8saudit"): missing "registry", "repository", "description", "keywords"; name "k8saudit" is already used by entry 1',
    ],
  ];

  it.each(cases)('index add: %s', async (_label, answer, text) => {
    special['/bad.yaml'] = answer;
    const r = await cli(['index', 'add', 'corp', `${server.base}/bad.yaml`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: index "corp": `);
    expect(r.stderr).toContain(text);
    expect(await config()).toBe('indexes: []\n');
    expect(await cacheFiles()).toEqual({});
  });

  it.each(cases)('index update: %s (the previous copy stays in use)', async (_label, answer, text) => {
    delete special['/flaky.yaml'];
    bodies['/flaky.yaml'] = GOOD_INDEX;
    expect((await cli(['index', 'add', 'corp', `${server.base}/flaky.yaml`])).code).toBe(0);
    const cfg = await config();
    const before = await cacheFiles();
    special['/flaky.yaml'] = answer;
    const r = await cli(['index', 'update', 'corp']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^corp\s+failed\s+-$/m);
    expect(r.stderr).toContain(text);
    expect(await config()).toBe(cfg);
    expect(await cacheFiles()).toEqual(before);
    const search = await cli(['artifact', 'search', 'k8saudit-rules']);
    expect(search.code).toBe(0);
    expect(search.stdout).toMatch(/^corp\s+k8saudit-rules\s+rulesfile\s+ghcr\.io\s+diginfra\/plugins\/ruleset\/k8saudit\s+Rules for Kubernetes audit events$/m);
  });

  it('an unreachable index', async () => {
    const url = `http://127.0.0.1:${await deadPort()}/index.yaml`;
    const r = await cli(['index', 'add', 'corp', url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`error: index "corp": cannot reach ${url.replace(/\./g, '\\.')}: .*ECONNREFUSED`));
    expect(await config()).toBe('indexes: []\n');
    expect(await cacheFiles()).toEqual({});
  });
});

describe('index update', () => {
  it('an unchanged index costs one conditional request answered 304', async () => {
    expect((await cli(['index', 'add', 'corp', `${server.base}/index.yaml`])).code).toBe(0);
    const mark = server.requests.length;
    const before = await cacheFiles();
    const r = await cli(['index', 'update']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^NAME\s+STATUS\s+ENTRIES\ncorp\s+unchanged\s+2\n$/);
    const seen = server.requests.slice(mark);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['if-none-match']).toBe(JSON.parse(before['corp.json']!).etag);
    const after = await cacheFiles();
    expect(after['corp.yaml']).toBe(before['corp.yaml']);
    expect(JSON.parse(after['corp.json']!).fetchedAt).toBe(JSON.parse(before['corp.json']!).fetchedAt);

    bodies['/index.yaml'] = GOOD_INDEX.split('- name: k8saudit-rules')[0]!;
    const changed = await cli(['index', 'update', 'corp', '-o', 'json']);
    expect(changed.code).toBe(0);
    expect(JSON.parse(changed.stdout)).toEqual([{ name: 'corp', status: 'updated', entries: 1 }]);
  });

  it('updates every index, reports the ones that fail, and names unknown ones before doing anything', async () => {
    bodies['/two.yaml'] = GOOD_INDEX;
    expect((await cli(['index', 'add', 'one', `${server.base}/index.yaml`])).code).toBe(0);
    expect((await cli(['index', 'add', 'two', `${server.base}/two.yaml`])).code).toBe(0);
    const unknown = await cli(['index', 'update', 'one', 'nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('error: index "nope" is not configured (configured: one, two)');
    delete bodies['/two.yaml'];
    const r = await cli(['index', 'update']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^one\s+unchanged\s+2$/m);
    expect(r.stdout).toMatch(/^two\s+failed\s+-$/m);
    expect(r.stderr).toContain(`error: 1 of 2 indexes failed to update; their previous cached copies stay in use:\nindex "two": ${server.base}/two.yaml answered 404 Not Found\n`);
  });
});

describe('index remove', () => {
  it('removes indexes with their cached copies; an unknown name changes nothing', async () => {
    bodies['/two.yaml'] = GOOD_INDEX;
    expect((await cli(['index', 'add', 'one', `${server.base}/index.yaml`])).code).toBe(0);
    expect((await cli(['index', 'add', 'two', `${server.base}/two.yaml`])).code).toBe(0);
    const cfg = await config();
    const cache = await cacheFiles();
    const bad = await cli(['index', 'remove', 'one', 'nope', 'zilch']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('error: indexes "nope", "zilch" are not configured (configured: one, two)\nhint: run "diginfractl index list"');
    expect(await config()).toBe(cfg);
    expect(await cacheFiles()).toEqual(cache);

    const r = await cli(['index', 'remove', 'one']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('index "one" removed\n');
    expect(await config()).not.toContain('name: one');
    expect(Object.keys(await cacheFiles()).sort()).toEqual(['two.entries.json', 'two.json', 'two.search.jsonl', 'two.yaml']);
    expect((await cli(['index', 'remove', 'two'])).code).toBe(0);
    expect(await config()).toBe('indexes: []\n');
  });

  it('an index from DIGINFRACTL_INDEXES is listed, and removing it says where it comes from', async () => {
    const e = { ...env, DIGINFRACTL_INDEXES: `fromenv=${server.base}/index.yaml` };
    const list = await runCli(['index', 'list'], { env: e });
    expect(list.stdout).toMatch(/^fromenv\s+http:\/\/127\.0\.0\.1:\d+\/index\.yaml\s+-\s+never\s+-$/m);
    expect((await runCli(['index', 'update'], { env: e })).stdout).toMatch(/^fromenv\s+updated\s+2$/m);
    const r = await runCli(['index', 'remove', 'fromenv'], { env: e });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: index "fromenv" comes from DIGINFRACTL_INDEXES, not from ${env.DIGINFRACTL_CONFIG}\nhint: change or unset the DIGINFRACTL_INDEXES environment variable`);
    expect(await config()).toBe('indexes: []\n');
  });

  it('removing the default index from a missing config writes an empty list', async () => {
    await writeFile(env.DIGINFRACTL_CONFIG!, '');
    expect((await cli(['index', 'list'])).stdout).toMatch(/^diginfra\s+https:\/\/diginfra\.github\.io\/diginfractl\/index\.yaml\s+-\s+never\s+-$/m);
    expect((await cli(['index', 'remove', 'diginfra'])).code).toBe(0);
    expect(await config()).toBe('indexes: []\n');
  });
});
