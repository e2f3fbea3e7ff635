/**
 * A real CNCF distribution registry (`/usr/bin/docker-registry`, Debian package docker-registry, v2.8)
 * for tests, with optional htpasswd or token auth and optional TLS.
 *
 * Each registry gets its own temp dir (config, certificates, filesystem storage) and loopback port.
 * Certificates come from the `openssl` CLI; htpasswd entries from bcryptjs; the token variant runs a
 * small Docker-token-protocol issuer in this process that signs ES256 JWTs with node:crypto.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID, sign, timingSafeEqual, X509Certificate } from 'node:crypto';
import { rmSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import bcrypt from 'bcryptjs';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { tempDir } from './fs.ts';
import { freePort, listenOnLoopback } from './net.ts';
import { makeTlsFiles, openssl, type TlsFiles } from './tls.ts';

export interface TestRegistry {
  /** `127.0.0.1:PORT`: what goes in a reference. */
  host: string;
  /** `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`. */
  url: string;
  /** PEM file of the CA that signed the registry's (and the token issuer's) certificate, with `tls: true`. */
  caFile?: string;
  /** Credentials, for the htpasswd and token variants. */
  username?: string;
  password?: string;
  /** Filesystem storage root (tests tamper with blobs here, see blobPath). */
  storageDir: string;
  /** Token variant: how many tokens the issuer has handed out so far. */
  tokenRequests?: () => number;
  /** Kill the registry (and issuer) and remove the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartOptions {
  auth?: 'none' | 'htpasswd' | 'token';
  tls?: boolean;
  /** The one user's name and password (default: `tester` and a random one). */
  username?: string;
  password?: string;
  /** Pull-through cache mode: the registry serves `remoteurl`'s content, fetching what it lacks. */
  proxy?: { remoteurl: string };
}

const REGISTRY_BIN = '/usr/bin/docker-registry';
const USERNAME = 'tester';
/** The `service` of the token variant: the JWT audience and the challenge's service parameter. */
const TOKEN_SERVICE = 'diginfractl-test-registry';
const TOKEN_ISSUER = 'diginfractl-test-issuer';
const TOKEN_TTL_SECONDS = 300;
const READY_DEADLINE_MS = 10_000;
const STOP_GRACE_MS = 2_000;
const PORT_ATTEMPTS = 5;

/** Registries still running and temp dirs not yet removed: cleaned up if the test process exits first. */
const live = new Set<ChildProcess>();
const liveDirs = new Set<string>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
});

/** Path of a blob's data file under the filesystem driver's layout. */
export function blobPath(reg: TestRegistry, digest: string): string {
  const [algorithm, hex] = digest.split(':');
  if (!algorithm || !hex || hex.length < 2) throw new Error(`not a digest: ${digest}`);
  return join(reg.storageDir, 'docker', 'registry', 'v2', 'blobs', algorithm, hex.slice(0, 2), hex, 'data');
}

export async function startRegistry(opts: StartOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? 'none';
  const tls = opts.tls ?? false;
  const dir = await tempDir('diginfractl-registry-');
  liveDirs.add(dir);
  const cleanups: Array<() => Promise<void>> = [];
  const cleanUp = async (): Promise<void> => {
    for (const fn of [...cleanups].reverse()) await fn();
    await rm(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  };

  try {
    const storageDir = join(dir, 'storage');
    const password = auth === 'none' ? undefined : (opts.password ?? randomBytes(12).toString('hex'));
    const username = opts.username ?? USERNAME;
    const config: Record<string, unknown> = {
      version: 0.1,
      log: { level: 'warn', accesslog: { disabled: true } },
      // No `cache` section: no blob-descriptor cache, so tampering with storage is seen at once.
      storage: { filesystem: { rootdirectory: storageDir }, delete: { enabled: true } },
      health: { storagedriver: { enabled: false } },
      ...(opts.proxy && { proxy: opts.proxy }),
    };

    const tlsFiles = tls ? await makeTlsFiles(dir) : undefined;

    let issuer: TokenIssuer | undefined;
    if (auth === 'htpasswd') {
      const htpasswdFile = join(dir, 'htpasswd');
      // bcrypt cost 4 (the minimum): the registry checks the hash on every request, and the default
      // cost of 10 would add tens of milliseconds to each one.
      await writeFile(htpasswdFile, `${username}:${bcrypt.hashSync(password!, 4)}\n`);
      config.auth = { htpasswd: { realm: 'diginfractl-test', path: htpasswdFile } };
    } else if (auth === 'token') {
      issuer = await startTokenIssuer(dir, username, password!, tlsFiles);
      cleanups.push(issuer.close);
      config.auth = {
        token: {
          realm: issuer.realm,
          service: TOKEN_SERVICE,
          issuer: TOKEN_ISSUER,
          rootcertbundle: issuer.certFile,
        },
      };
    }

    const { child, port } = await launch(dir, config, tlsFiles);
    const host = `127.0.0.1:${port}`;
    let stopped: Promise<void> | undefined;
    return {
      host,
      url: `${tls ? 'https' : 'http'}://${host}`,
      ...(tlsFiles ? { caFile: tlsFiles.caFile } : {}),
      ...(password === undefined ? {} : { username, password }),
      storageDir,
      ...(issuer ? { tokenRequests: issuer.count } : {}),
      stop: () => {
        stopped ??= (async () => {
          await kill(child);
          await cleanUp();
        })();
        return stopped;
      },
    };
  } catch (err) {
    await cleanUp();
    throw err;
  }
}

interface TokenIssuer {
  realm: string;
  /** PEM of the self-signed certificate whose key signs the tokens: the registry's rootcertbundle. */
  certFile: string;
  count: () => number;
  close: () => Promise<void>;
}

/**
 * A token server for the Docker token protocol: `GET realm?service=S&scope=repository:NAME:pull,push`
 * (scope may repeat). Right Basic credentials get every requested action, no credentials get only
 * `pull` (anonymous pull), wrong credentials get 401.
 *
 * distribution v2.8 finds the verification key from the JWT header: `x5c` (checked as a chain up to
 * rootcertbundle), else `jwk`, else `kid` as a libtrust key fingerprint. We send `x5c` holding the
 * self-signed signing certificate, which is itself the whole bundle. `aud` is a single string (the
 * requested service): the form every registry version accepts.
 */
async function startTokenIssuer(
  dir: string,
  username: string,
  password: string,
  tlsFiles: TlsFiles | undefined,
): Promise<TokenIssuer> {
  await openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'token.key', '-out', 'token.pem', '-days', '2', '-subj', '/CN=diginfractl test token issuer',
  ]);
  const key = await readFile(join(dir, 'token.key'), 'utf8');
  const certFile = join(dir, 'token.pem');
  const x5c = new X509Certificate(await readFile(certFile)).raw.toString('base64');
  const expected = Buffer.from(`${username}:${password}`);
  let issued = 0;

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://issuer');
    if (req.method !== 'GET' || url.pathname !== '/token') {
      reply(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'only GET /token is served' }] });
      return;
    }
    let authenticated = false;
    const header = req.headers.authorization;
    if (header !== undefined) {
      const given = header.startsWith('Basic ') ? Buffer.from(header.slice(6), 'base64') : Buffer.alloc(0);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        reply(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'incorrect username or password' }] });
        return;
      }
      authenticated = true;
    }
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: TOKEN_ISSUER,
      sub: authenticated ? username : '',
      aud: url.searchParams.get('service') ?? TOKEN_SERVICE,
      exp: now + TOKEN_TTL_SECONDS,
      nbf: now,
      iat: now,
      jti: randomUUID(),
      // A client may repeat `scope` or put several space-separated scopes in one.
      access: url.searchParams
        .getAll('scope')
        .flatMap((param) => param.split(' '))
        .flatMap((scope) => grant(scope, authenticated)),
    };
    const token = signJwt({ typ: 'JWT', alg: 'ES256', x5c: [x5c] }, claims, key);
    issued++;
    reply(res, 200, {
      token,
      access_token: token,
      expires_in: TOKEN_TTL_SECONDS,
      issued_at: new Date(now * 1000).toISOString(),
    });
  };

  // Over TLS the issuer presents the registry's certificate, so one CA file covers both.
  const server: Server = tlsFiles
    ? createHttpsServer({ cert: await readFile(tlsFiles.certFile), key: await readFile(tlsFiles.keyFile) }, handle)
    : createHttpServer(handle);
  const port = await listenOnLoopback(server);
  return {
    realm: `${tlsFiles ? 'https' : 'http'}://127.0.0.1:${port}/token`,
    certFile,
    count: () => issued,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The access entry for one `type:name:actions` scope; anonymous callers get `pull` at most. */
function grant(scope: string, authenticated: boolean): Array<{ type: string; name: string; actions: string[] }> {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return [];
  const actions = scope
    .slice(last + 1)
    .split(',')
    .filter((action) => action !== '' && (authenticated || action === 'pull'));
  return [{ type: scope.slice(0, first), name: scope.slice(first + 1, last), actions }];
}

function signJwt(header: object, claims: object, keyPem: string): string {
  const encode = (part: object): string => Buffer.from(JSON.stringify(part)).toString('base64url');
  const input = `${encode(header)}.${encode(claims)}`;
  // JWS ES256 wants the raw r||s signature, not node's default DER encoding.
  const signature = sign('sha256', Buffer.from(input), { key: keyPem, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

function reply(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/** The environment without REGISTRY_* variables, which the registry reads as config overrides. */
function registryEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('REGISTRY_')));
}

/** Start the registry and wait until it answers, polling through an Agent that trusts its CA. */
async function launch(
  dir: string,
  config: Record<string, unknown>,
  tlsFiles: TlsFiles | undefined,
): Promise<{ child: ChildProcess; port: number }> {
  const configFile = join(dir, 'config.yml');
  const ca = tlsFiles ? await readFile(tlsFiles.caFile, 'utf8') : undefined;
  const readiness = new Agent(ca ? { connect: { ca } } : {});
  try {
    return await launchOnFreePort(configFile, config, tlsFiles, readiness);
  } finally {
    await readiness.close();
  }
}

/**
 * Another process can take the port between freePort() and the registry's bind; then the registry
 * exits with "address already in use" and we try another port.
 */
async function launchOnFreePort(
  configFile: string,
  config: Record<string, unknown>,
  tlsFiles: TlsFiles | undefined,
  readiness: Agent,
): Promise<{ child: ChildProcess; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const http: Record<string, unknown> = { addr: `127.0.0.1:${port}`, secret: randomBytes(16).toString('hex') };
    if (tlsFiles) http.tls = { certificate: tlsFiles.certFile, key: tlsFiles.keyFile };
    await writeFile(configFile, stringify({ ...config, http }));

    const child = spawn(REGISTRY_BIN, ['serve', configFile], { env: registryEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(child);
    let failure: Error | undefined;
    child.once('error', (err) => (failure = err));
    // 'close' rather than 'exit': it comes after stderr is drained, so the message below is whole.
    child.once('close', (code, signal) => {
      live.delete(child);
      failure ??= new Error(`exited with ${code ?? signal}`);
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-16_384);
    });

    const url = `${tlsFiles ? 'https' : 'http'}://127.0.0.1:${port}/v2/`;
    try {
      await waitReady(url, readiness, () => failure);
      return { child, port };
    } catch (err) {
      await kill(child);
      if (attempt < PORT_ATTEMPTS && stderr.includes('address already in use')) continue;
      const hint = (err as NodeJS.ErrnoException).code === 'ENOENT' ? ' (run `bash scripts/bootstrap.sh`)' : '';
      throw new Error(`docker-registry did not come up on ${url}: ${(err as Error).message}${hint}\n${stderr}`, {
        cause: err,
      });
    }
  }
}

/** Poll `GET /v2/` until the registry answers (any status), the process fails, or the deadline passes. */
async function waitReady(url: string, dispatcher: Agent, failure: () => Error | undefined): Promise<void> {
  const deadline = Date.now() + READY_DEADLINE_MS;
  let lastError: unknown;
  while (Date.now() < deadline) {
    const failed = failure();
    if (failed) throw failed;
    try {
      const res = await request(url, { dispatcher, headersTimeout: 1_000, bodyTimeout: 1_000 });
      await res.body.dump();
      // Every registry answer, 401 included, carries this header; another server on the port does not.
      if (res.headers['docker-distribution-api-version'] === 'registry/2.0') return;
    } catch (err) {
      lastError = err;
    }
    await sleep(50);
  }
  throw new Error(`no answer within ${READY_DEADLINE_MS} ms (last error: ${(lastError as Error | undefined)?.message})`);
}

/** SIGTERM, then SIGKILL if the process is still there after the grace period. */
async function kill(child: ChildProcess): Promise<void> {
  // No pid: it never started. An exit code or signal: it is gone already.
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}
