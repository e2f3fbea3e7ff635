/**
 * A manifest whose layer `size` lies about the blob (one byte more or less, zero, negative, 10^15),
 * against a real registry. Each of the three size checks refuses it with SIZE_MISMATCH: the
 * Content-Length before the body is read (the registry sends one), and, when a server streams the
 * blob without one, the running count (a blob longer than declared) and the final count (shorter).
 * Every command exits 1 with a one-line error, no stack trace, and writes nothing; the client API
 * rejects with the error and leaves no stream erroring unheard.
 */
import { access, mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { pushArtifact } from '../../src/artifact/push.js';
import { ingestBlob } from '../../src/content/index.js';
import { parseOciReference, type OciReference } from '../../src/reference/reference.js';
import { type Descriptor, type ImageManifest, OCI_MANIFEST, RegistryClient } from '../../src/registry/index.js';
import { CLI, cliEnv, runCli, type CliResult } from '../helpers/cli.js';
import { errorOf } from '../helpers/errors.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';

let reg: TestRegistry;
/** The registry behind a front that streams blobs without Content-Length. */
let chunked: { host: string; close: () => Promise<void> };
let pusher: RegistryClient;
let manifest: ImageManifest;
let layer: Descriptor;

/**
 * A plain-HTTP front for `target` that forwards every request and drops Content-Length from blob
 * answers, as a proxy streaming with chunked encoding does: the size shows only as the body flows.
 */
async function chunkedFront(target: TestRegistry): Promise<{ host: string; close: () => Promise<void> }> {
  const upstream = new URL(target.url);
  const server: Server = createServer((req, res) => {
    const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      const headers = { ...answer.headers };
      if (/\/blobs\/sha256:/.test(req.url ?? '') && req.method === 'GET') delete headers['content-length'];
      res.writeHead(answer.statusCode ?? 502, headers);
      answer.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function clientFor(): RegistryClient {
  return new RegistryClient({ hostSettings: () => ({ plainHttp: true }), retry: { attempts: 1, baseDelayMs: 5 } });
}

/** Pushes the honest manifest again with its layer's size replaced by `size`, under `tag`. */
async function pushLyingManifest(tag: string, size: number): Promise<void> {
  const lying: ImageManifest = { ...manifest, layers: manifest.layers.map((l) => ({ ...l, size })) };
  await pusher.pushManifest(parseOciReference(`${reg.host}/team/liar:${tag}`), Buffer.from(JSON.stringify(lying)), OCI_MANIFEST);
}

/** Gives an 'error' emitted late (a tick or an I/O turn after the call settled) the time to surface. */
async function settle(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await sleep(20);
}

/** One line `error: <message>` naming the layer, exit 1, nothing of a crash. */
function expectOneLineSizeError(r: CliResult, message: RegExp): void {
  expect(r.stderr).not.toMatch(/Unhandled|UND_ERR|node:events|\n\s+at /);
  expect(r.code).toBe(1);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
  expect(errors).toHaveLength(1);
  expect(errors[0]).toContain(`blob ${layer.digest}`);
  expect(errors[0]).toMatch(message);
}

function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

async function entries(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

beforeAll(async () => {
  await access(CLI).catch(() => {
    throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  });
  reg = await startRegistry();
  chunked = await chunkedFront(reg);
  pusher = clientFor();
  const rules = join(await tempDir('diginfractl-src-'), 'rules.yaml');
  await writeFile(rules, '- list: small\n  items: [a, b]\n');
  const honest = (await pushArtifact(pusher, parseOciReference(`${reg.host}/team/liar:honest`), { type: 'rulesfile', version: '1.0.0', files: [rules] })).ref;
  manifest = (await pusher.fetchManifest(honest)).json as unknown as ImageManifest;
  layer = manifest.layers[0]!;
}, 60_000);

afterAll(async () => {
  await pusher?.close();
  await chunked?.close();
  await reg?.stop();
});

const lies = [
  { name: 'one byte more', size: (real: number) => real + 1, inStream: 'short' },
  { name: 'one byte less', size: (real: number) => real - 1, inStream: 'overrun' },
  { name: 'zero', size: () => 0, inStream: 'overrun' },
  { name: 'negative', size: () => -5, inStream: 'overrun' },
  { name: '10^15 bytes', size: () => 1e15, inStream: 'short' },
] as const;

/** The message of each size check. */
const CHECKS = {
  'content-length': /is \d+ bytes, manifest says -?\d+$/,
  overrun: /is larger than its declared -?\d+ bytes$/,
  short: /is \d+ bytes, expected \d+$/,
};

describe.each(lies)('a manifest whose layer size lies ($name)', (lie) => {
  const tag = lie.name.replace(/[^a-z0-9]+/gi, '-');
  let declared: Descriptor;
  beforeAll(async () => {
    await pushLyingManifest(tag, lie.size(layer.size));
    declared = { ...layer, size: lie.size(layer.size) };
  });

  describe.each([
    { path: 'the registry (Content-Length)', front: () => reg.host, check: () => CHECKS['content-length'] },
    { path: 'a front without Content-Length (streamed count)', front: () => chunked.host, check: () => CHECKS[lie.inStream] },
  ])('served by $path', ({ front, check }) => {
    const refText = () => `${front()}/team/liar:${tag}`;
    const ref = (): OciReference => parseOciReference(refText());

    it('repo pull prints one line, exits 1 and writes nothing', async () => {
      const env = await cliEnv();
      const dest = await tempDir('diginfractl-pull-');
      const r = await runCli(['repo', 'pull', refText(), '--dest', dest, '--plain-http'], { env });
      expectOneLineSizeError(r, check());
      expect(await readdir(dest)).toEqual([]);
    });

    it('artifact install prints one line, exits 1 and writes nothing', async () => {
      const env = await cliEnv();
      const rules = join(env.HOME, 'rules');
      await writeFile(env.DIGINFRACTL_CONFIG!, stringify({ registry: { plainHttp: [front()] }, install: { rulesfilesDir: rules, pluginsDir: join(env.HOME, 'plugins') } }));
      const r = await runCli(['artifact', 'install', refText()], { env });
      expectOneLineSizeError(r, check());
      expect(await entries(rules)).toEqual([]);
      const cached = await entries(join(env.XDG_CACHE_HOME!, 'diginfractl', 'blobs', 'sha256'));
      expect(cached).not.toContain(layer.digest.slice('sha256:'.length));
      expect(cached.filter((f) => f.startsWith('.'))).toEqual([]);
    });

    it('repo copy to an OCI layout prints one line, exits 1 and writes no layer', async () => {
      const env = await cliEnv();
      const layout = join(await tempDir('diginfractl-layout-'), 'out');
      const r = await runCli(['repo', 'copy', refText(), `oci:${layout}:1`, '--plain-http'], { env });
      expectOneLineSizeError(r, check());
      expect(await entries(join(layout, 'blobs', 'sha256'))).not.toContain(layer.digest.slice('sha256:'.length));
    });

    it('the client rejects reading, streaming and ingesting the blob with SIZE_MISMATCH', async () => {
      const client = clientFor();
      try {
        const read = await errorOf(client.readBlob(ref(), declared, 1e16));
        expect(read.code).toBe('SIZE_MISMATCH');
        expect(read.message).toMatch(check());

        const streamed = await errorOf(
          (async () => {
            const body = await client.openBlob(ref(), declared);
            await pipeline(body, new Writable({ write: (_c, _e, cb) => cb() }));
          })(),
        );
        expect(streamed.code).toBe('SIZE_MISMATCH');

        const dir = await tempDir('diginfractl-ingest-');
        await mkdir(join(dir, 'sub'));
        const ingested = await errorOf(ingestBlob(client, ref(), declared, join(dir, 'sub', 'blob')));
        expect(ingested.code).toBe('SIZE_MISMATCH');
        expect(await readdir(join(dir, 'sub'))).toEqual([]);
        await settle();
      } finally {
        await client.close();
      }
    });
  });
});
