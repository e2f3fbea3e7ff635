/**
 * The engine versions URL read like a registry host: a body capped at 64 KiB, the proxy variables
 * (HTTP_PROXY / NO_PROXY) and the CA bundle `registry.caFiles` names for its host.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fileSources } from '../../src/config/layers.js';
import { defaultConfig } from '../../src/config/types.js';
import { engineVersionFrom, engineVersionSource, MAX_VERSIONS_BYTES } from '../../src/follow/engine-version.js';
import { effectiveFollow } from '../../src/follow/settings.js';
import { tempDir } from '../helpers/fs.js';
import { listenOnLoopback } from '../helpers/net.js';
import { makeTlsFiles } from '../helpers/tls.js';

const servers: Server[] = [];

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ port: number; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url} host=${req.headers.host}`);
    handler(req, res);
  });
  servers.push(server);
  return { port: await listenOnLoopback(server), seen };
}

afterAll(() => {
  for (const s of servers) s.close();
});

describe('engine versions URL', () => {
  it('a bare number N is read as 0.N.0 (as documented in docs/follow.md); other numbers are not versions', async () => {
    expect(engineVersionFrom({ engine_version: 17 })).toBe('0.17.0');
    expect(engineVersionFrom({ engine_version: 1.5 })).toBeUndefined();
    expect(engineVersionFrom({ engine_version: -1 })).toBeUndefined();
    const docs = await readFile(join(import.meta.dirname, '../../docs/follow.md'), 'utf8');
    expect(docs).toMatch(/`0\.N\.0`/);
  });

  it('refuses an answer larger than 64 KiB, with or without Content-Length, without buffering it', async () => {
    const big = JSON.stringify({ engine_version: '0.40.0', padding: 'x'.repeat(MAX_VERSIONS_BYTES) });
    const sized = await listen((_req, res) => res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(big) }).end(big));
    await expect(engineVersionSource({ url: `http://127.0.0.1:${sized.port}/versions` }).get()).rejects.toMatchObject({
      code: 'NETWORK',
      message: expect.stringContaining('more than 64 KiB'),
    });
    const chunked = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      for (let i = 0; i < big.length; i += 8192) res.write(big.slice(i, i + 8192));
      res.end();
    });
    await expect(engineVersionSource({ url: `http://127.0.0.1:${chunked.port}/versions` }).get()).rejects.toMatchObject({
      message: expect.stringContaining('more than 64 KiB'),
    });
    // Just under the limit is fine.
    const small = JSON.stringify({ engine_version: '0.40.0', padding: 'x'.repeat(MAX_VERSIONS_BYTES - 100) });
    const ok = await listen((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(small));
    expect(await engineVersionSource({ url: `http://127.0.0.1:${ok.port}/versions` }).get()).toBe('0.40.0');
  });

  it('goes through HTTP_PROXY, and not for a NO_PROXY host', async () => {
    const proxy = await listen((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"engine_version":"0.41.0"}'));
    const direct = await listen((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"engine_version":"0.42.0"}'));
    const env = { HTTP_PROXY: `http://127.0.0.1:${proxy.port}` };
    // A host that does not resolve: only the proxy can answer for it.
    const viaProxy = engineVersionSource({ url: 'http://engine.diginfra.invalid/versions', env, timeoutMs: 3_000 });
    expect(await viaProxy.get()).toBe('0.41.0');
    expect(proxy.seen).toEqual(['GET http://engine.diginfra.invalid/versions host=engine.diginfra.invalid']);
    const bypass = engineVersionSource({ url: `http://127.0.0.1:${direct.port}/versions`, env: { ...env, NO_PROXY: '127.0.0.1' } });
    expect(await bypass.get()).toBe('0.42.0');
    expect(direct.seen).toHaveLength(1);
    expect(proxy.seen).toHaveLength(1);
  });

  it('trusts the CA that registry.caFiles names for the URL host', async () => {
    const dir = await tempDir();
    const { caFile: cert, certFile, keyFile } = await makeTlsFiles(dir);
    const server = createHttpsServer({ key: await readFile(keyFile), cert: await readFile(certFile) }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"engine_version":"0.43.0"}');
    });
    servers.push(server as unknown as Server);
    const host = `127.0.0.1:${await listenOnLoopback(server)}`;
    const url = `https://${host}/versions`;

    await expect(engineVersionSource({ url }).get()).rejects.toMatchObject({ code: 'NETWORK' });

    const config = defaultConfig();
    config.follow.engineVersionsUrl = url;
    config.registry.caFiles[host] = cert;
    const { settings } = effectiveFollow({ config, sources: fileSources(new Set()) }, {}, ['ghcr.io/a/b']);
    expect(settings.engineVersionsTls).toEqual({ caFile: cert });
    expect(await engineVersionSource({ url, caFile: cert }).get()).toBe('0.43.0');

    // `*` applies too; a host listed in insecureSkipTlsVerify is not verified.
    const star = defaultConfig();
    star.follow.engineVersionsUrl = url;
    star.registry.caFiles['*'] = cert;
    expect(effectiveFollow({ config: star, sources: fileSources(new Set()) }, {}, []).settings.engineVersionsTls).toEqual({ caFile: cert });
    const insecure = defaultConfig();
    insecure.follow.engineVersionsUrl = url;
    insecure.registry.insecureSkipTlsVerify = [host];
    expect(effectiveFollow({ config: insecure, sources: fileSources(new Set()) }, {}, []).settings.engineVersionsTls).toEqual({ insecure: true });
    expect(await engineVersionSource({ url, insecure: true }).get()).toBe('0.43.0');
    await expect(engineVersionSource({ url, caFile: join(dir, 'missing.pem') }).get()).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});
