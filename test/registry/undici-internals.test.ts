/**
 * src/registry/undici.ts loads undici's Agent, EnvHttpProxyAgent and request API from undici's own
 * modules instead of its index (see there why). Those paths are not undici's documented API: this
 * fails, naming what moved, when an undici upgrade breaks them, and checks that they are the very
 * classes undici's index exports (so nock and `instanceof` see one undici). This test process loads
 * undici's index too (it patches Dispatcher.prototype); the bin never does, so one test runs the
 * module in a node process of its own, where nothing of undici's index is there to lean on.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as undici from 'undici';
import { Agent, EnvHttpProxyAgent, request } from '../../src/registry/undici.js';
import { NODE, ROOT } from '../helpers/cli.js';

const require = createRequire(import.meta.url);

describe('undici internals used in place of its index', () => {
  it('are the classes undici exports', () => {
    expect(Agent).toBe(undici.Agent);
    expect(EnvHttpProxyAgent).toBe(undici.EnvHttpProxyAgent);
    expect(require('undici/lib/api/index.js').request).toBeTypeOf('function');
    // The API functions undici.ts calls with a dispatcher, and the pool its proxies use.
    expect(require('undici/lib/api/api-request.js')).toBe(require('undici/lib/api/index.js').request);
    expect(require('undici/lib/api/api-connect.js')).toBe(require('undici/lib/api/index.js').connect);
    expect(require('undici/lib/dispatcher/pool.js')).toBe(undici.Pool);
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

  it('without undici\'s index: request() works, a proxy tunnels with CONNECT, and no undici prototype gained a method', async () => {
    // A node process of its own that loads only src/registry/undici.ts (Node strips its types).
    const script = `
      import { createServer } from 'node:http';
      import { connect } from 'node:net';
      const { Agent, envHttpProxyAgent, request } = await import(${JSON.stringify(join(ROOT, 'src/registry/undici.ts'))});
      const listen = (s) => new Promise((r) => s.listen(0, '127.0.0.1', () => r(s.address().port)));
      const target = createServer((req, res) => res.end('hello ' + req.url));
      const tunnels = [];
      const proxy = createServer((req, res) => res.writeHead(405).end());
      proxy.on('connect', (req, socket, head) => {
        tunnels.push(req.url);
        const [host, port] = req.url.split(':');
        const up = connect(Number(port), host, () => {
          socket.write('HTTP/1.1 200 Connection Established\\r\\n\\r\\n');
          up.write(head);
          up.pipe(socket).pipe(up);
        });
        up.on('error', () => socket.destroy());
        socket.on('error', () => up.destroy());
      });
      const base = 'http://127.0.0.1:' + (await listen(target));
      const proxyUrl = 'http://127.0.0.1:' + (await listen(proxy));
      const agent = new Agent();
      const direct = await request(base + '/direct', { dispatcher: agent });
      // proxyTunnel: the plain-HTTP target goes through a CONNECT tunnel, as every HTTPS target does.
      const proxied = envHttpProxyAgent({ httpProxy: proxyUrl, proxyTunnel: true });
      const tunneled = await request(base + '/tunneled?x=1', { dispatcher: proxied });
      console.log(JSON.stringify({
        direct: [direct.statusCode, await direct.body.text()],
        tunneled: [tunneled.statusCode, await tunneled.body.text()],
        tunnels,
        patched: ['request', 'connect', 'stream', 'pipeline', 'upgrade'].filter((m) => m in agent),
      }));
      await agent.close();
      await proxied.close();
      proxy.close();
      target.close();
    `;
    const out = await new Promise<string>((resolve, reject) =>
      execFile(NODE, ['--input-type=module', '-e', script], { cwd: ROOT }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))),
    );
    const seen = JSON.parse(out) as { direct: [number, string]; tunneled: [number, string]; tunnels: string[]; patched: string[] };
    expect(seen.direct).toEqual([200, 'hello /direct']);
    expect(seen.tunneled).toEqual([200, 'hello /tunneled?x=1']);
    expect(seen.tunnels).toHaveLength(1);
    expect(seen.tunnels[0]).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(seen.patched).toEqual([]);
  });
});
