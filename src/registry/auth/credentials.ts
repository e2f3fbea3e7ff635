/**
 * Registry credentials in docker's `config.json` format, so one login serves docker, podman, ORAS and
 * us. Files are read in order: diginfractl's own (`$XDG_CONFIG_HOME/diginfractl/config.json`), then
 * the extra files (e.g. a mounted Kubernetes dockerconfigjson), then docker's
 * (`$DOCKER_CONFIG/config.json`). Within a file: `credHelpers[host]` (a helper program), then
 * `auths[host]` (`auth` = base64 of user:password, or `username`/`password`, or `identitytoken`, or
 * `registrytoken`, a bearer token sent to the registry as is),
 * then `credsStore` (a helper for every host). The first source that yields a credential wins; a
 * helper that says "credentials not found" just passes to the next source.
 *
 * Host keys match loosely, as docker does: `host`, `https://host`, `http://host`, `https://host/v1/`
 * all name `host`, and `docker.io` is `https://index.docker.io/v1/`.
 *
 * Only diginfractl's own file is ever written (dir 0700, file 0600, atomic replace). No error message
 * contains a secret: not the `auth` value, not a helper's output, not the text of a corrupt file.
 */
import { mkdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { DiginfraError } from '../../errors.js';
import { writeFileAtomic } from '../../util/index.js';
import type { Credential, CredentialSource } from './session.js';
import { registryKey } from '../../reference/index.js';

export type { Credential };

export interface CredentialStoreOptions {
  /** Where diginfractl's config.json lives; default $XDG_CONFIG_HOME/diginfractl (~/.config/diginfractl). */
  configDir?: string;
  /** Docker's config dir; default $DOCKER_CONFIG or ~/.docker. */
  dockerConfigDir?: string;
  /** More docker-format files, read after diginfractl's own and before docker's. */
  extraFiles?: string[];
  /** Environment for the defaults above and for helpers (PATH); default process.env. */
  env?: NodeJS.ProcessEnv;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  /** A bearer token for the registry itself, sent as is (docker's `registrytoken`). */
  registrytoken?: string;
}

interface DockerConfig {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [key: string]: unknown;
}

/** The helper protocol: https://github.com/docker/docker-credential-helpers */
const HELPER_TIMEOUT_MS = 10_000;
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';
/** config.json files are small; anything this big is not one. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** `https://Host:5000/v1/` → `host:5000`; Docker Hub's names → `docker.io`. */
function canonicalHost(key: string): string {
  const host = key
    .trim()
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
  return registryKey(host);
}

/** The key docker itself would write for a host. */
function storeKey(host: string): string {
  const canonical = canonicalHost(host);
  return canonical === 'docker.io' ? DOCKER_HUB_KEY : canonical;
}

/** The value under the key of `map` that names `host`: an exact key first, then any loose match. */
function lookup<T>(map: Record<string, T> | undefined, host: string): [string, T] | undefined {
  if (!map) return undefined;
  for (const exact of [host, storeKey(host)]) {
    if (Object.hasOwn(map, exact)) return [exact, map[exact]!];
  }
  const canonical = canonicalHost(host);
  const key = Object.keys(map).find((k) => canonicalHost(k) === canonical);
  return key === undefined ? undefined : [key, map[key]!];
}

/** A JSON.parse failure described by its position only: V8's message quotes the text (secrets). */
function parseFailure(err: unknown): string {
  const message = err instanceof Error ? err.message : '';
  const where = /at position (\d+)(?: \(line (\d+) column (\d+)\))?/.exec(message);
  if (where?.[2]) return `it is not valid JSON (error at line ${where[2]}, column ${where[3]})`;
  if (where) return `it is not valid JSON (error at character ${where[1]})`;
  if (/end of JSON input/.test(message)) return 'it is not valid JSON (it ends too early)';
  return 'it is not valid JSON';
}

function configInvalid(file: string, why: string): DiginfraError {
  return new DiginfraError('CONFIG_INVALID', `credentials file ${file}: ${why}`, {
    hint: `fix or remove ${file}, then log in again (\`diginfractl repo login\` or \`docker login\`)`,
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks the shape of the parts we use; names the field, never its value. */
function validate(parsed: unknown, file: string): DockerConfig {
  if (!isObject(parsed)) throw configInvalid(file, 'it is not a JSON object');
  const { auths, credHelpers, credsStore } = parsed;
  if (auths !== undefined) {
    if (!isObject(auths)) throw configInvalid(file, '"auths" is not an object');
    for (const [key, entry] of Object.entries(auths)) {
      if (!isObject(entry)) throw configInvalid(file, `auths[${JSON.stringify(key)}] is not an object`);
      for (const field of ['auth', 'username', 'password', 'identitytoken', 'registrytoken']) {
        if (entry[field] !== undefined && typeof entry[field] !== 'string') throw configInvalid(file, `auths[${JSON.stringify(key)}].${field} is not a string`);
      }
    }
  }
  if (credHelpers !== undefined) {
    if (!isObject(credHelpers)) throw configInvalid(file, '"credHelpers" is not an object');
    for (const [key, name] of Object.entries(credHelpers)) {
      if (typeof name !== 'string' || !HELPER_NAME.test(name)) throw configInvalid(file, `credHelpers[${JSON.stringify(key)}] is not a helper name`);
    }
  }
  if (credsStore !== undefined && (typeof credsStore !== 'string' || (credsStore !== '' && !HELPER_NAME.test(credsStore)))) {
    throw configInvalid(file, '"credsStore" is not a helper name');
  }
  return parsed as DockerConfig;
}

function decodeEntry(entry: AuthEntry, file: string, key: string): Credential | undefined {
  let username = entry.username || undefined;
  let password = entry.password || undefined;
  if (entry.auth && entry.auth.trim() !== '') {
    const decoded = Buffer.from(entry.auth.trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw configInvalid(file, `auths[${JSON.stringify(key)}].auth is not the base64 of user:password`);
    username = decoded.slice(0, colon) || undefined;
    password = decoded.slice(colon + 1) || undefined;
  }
  if (entry.registrytoken) {
    // Docker sends a registry token in preference to anything else; the rest stays for a Basic challenge.
    return {
      ...(username !== undefined && { username }),
      ...(password !== undefined && { password }),
      ...(entry.identitytoken && { identityToken: entry.identitytoken }),
      registryToken: entry.registrytoken,
    };
  }
  if (entry.identitytoken) return { ...(username !== undefined && { username }), identityToken: entry.identitytoken };
  if (username === undefined && password === undefined) return undefined; // a placeholder, e.g. beside credsStore
  return { ...(username !== undefined && { username }), ...(password !== undefined && { password }) };
}

export class CredentialStore implements CredentialSource {
  /** diginfractl's own config.json: the file save() and remove() change. */
  readonly path: string;
  readonly #files: string[];
  readonly #env: NodeJS.ProcessEnv;
  #generation = 0;

  constructor(opts: CredentialStoreOptions = {}) {
    const env = opts.env ?? process.env;
    this.#env = env;
    const home = env.HOME || homedir();
    const xdg = env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : join(home, '.config');
    const configDir = opts.configDir ?? join(xdg, 'diginfractl');
    const dockerDir = opts.dockerConfigDir ?? (env.DOCKER_CONFIG || join(home, '.docker'));
    this.path = join(configDir, 'config.json');
    this.#files = [this.path, ...(opts.extraFiles ?? []), join(dockerDir, 'config.json')];
  }

  /** Every file this store reads, in order (a watcher re-reads them: see changed()). */
  get files(): readonly string[] {
    return this.#files;
  }

  /** Says that the files may hold other credentials now (a rotated Secret): sessions look again. */
  changed(): void {
    this.#generation++;
  }

  /** Bumped by changed(): credentials a session cached before are looked up again. */
  generation(): number {
    return this.#generation;
  }

  /** A docker-format file, or undefined when it does not exist. */
  async #read(file: string): Promise<DockerConfig | undefined> {
    let text: string;
    try {
      const st = await stat(file);
      if (!st.isFile()) throw configInvalid(file, 'it is not a regular file');
      if (st.size > MAX_CONFIG_BYTES) throw configInvalid(file, `it is ${st.size} bytes, too big for a credentials file`);
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (err instanceof DiginfraError) throw err;
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new DiginfraError('IO', `cannot read credentials file ${file}: ${(err as Error).message}`, {
        cause: err,
        hint: `check the permissions of ${file}`,
      });
    }
    if (text.trim() === '') return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw configInvalid(file, parseFailure(err));
    }
    return validate(parsed, file);
  }

  async get(host: string): Promise<Credential | undefined> {
    for (const file of this.#files) {
      const config = await this.#read(file);
      if (!config) continue;
      const helper = lookup(config.credHelpers, host);
      if (helper) {
        const cred = await this.#fromHelper(helper[1], host, file);
        if (cred) return cred;
      }
      const entry = lookup(config.auths, host);
      if (entry) {
        const cred = decodeEntry(entry[1], file, entry[0]);
        if (cred) return cred;
      }
      if (config.credsStore) {
        const cred = await this.#fromHelper(config.credsStore, host, file);
        if (cred) return cred;
      }
    }
    return undefined;
  }

  /** Runs `docker-credential-<name> get` with the server URL on stdin. */
  #fromHelper(name: string, host: string, file: string): Promise<Credential | undefined> {
    const bin = `docker-credential-${name}`;
    const server = canonicalHost(host) === 'docker.io' ? DOCKER_HUB_KEY : canonicalHost(host);
    const failed = (why: string, cause?: unknown): DiginfraError =>
      new DiginfraError('AUTH_REQUIRED', `credential helper ${bin} ${why} for ${server} (it is named in ${file})`, {
        ...(cause !== undefined && { cause }),
        hint: `check that ${bin} is installed on PATH and works (\`echo ${server} | ${bin} get\`), or remove it from ${file}`,
      });
    // Loaded here, not at start-up: most commands never run a helper (child_process costs ~3 ms to load).
    const { execFile } = process.getBuiltinModule('node:child_process');
    return new Promise((resolve, reject) => {
      const child = execFile(
        bin,
        ['get'],
        { env: this.#env, timeout: HELPER_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024, windowsHide: true },
        (err, stdout, stderr) => {
          if (err) {
            if (/credentials not found/i.test(`${stdout}\n${stderr}`)) return resolve(undefined);
            const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: unknown; signal?: string | null };
            if (e.code === 'ENOENT') return reject(failed('is not on PATH'));
            if (e.code === 'EACCES') return reject(failed('is not executable'));
            if (e.killed) return reject(failed(`did not answer within ${HELPER_TIMEOUT_MS / 1000} s`));
            if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') return reject(failed('wrote too much output'));
            // Neither stdout nor stderr goes into the message: a helper may print secrets.
            return reject(failed(typeof e.code === 'number' ? `failed (exit status ${e.code})` : `failed (${e.signal ?? 'unknown error'})`));
          }
          let reply: unknown;
          try {
            reply = JSON.parse(stdout);
          } catch {
            return reject(failed('answered something other than JSON'));
          }
          if (!isObject(reply) || typeof reply.Secret !== 'string') return reject(failed('answered JSON without a "Secret"'));
          if (reply.Secret === '') return resolve(undefined);
          const username = typeof reply.Username === 'string' ? reply.Username : '';
          resolve(username === '<token>' ? { identityToken: reply.Secret } : { ...(username !== '' && { username }), password: reply.Secret });
        },
      );
      // A helper that exits without reading stdin must not crash us with EPIPE.
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(`${server}\n`);
    });
  }

  /** Stores a credential for `host` in diginfractl's config.json (replacing any under an alias key). */
  async save(host: string, cred: Credential): Promise<void> {
    const canonical = canonicalHost(host);
    if (canonical === '') throw new DiginfraError('USAGE', 'a registry host is required to save credentials');
    let entry: AuthEntry;
    if (cred.identityToken) {
      entry = { identitytoken: cred.identityToken };
    } else {
      if (!cred.username || cred.password === undefined || cred.password === '') {
        throw new DiginfraError('USAGE', `credentials for ${canonical} need a username and a password (or an identity token)`);
      }
      if (cred.username.includes(':')) throw new DiginfraError('USAGE', `the username for ${canonical} contains ":", which docker's config.json cannot store`);
      entry = { auth: Buffer.from(`${cred.username}:${cred.password}`, 'utf8').toString('base64') };
    }
    const config = (await this.#read(this.path)) ?? {};
    const auths: Record<string, AuthEntry> = {};
    for (const [key, value] of Object.entries(config.auths ?? {})) {
      if (canonicalHost(key) !== canonical) auths[key] = value;
    }
    auths[storeKey(host)] = entry;
    await this.#write({ ...config, auths });
  }

  /** Deletes the credential of `host` from diginfractl's config.json; false when none was stored. */
  async remove(host: string): Promise<boolean> {
    const config = await this.#read(this.path);
    if (!config?.auths) return false;
    const canonical = canonicalHost(host);
    const auths: Record<string, AuthEntry> = {};
    let removed = false;
    for (const [key, value] of Object.entries(config.auths)) {
      if (canonicalHost(key) === canonical) removed = true;
      else auths[key] = value;
    }
    if (removed) await this.#write({ ...config, auths });
    return removed;
  }

  async #write(config: DockerConfig): Promise<void> {
    const dir = dirname(this.path);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new DiginfraError('IO', `cannot create ${dir}: ${(err as Error).message}`, { cause: err });
    }
    await writeFileAtomic(this.path, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  }
}
