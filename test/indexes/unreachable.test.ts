/**
 * Unreachable indexes in loadIndexes, against local servers: a first fetch that fails is remembered
 * in the cache dir until it is due again, an index on disk never is, and a host whose connection never
 * completes costs the short first-use connect timeout, not the whole request timeout.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultConfig, type DiginfraConfig } from '../../src/config/types.js';
import { FIRST_USE_CONNECT_TIMEOUT_MS, loadIndexes } from '../../src/indexes/load.js';
import { UNREACHABLE_RETRY_MS } from '../../src/indexes/unreachable.js';
import { tempDir } from '../helpers/fs.js';
import { freePort, listenOnLoopback } from '../helpers/net.js';
import { GOOD_INDEX, indexHandler, serve } from './server.js';

const open: { server: Server; sockets: Socket[] }[] = [];
afterAll(() => {
  for (const o of open) {
    for (const s of o.sockets) s.destroy();
    o.server.close();
  }
});

function config(indexes: { name: string; url: string }[]): DiginfraConfig {
  return { ...defaultConfig(), indexes };
}

describe('unreachable indexes', () => {
  it('a failed first fetch is remembered until it is due again; then the index is asked once more', async () => {
    const cache = await tempDir('unreachable-');
    const port = await freePort();
    const cfg = config([{ name: 'far', url: `http://127.0.0.1:${port}/index.yaml` }]);
    let now = Date.parse('2025-06-01T10:00:00Z');
    const skipped: string[] = [];
    const opts = { credentialsPath: join(cache, 'none.json'), keepSkipped: true, now: () => now, onError: (_n: string, err: unknown) => skipped.push(String((err as Error).message)) };
    const first = await loadIndexes(cfg, cache, opts);
    expect(first).toEqual([{ name: 'far', url: cfg.indexes[0]!.url, entries: [], skipped: { message: expect.stringContaining('ECONNREFUSED'), code: 'NETWORK' } }]);
    expect(await readdir(join(cache, 'indexes'))).toEqual(['far.unreachable.json']);

    // Back at the same address: not asked while the failure holds.
    const server = await serve(indexHandler({ '/index.yaml': GOOD_INDEX }), undefined, port);
    try {
      now += UNREACHABLE_RETRY_MS - 1000;
      const second = await loadIndexes(cfg, cache, opts);
      expect(second[0]!.skipped?.message).toMatch(/ECONNREFUSED.*\(at 2025-06-01T10:00:00Z\)$/);
      expect(second[0]!.skipped?.code).toBe('NETWORK');
      expect(server.requests).toHaveLength(0);
      now += 2000;
      const third = await loadIndexes(cfg, cache, opts);
      expect(third[0]!.entries).toHaveLength(2);
      expect(server.requests).toHaveLength(1);
      expect((await readdir(join(cache, 'indexes'))).sort()).toEqual(['far.entries.json', 'far.json', 'far.search.jsonl', 'far.yaml']);
    } finally {
      await server.close();
    }
    expect(skipped).toHaveLength(2);
  });

  it('an index on disk is not remembered: the file counts as soon as it exists', async () => {
    const cache = await tempDir('unreachable-');
    const dir = await tempDir('unreachable-file-');
    const cfg = config([{ name: 'local', url: join(dir, 'index.yaml') }]);
    const opts = { credentialsPath: join(cache, 'none.json'), keepSkipped: true, onError: () => undefined };
    expect((await loadIndexes(cfg, cache, opts))[0]!.skipped?.code).toBe('NOT_FOUND');
    await writeFile(join(dir, 'index.yaml'), GOOD_INDEX);
    expect((await loadIndexes(cfg, cache, opts))[0]!.entries).toHaveLength(2);
  });

  it('a host that never completes the connection costs the first-use connect timeout, then nothing', async () => {
    // Accepts TCP and never answers the TLS handshake: what a host behind a dropping firewall costs.
    const sockets: Socket[] = [];
    const server = createServer((s) => void sockets.push(s));
    open.push({ server, sockets });
    const port = await listenOnLoopback(server);
    const cache = await tempDir('unreachable-');
    const cfg = config([{ name: 'slow', url: `https://127.0.0.1:${port}/index.yaml` }]);
    const opts = { credentialsPath: join(cache, 'none.json'), keepSkipped: true, onError: () => undefined };
    const t0 = Date.now();
    const first = await loadIndexes(cfg, cache, opts);
    const took = Date.now() - t0;
    expect(first[0]!.skipped?.code).toBe('NETWORK');
    expect(took).toBeGreaterThanOrEqual(FIRST_USE_CONNECT_TIMEOUT_MS - 500);
    expect(took).toBeLessThan(FIRST_USE_CONNECT_TIMEOUT_MS + 5_000);
    const t1 = Date.now();
    expect((await loadIndexes(cfg, cache, opts))[0]!.skipped).toBeDefined();
    expect(Date.now() - t1).toBeLessThan(500);
    expect(sockets).toHaveLength(1);
  }, 20_000);
});
