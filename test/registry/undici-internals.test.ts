/**
 * src/registry/undici.ts loads undici's Agent, EnvHttpProxyAgent and request API from undici's own
 * modules instead of its index (see there why). Those paths are not undici's documented API: this
 * fails, naming what moved, when an undici upgrade breaks them, and checks that they are the very
 * classes undici's index exports (so nock and `instanceof` see one undici).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import * as undici from 'undici';
import { Agent, EnvHttpProxyAgent, request } from '../../src/registry/undici.js';

const require = createRequire(import.meta.url);

describe('undici internals used in place of its index', () => {
  it('are the classes undici exports', () => {
    expect(Agent).toBe(undici.Agent);
    expect(EnvHttpProxyAgent).toBe(undici.EnvHttpProxyAgent);
    expect(require('undici/lib/api/index.js').request).toBeTypeOf('function');
  });

  it('undici stays on the minor release whose layout this relies on', () => {
    const pkg = require('../../package.json') as { dependencies: Record<string, string> };
    expect(pkg.dependencies.undici).toMatch(/^~8\.13\./);
  });

  it('request() sends method, path, query and headers through the given dispatcher and reads the body', async () => {
    const seen: { method?: string; url?: string; header?: string }[] = [];
    const server = createServer((req, res) => {
      seen.push({ method: req.method, url: req.url, header: req.headers['x-test'] as string });
      res.setHeader('content-type', 'text/plain');
      res.end(req.method === 'HEAD' ? undefined : 'hello');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const dispatcher = new Agent();
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const res = await request(`${base}/v2/x?n=1`, { dispatcher, headers: { 'x-test': 'yes' } });
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('hello');
      const head = await request(new URL(`${base}/v2/`), { dispatcher, method: 'HEAD' });
      await head.body.dump();
      expect(head.statusCode).toBe(200);
      expect(seen).toEqual([
        { method: 'GET', url: '/v2/x?n=1', header: 'yes' },
        { method: 'HEAD', url: '/v2/', header: undefined },
      ]);
    } finally {
      await dispatcher.close();
      server.close();
    }
  });
});
