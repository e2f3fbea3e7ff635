/**
 * Registry credentials in docker's `config.json` format, so one login serves docker, podman, ORAS and
 * us. Reads diginfractl's own file, then extra files (a mounted Kubernetes dockerconfigjson), then
 * docker's; within a file a `credHelpers` entry wins over `auths`, and `credsStore` is the fallback.
 * Writes only diginfractl's own file (mode 0600).
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DiginfraError } from '../../errors.js';
import { writeFileAtomic } from '../../util/atomic-fs.js';
import type { Credential, CredentialSource } from '../client.js';

export type { Credential };

export interface CredentialStoreOptions {
  /** Where diginfractl's config.json lives; default $XDG_CONFIG_HOME/diginfractl (~/.config/diginfractl). */
  configDir?: string;
  /** Docker's config dir; default $DOCKER_CONFIG or ~/.docker. */
  dockerConfigDir?: string;
  /** More docker-format files to read after diginfractl's own. */
  extraFiles?: string[];
  env?: NodeJS.ProcessEnv;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

interface DockerConfig {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [key: string]: unknown;
}

const HELPER_TIMEOUT_MS = 10_000;
const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

/** The keys under which docker may have stored a host. */
function keysFor(host: string): string[] {
  const keys = [host, `https://${host}`, `http://${host}`, `https://${host}/v1/`, `https://${host}/v2/`];
  if (host === 'docker.io' || host === 'registry-1.docker.io' || host === 'index.docker.io') {
    keys.push(DOCKER_HUB_KEY, 'index.docker.io', 'docker.io', 'registry-1.docker.io');
  }
  return keys;
}

/** The key we write for a host (docker's own for Docker Hub). */
function storeKey(host: string): string {
  return host === 'docker.io' || host === 'index.docker.io' || host === 'registry-1.docker.io' ? DOCKER_HUB_KEY : host;
}

function decodeEntry(entry: AuthEntry, file: string, key: string): Credential | undefined {
  if (entry.identitytoken) return { ...(entry.username && { username: entry.username }), identityToken: entry.identitytoken };
  if (entry.username || entry.password) return { ...(entry.username && { username: entry.username }), ...(entry.password && { password: entry.password }) };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new DiginfraError('CONFIG_INVALID', `${file}: "auths.${key}.auth" is not base64 of user:password`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return undefined;
}

export class CredentialStore implements CredentialSource {
  readonly path: string;
  readonly #files: string[];
  readonly #env: NodeJS.ProcessEnv;

  constructor(opts: CredentialStoreOptions = {}) {
    const env = opts.env ?? process.env;
    this.#env = env;
    const configHome = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
    const configDir = opts.configDir ?? join(configHome, 'diginfractl');
    const dockerDir = opts.dockerConfigDir ?? (env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker'));
    this.path = join(configDir, 'config.json');
    this.#files = [this.path, ...(opts.extraFiles ?? []), join(dockerDir, 'config.json')];
  }

  async #read(file: string): Promise<DockerConfig | undefined> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new DiginfraError('IO', `cannot read credentials file ${file}: ${(err as Error).message}`);
    }
    try {
      const parsed = JSON.parse(text) as unknown;
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
      return parsed as DockerConfig;
    } catch (err) {
      throw new DiginfraError('CONFIG_INVALID', `credentials file ${file} is not valid JSON (${(err as Error).message})`, {
        hint: `fix or remove ${file}, then run \`diginfractl repo login\` again`,
      });
    }
  }

  async get(host: string): Promise<Credential | undefined> {
    for (const file of this.#files) {
      const config = await this.#read(file);
      if (!config) continue;
      const keys = keysFor(host);
      const helper = keys.map((k) => config.credHelpers?.[k]).find((h) => h);
      if (helper) return this.#fromHelper(helper, host);
      for (const key of keys) {
        const entry = config.auths?.[key];
        if (entry) {
          const cred = decodeEntry(entry, file, key);
          if (cred) return cred;
        }
      }
      if (config.credsStore) {
        const cred = await this.#fromHelper(config.credsStore, host);
        if (cred) return cred;
      }
    }
    return undefined;
  }

  /** Runs `docker-credential-<name> get` with the server on stdin. */
  #fromHelper(name: string, host: string): Promise<Credential | undefined> {
    const bin = `docker-credential-${name}`;
    return new Promise((resolve, reject) => {
      const child = execFile(bin, ['get'], { env: this.#env, timeout: HELPER_TIMEOUT_MS }, (err, stdout, stderr) => {
        if (err) {
          const out = `${stdout}${stderr}`;
          if (/credentials not found/i.test(out)) return resolve(undefined);
          const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'is not on PATH' : `failed (${err.killed ? 'timed out' : `exit ${String((err as { code?: unknown }).code)}`})`;
          return reject(new DiginfraError('AUTH_REQUIRED', `credential helper ${bin} ${why} for ${host}`, {
            hint: `install ${bin}, or remove it from credHelpers/credsStore in docker's config.json`,
          }));
        }
        try {
          const reply = JSON.parse(stdout) as { Username?: string; Secret?: string };
          if (!reply.Secret) return resolve(undefined);
          resolve(reply.Username === '<token>' ? { identityToken: reply.Secret } : { username: reply.Username ?? '', password: reply.Secret });
        } catch {
          reject(new DiginfraError('AUTH_REQUIRED', `credential helper ${bin} returned something other than JSON for ${host}`));
        }
      });
      child.stdin?.end(host);
    });
  }

  async save(host: string, cred: Credential): Promise<void> {
    const config = (await this.#read(this.path)) ?? {};
    const auths = { ...(config.auths ?? {}) };
    for (const key of keysFor(host)) delete auths[key];
    auths[storeKey(host)] = cred.identityToken
      ? { identitytoken: cred.identityToken }
      : { auth: Buffer.from(`${cred.username ?? ''}:${cred.password ?? ''}`).toString('base64') };
    await this.#write({ ...config, auths });
  }

  async remove(host: string): Promise<boolean> {
    const config = await this.#read(this.path);
    if (!config?.auths) return false;
    const auths = { ...config.auths };
    let removed = false;
    for (const key of keysFor(host)) {
      if (key in auths) {
        delete auths[key];
        removed = true;
      }
    }
    if (removed) await this.#write({ ...config, auths });
    return removed;
  }

  async #write(config: DockerConfig): Promise<void> {
    const dir = join(this.path, '..');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(this.path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    await chmod(this.path, 0o600);
  }
}
