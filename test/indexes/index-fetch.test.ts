import { mkdtemp, readFile, readdir, writeFile, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fetchIndex } from '../../src/indexes/fetch.js';
import { refreshIndex } from '../../src/indexes/refresh.js';
import { loadIndexes, loadSearchRows } from '../../src/indexes/load.js';
import { cachePaths, readCacheMeta } from '../../src/indexes/store.js';
import { updateIndexCredentials } from '../../src/indexes/credentials.js';
import { defaultConfig, type DiginfraConfig } from '../../src/config/types.js';
import { deadPort } from '../helpers/net.js';
import { GOOD_INDEX, indexHandler, serve, type Served } from './server.js';

let dir: string;
const servers: Served[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'diginfractl-index-'));
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(handler: Parameters<typeof serve>[0]): Promise<Served> {
  const s = await serve(handler);
  servers.push(s);
  return s;
}

async function snapshot(name: string): Promise<Record<string, string>> {
  const p = cachePaths(dir, name);
  const out: Record<string, string> = {};
  for (const [k, f] of Object.entries(p)) out[k] = await readFile(f, 'utf8').catch(() => '<missing>');
  return out;
}

describe('refreshIndex over HTTP', () => {
  it('an unchanged index costs one 304: the server sees If-None-Match and the copy stays', async () => {
    const s = await start(indexHandler({ '/index.yaml': GOOD_INDEX }));
    const ix = { name: 'corp', url: `${s.base}/index.yaml` };
    let t = 0;
    const now = () => new Date(Date.UTC(2025, 0, 1, 0, 0, t++));
    const first = await refreshIndex(ix, { cacheDir: dir, now });
    expect(first.status).toBe('fetched');
    expect(first.meta).toMatchObject({ entries: 2, fetchedAt: '2025-01-01T00:00:00.000Z' });
    const before = await snapshot('corp');
    expect(before.yaml).toBe(GOOD_INDEX);

    const second = await refreshIndex(ix, { cacheDir: dir, now });
    expect(second.status).toBe('unchanged');
    expect(s.requests).toHaveLength(2);
    expect(s.requests[0]!.headers['if-none-match']).toBeUndefined();
    expect(s.requests[1]!.headers['if-none-match']).toBe(first.meta.etag);
    expect(second.meta).toMatchObject({ fetchedAt: '2025-01-01T00:00:00.000Z', checkedAt: '2025-01-01T00:00:01.000Z' });
    const after = await snapshot('corp');
    expect(after.yaml).toBe(before.yaml);
    expect(after.entries).toBe(before.entries);
  });

  it('uses If-Modified-Since when the server gives Last-Modified only', async () => {
    const s = await start(indexHandler({ '/i.yaml': GOOD_INDEX }, { etag: false, lastModified: true }));
    const ix = { name: 'lm', url: `${s.base}/i.yaml` };
    await refreshIndex(ix, { cacheDir: dir });
    expect((await refreshIndex(ix, { cacheDir: dir })).status).toBe('unchanged');
    expect(s.requests[1]!.headers['if-modified-since']).toBe('Wed, 01 Jan 2025 00:00:00 GMT');
  });

  it('a changed index replaces the copy', async () => {
    const bodies = { '/i.yaml': GOOD_INDEX };
    const s = await start(indexHandler(bodies));
    const ix = { name: 'corp', url: `${s.base}/i.yaml` };
    await refreshIndex(ix, { cacheDir: dir });
    bodies['/i.yaml'] = GOOD_INDEX.split('- name: k8saudit-rules')[0]!;
    const r = await refreshIndex(ix, { cacheDir: dir });
    expect(r.status).toBe('fetched');
    expect(r.meta.entries).toBe(1);
    expect((await snapshot('corp')).yaml).toBe(bodies['/i.yaml']);
  });

  it('sends basic auth to a private index; refuses clearly without it', async () => {
    const s = await start(indexHandler({ '/i.yaml': GOOD_INDEX }, { auth: { user: 'alice', password: 'pa:ss' } }));
    const ix = { name: 'private', url: `${s.base}/i.yaml` };
    await expect(refreshIndex(ix, { cacheDir: dir })).rejects.toMatchObject({
      code: 'AUTH_REQUIRED',
      message: `index "private": ${s.base}/i.yaml answered 401 Unauthorized`,
      hint: `this index needs credentials: diginfractl index add private ${s.base}/i.yaml --username USER --password-stdin --force`,
    });
    await expect(refreshIndex(ix, { cacheDir: dir, credentials: { username: 'alice', password: 'wrong' } })).rejects.toThrow('answered 401 Unauthorized to the stored credentials');
    const ok = await refreshIndex(ix, { cacheDir: dir, credentials: { username: 'alice', password: 'pa:ss' } });
    expect(ok.status).toBe('fetched');
    expect(s.requests.at(-1)!.headers.authorization).toBe(`Basic ${Buffer.from('alice:pa:ss').toString('base64')}`);
  });

  it('follows redirects, and never sends the credentials to another origin', async () => {
    const other = await start(indexHandler({ '/moved.yaml': GOOD_INDEX }));
    const s = await start((req, res) => {
      if (req.url === '/same') res.writeHead(302, { location: '/away' }).end();
      else res.writeHead(301, { location: `${other.base}/moved.yaml` }).end();
    });
    const r = await refreshIndex({ name: 'r', url: `${s.base}/same` }, { cacheDir: dir, credentials: { username: 'u', password: 'secret' } });
    expect(r.status).toBe('fetched');
    expect(s.requests.map((q) => [q.path, q.headers.authorization !== undefined])).toEqual([
      ['/same', true],
      ['/away', true],
    ]);
    expect(other.requests[0]!.headers.authorization).toBeUndefined();
  });

  it.each([
    ['404', (res: import('node:http').ServerResponse) => res.writeHead(404).end(), 'NOT_FOUND', 'answered 404 Not Found'],
    ['500', (res: import('node:http').ServerResponse) => res.writeHead(500).end(), 'INDEX_FETCH_FAILED', 'answered 500 Internal Server Error'],
    ['HTML', (res: import('node:http').ServerResponse) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<html></html>'), 'INDEX_INVALID', 'returned an HTML page (content-type text/html), not a YAML index'],
    ['HTML as text/plain', (res: import('node:http').ServerResponse) => res.writeHead(200, { 'content-type': 'text/plain' }).end('<!doctype html><html></html>'), 'INDEX_INVALID', 'got an HTML/XML page, not a YAML index'],
    ['a map', (res: import('node:http').ServerResponse) => res.writeHead(200).end('entries:\n  - name: x\n'), 'INDEX_INVALID', 'expected a YAML list of artifact entries, got a map (keys: entries)'],
    ['a bad entry', (res: import('node:http').ServerResponse) => res.writeHead(200).end('- name: x\n  type: plugin\n'), 'INDEX_INVALID', 'entry 1 ("x"): missing "registry", "repository", "description", "keywords"'],
  ])('%s: a clear error and the previous copy stays', async (_label, answer, code, text) => {
    let broken = false;
    const s = await start((req, res) => (broken ? answer(res) : indexHandler({ '/i.yaml': GOOD_INDEX })(req, res)));
    const ix = { name: 'corp', url: `${s.base}/i.yaml` };
    await refreshIndex(ix, { cacheDir: dir });
    const before = await snapshot('corp');
    broken = true;
    const err = await refreshIndex(ix, { cacheDir: dir }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code });
    expect((err as Error).message).toContain(`index "corp": `);
    expect((err as Error).message).toContain(text);
    expect(await snapshot('corp')).toEqual(before);
    expect((await readdir(join(dir, 'indexes'))).sort()).toEqual(['corp.entries.json', 'corp.json', 'corp.search.jsonl', 'corp.yaml']);
  });

  it('an unreachable index is a NETWORK error naming the URL', async () => {
    const url = `http://127.0.0.1:${await deadPort()}/i.yaml`;
    await expect(refreshIndex({ name: 'gone', url }, { cacheDir: dir })).rejects.toMatchObject({
      code: 'NETWORK',
      message: expect.stringMatching(new RegExp(`^index "gone": cannot reach ${url.replace(/[.?]/g, '\\$&')}: .*ECONNREFUSED`)),
    });
  });

  it('stops reading a body at the size limit', async () => {
    let sent = 0;
    let closed = false;
    const s = await start((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/yaml' });
      res.on('close', () => (closed = true));
      const chunk = Buffer.alloc(16 * 1024, 'a');
      const pump = () => {
        while (!closed && sent < 100 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    await expect(fetchIndex({ name: 'big', url: `${s.base}/i.yaml`, maxBytes: 256 * 1024 })).rejects.toMatchObject({
      code: 'INDEX_INVALID',
      message: `index "big": ${s.base}/i.yaml is larger than 262144 bytes; refusing to read it`,
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(closed).toBe(true);
    expect(sent).toBeLessThan(20 * 1024 * 1024);
  });

  it('refuses a declared Content-Length over the limit without reading', async () => {
    const s = await start((_req, res) => res.writeHead(200, { 'content-length': String(11 * 1024 * 1024) }).end());
    await expect(fetchIndex({ name: 'big', url: `${s.base}/i.yaml` })).rejects.toThrow('is larger than 10485760 bytes (10 MiB)');
  });
});

describe('file indexes', () => {
  it('reads file:// URLs and paths; an unchanged file is not read again', async () => {
    const file = join(dir, 'idx.yaml');
    await writeFile(file, GOOD_INDEX);
    const first = await refreshIndex({ name: 'f', url: `file://${file}` }, { cacheDir: join(dir, 'c') });
    expect(first).toMatchObject({ status: 'fetched', meta: { entries: 2 } });
    expect((await refreshIndex({ name: 'f', url: `file://${file}` }, { cacheDir: join(dir, 'c') })).status).toBe('unchanged');
    await writeFile(file, GOOD_INDEX.replace('Rules for', 'More rules for'));
    await utimes(file, new Date(), new Date(Date.now() + 5000));
    expect((await refreshIndex({ name: 'f', url: `file://${file}` }, { cacheDir: join(dir, 'c') })).status).toBe('fetched');
    expect((await refreshIndex({ name: 'p', url: file }, { cacheDir: join(dir, 'c') })).status).toBe('fetched');
  });

  it('a missing or oversized file is refused', async () => {
    await expect(fetchIndex({ name: 'f', url: join(dir, 'nope.yaml') })).rejects.toMatchObject({ code: 'NOT_FOUND', message: `index "f": ${join(dir, 'nope.yaml')} does not exist` });
    await writeFile(join(dir, 'big.yaml'), 'x'.repeat(2048));
    await expect(fetchIndex({ name: 'f', url: join(dir, 'big.yaml'), maxBytes: 1024 })).rejects.toThrow('is larger than 1024 bytes');
    await expect(fetchIndex({ name: 'f', url: dir })).rejects.toThrow('is not a regular file');
  });
});

describe('loadIndexes', () => {
  function config(indexes: { name: string; url: string }[]): DiginfraConfig {
    return { ...defaultConfig(), indexes };
  }

  it('reads cached copies in configured order, fetching (with credentials) an index never fetched, once', async () => {
    const s = await start(indexHandler({ '/i.yaml': GOOD_INDEX }, { auth: { user: 'u', password: 'p' } }));
    const file = join(dir, 'local.yaml');
    await writeFile(file, GOOD_INDEX.replace(/ghcr\.io/g, 'registry.local'));
    const credentialsPath = join(dir, 'index-credentials.json');
    await updateIndexCredentials(credentialsPath, { priv: { username: 'u', password: 'p' } });
    const cfg = config([
      { name: 'local', url: file },
      { name: 'priv', url: `${s.base}/i.yaml` },
    ]);
    const fetched: string[] = [];
    const first = await loadIndexes(cfg, join(dir, 'cache'), { credentialsPath, onFetch: (n) => fetched.push(n) });
    expect(first.map((i) => [i.name, i.entries.length])).toEqual([
      ['local', 2],
      ['priv', 2],
    ]);
    expect(fetched).toEqual(['local', 'priv']);
    const again = await loadIndexes(cfg, join(dir, 'cache'), { credentialsPath, onFetch: (n) => fetched.push(n) });
    expect(again.map((i) => i.entries[0]!.registry)).toEqual(['registry.local', 'ghcr.io']);
    expect(fetched).toEqual(['local', 'priv']);
    expect(s.requests).toHaveLength(1);
    const rows = await loadSearchRows(cfg, join(dir, 'cache'), { credentialsPath });
    expect(rows.map((r) => r.index)).toEqual(['local', 'priv']);
    expect(await readCacheMeta(join(dir, 'cache'), 'priv')).toMatchObject({ url: `${s.base}/i.yaml`, entries: 2 });
  });

  it('skips an index that cannot be loaded when told to, and throws otherwise', async () => {
    const cfg = config([
      { name: 'gone', url: join(dir, 'nope.yaml') },
      { name: 'ok', url: join(dir, 'ok.yaml') },
    ]);
    await writeFile(join(dir, 'ok.yaml'), GOOD_INDEX);
    await expect(loadIndexes(cfg, join(dir, 'cache'), { credentialsPath: join(dir, 'none.json') })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const errors: string[] = [];
    const got = await loadIndexes(cfg, join(dir, 'cache'), { credentialsPath: join(dir, 'none.json'), onError: (n) => errors.push(n) });
    expect(got.map((i) => i.name)).toEqual(['ok']);
    expect(errors).toEqual(['gone']);
    await expect(loadIndexes(cfg, join(dir, 'cache'), { only: ['ok', 'nope'] })).rejects.toMatchObject({
      code: 'INDEX_NOT_FOUND',
      message: 'index "nope" is not configured (configured: gone, ok)',
    });
  });

  it('rebuilds derived files that do not match the metadata', async () => {
    const file = join(dir, 'ok.yaml');
    await writeFile(file, GOOD_INDEX);
    const cfg = config([{ name: 'ok', url: file }]);
    await loadIndexes(cfg, join(dir, 'cache'));
    const p = cachePaths(join(dir, 'cache'), 'ok');
    await writeFile(p.entries, '{"sha256":"stale","entries":[]}');
    await writeFile(p.search, '{"sha256":"stale"}\n');
    expect((await loadIndexes(cfg, join(dir, 'cache')))[0]!.entries).toHaveLength(2);
    expect((await loadSearchRows(cfg, join(dir, 'cache')))[0]!.rows.toString().trim().split('\n')).toHaveLength(2);
  });
});
