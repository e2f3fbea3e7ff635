/**
 * HTTP(S)_PROXY and NO_PROXY against the real registry, through a real CONNECT proxy on loopback.
 */
import { createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseOciReference } from '../../src/reference/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

let reg: TestRegistry;
let proxy: Server;
let proxyUrl: string;
const tunnels: string[] = [];

beforeAll(async () => {
  reg = await startRegistry();
  // Plain-HTTP targets arrive as absolute-form requests; HTTPS targets as CONNECT tunnels.
  proxy = createServer((req, res) => {
    const target = new URL(req.url ?? '');
    tunnels.push(target.host);
    const upstream = request(target, { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  proxy.on('connect', (req, clientSocket, head) => {
    tunnels.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      clientSocket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(clientSocket);
      clientSocket.pipe(upstream);
    });
    upstream.on('error', () => clientSocket.destroy());
    clientSocket.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});

afterAll(async () => {
  proxy?.closeAllConnections();
  await new Promise((resolve) => proxy?.close(resolve));
  await reg?.stop();
});

describe('proxies', () => {
  it('tunnels registry requests through HTTP_PROXY', async () => {
    tunnels.length = 0;
    const client = new RegistryClient({ hostSettings: () => ({ plainHttp: true }), env: { HTTP_PROXY: proxyUrl } });
    await client.ping(reg.host);
    await expect(client.resolve(parseOciReference(`${reg.host}/none/here:1`))).rejects.toThrow(/not found/);
    expect(tunnels).toContain(reg.host);
    await client.close();
  });

  it('goes direct for hosts in NO_PROXY', async () => {
    tunnels.length = 0;
    const client = new RegistryClient({
      hostSettings: () => ({ plainHttp: true }),
      env: { HTTP_PROXY: proxyUrl, NO_PROXY: '127.0.0.1' },
    });
    await client.ping(reg.host);
    expect(tunnels).toEqual([]);
    await client.close();
  });

  it('tunnels TLS through HTTPS_PROXY with CONNECT and still verifies the registry certificate', async () => {
    const tlsReg = await startRegistry({ tls: true });
    try {
      tunnels.length = 0;
      const trusted = new RegistryClient({ hostSettings: () => ({ caFile: tlsReg.caFile! }), env: { HTTPS_PROXY: proxyUrl } });
      await trusted.ping(tlsReg.host);
      expect(tunnels).toContain(tlsReg.host);
      await trusted.close();
      const untrusted = new RegistryClient({ env: { HTTPS_PROXY: proxyUrl }, retry: { attempts: 1 } });
      await expect(untrusted.ping(tlsReg.host)).rejects.toThrow(/cannot reach/);
      await untrusted.close();
    } finally {
      await tlsReg.stop();
    }
  });
});
