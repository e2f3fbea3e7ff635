/**
 * `registry.allowed`: where artifacts may come from. Each pattern is a host (`ghcr.io`, any repository
 * there) or a host and a repository prefix (`ghcr.io/falcosecurity`: that repository and the ones
 * below it, whole path components only, so not `ghcr.io/falcosecurity-fork`). Hosts compare
 * case-insensitively, Docker Hub's aliases folded. An empty list allows everything.
 *
 * When pull-through mirrors serve a registry (`registry.mirrors`), a mirror is where the bytes may
 * come from: each must be allowed too, with the same repository.
 *
 * restrictReads() puts the check in front of every read a client makes, so nothing outside the list
 * is fetched, whichever way a reference reached it (typed, an index entry, a dependency).
 */
import { DiginfraError } from '../errors.js';
import { registryKey } from '../reference/index.js';
import type { RegistryClient } from './client.js';
import { mirrorsOf } from './mirrors.js';

/** What the check needs of the `registry` config section. */
export interface AllowedRegistries {
  readonly allowed: readonly string[];
  readonly mirrors?: Readonly<Record<string, string | readonly string[]>>;
}

function matches(pattern: string, registry: string, repository: string): boolean {
  const p = pattern.trim().replace(/\/+$/, '');
  const slash = p.indexOf('/');
  const host = slash < 0 ? p : p.slice(0, slash);
  if (registryKey(host) !== registryKey(registry)) return false;
  if (slash < 0) return true;
  const prefix = p.slice(slash + 1);
  return repository === prefix || repository.startsWith(`${prefix}/`);
}

/** Whether `registry/repository` is inside the patterns (always, for an empty list). Pure. */
export function isAllowed(patterns: readonly string[], registry: string, repository: string): boolean {
  return patterns.length === 0 || patterns.some((p) => matches(p, registry, repository));
}

/**
 * Throws REGISTRY_NOT_ALLOWED unless `registry/repository`, and the mirror that serves it when one is
 * configured, are inside `registry.allowed`. The message names the registry and the setting.
 */
export function checkAllowed(config: AllowedRegistries, ref: { registry: string; repository: string }): void {
  const { allowed } = config;
  if (allowed.length === 0) return;
  const list = allowed.join(', ');
  const hint = 'add it to registry.allowed (config, DIGINFRACTL_REGISTRY_ALLOWED or the chart value registry.allowed) if it is trusted; nothing was fetched';
  if (!isAllowed(allowed, ref.registry, ref.repository)) {
    throw new DiginfraError('REGISTRY_NOT_ALLOWED', `${ref.registry}/${ref.repository} is outside registry.allowed (${list})`, { hint });
  }
  for (const mirror of mirrorsOf({ mirrors: config.mirrors ?? {} }, ref.registry)) {
    if (isAllowed(allowed, mirror, ref.repository)) continue;
    throw new DiginfraError('REGISTRY_NOT_ALLOWED', `${ref.registry}/${ref.repository} is served by the mirror ${mirror} (registry.mirrors), and ${mirror}/${ref.repository} is outside registry.allowed (${list})`, { hint });
  }
}

/** The client's methods that read from a repository; each takes the repository's reference first. */
const READS = new Set<string | symbol>(['resolve', 'fetchManifest', 'readBlob', 'openBlob', 'listTags', 'referrers', 'blobExists']);

/**
 * `client` with checkAllowed() before every read (writes are not restricted: `repo push` publishes
 * wherever it is told). Returns the client itself when the list is empty.
 */
export function restrictReads<C extends RegistryClient>(client: C, config: AllowedRegistries): C {
  if (config.allowed.length === 0) return client;
  return new Proxy(client, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      const method = value as (...args: unknown[]) => unknown;
      if (!READS.has(prop)) return method.bind(target);
      return (...args: unknown[]) => {
        const ref = args[0] as { registry: string; repository: string };
        // A refusal rejects like the read would have, so callers see one kind of failure.
        try {
          checkAllowed(config, ref);
        } catch (err) {
          return Promise.reject(err);
        }
        return method.apply(target, args);
      };
    },
  });
}
