/**
 * The follow loop: every followed ref on its own timer (schedule.ts); a check is one manifest HEAD,
 * and only a digest that differs from the installed one downloads anything. A new version is staged
 * inside its target dir, checked (type, engine requirements, YAML list, --validate-cmd), its files kept
 * in the state dir, then swapped in (swap.ts) under the install lock of the target dir. Anything that
 * refuses it leaves the live files exactly as they were.
 *
 * Requests per check of a ref whose digest did not change (docs/follow.md):
 *   - `registry/repo:1.2.3` (fixed tag): 1 (HEAD of the manifest)
 *   - `registry/repo:1` (floating tag, newest 1.x): 1 (HEAD of the tag `1` itself, which `repo push
 *     --add-floating-tags` keeps on the newest 1.x.y); only when the repository has no tag `1` (the
 *     HEAD answers 404): the tag list (more requests when it is paginated), then a HEAD of the
 *     highest 1.x.y tag, 3 in all
 *   - `registry/repo` (no tag): 1 (HEAD of `latest`); 2 more when there is no `latest` tag
 *   - `registry/repo@sha256:...`: 0 once installed (a digest never changes)
 * plus, for a bare name (`k8saudit-rules:1`), nothing: the index is read from its local cache.
 */
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PLUGIN, RULESFILE } from '../artifact/format.js';
import { DiginfraError, isDiginfraError, messageOf } from '../errors.js';
import type { LoadedIndex } from '../indexes/resolve-name.js';
import { acquireDirLocks } from '../install/dir-lock.js';
import type { Logger } from '../log/logger.js';
import type { CheckResult, FollowMetrics, RejectReason } from '../metrics/follow-metrics.js';
import type { Probe } from '../metrics/server.js';
import { formatArtifactRef, parseArtifactRef, type OciReference } from '../reference/reference.js';
import type { RegistryClient } from '../registry/client.js';
import type { Platform } from '../registry/media-types.js';
import { checkRequirements, engineSatisfies, ENGINE_VERSION } from '../resolve/requirements.js';
import { isFloatingTag } from '../resolve/versions.js';
import { removeDir } from '../util/atomic-fs.js';
import { engineVersionSource, type EngineVersionSource } from './engine-version.js';
import { backoffDelayMs, nextDelayMs, nominalPeriodMs, type Random, type Schedule } from './schedule.js';
import { filesPresent, StateStore, type InstalledVersion, type RefState, type Rejection } from './state.js';
import type { Staged, SwapResult } from './swap.js';

// Loaded on first use: an agent whose refs are all current (the steady state, and every restart)
// never loads the archive, YAML, index or dependency code, and stays small (bench/follow-rss.mjs).
const lazy = {
  pull: () => import('../artifact/pull.js'),
  swap: () => import('./swap.js'),
  validate: () => import('./validate.js'),
  plan: () => import('../install/plan.js'),
  names: () => import('../indexes/resolve-name.js'),
  dependencies: () => import('./dependencies.js'),
  cosign: () => import('../signature/cosign.js'),
};

/** Everything a follower needs to know; built from the `follow` config section and the flags. */
export interface FollowSettings {
  /** Normalized refs (see normalizeRef), no duplicates. */
  refs: string[];
  schedule: Schedule;
  jitter: number;
  rulesfilesDir: string;
  pluginsDir: string;
  /** Directories of the other types, by type (follow.dirs), absolute. */
  dirs: Record<string, string>;
  stateDir: string;
  /** Lock files of `artifact install` (what it installed): dependencies are checked against them. */
  installLockfiles: string[];
  /** Blob cache of `artifact install` (read only): layers found there are not downloaded again. */
  cacheDir?: string;
  /** Empty: every type follow can place (rulesfile, plugin, and the types of `dirs`). */
  allowedTypes: string[];
  engineVersion?: string;
  engineVersionsUrl?: string;
  /** TLS for the versions URL's host (registry.caFiles / registry.insecureSkipTlsVerify). */
  engineVersionsTls?: { caFile?: string; insecure?: boolean };
  validateCmd?: string;
  platform: Platform;
  /** PEM public keys: a new version must carry a cosign signature one of them verifies. */
  verifyKeys?: string[];
  /** Fingerprints of those keys' contents (set by whoever reads them): a rotated key is a change. */
  verifyKeyFingerprints?: string[];
}

export interface FollowerDeps {
  logger: Logger;
  metrics: FollowMetrics;
  client: RegistryClient;
  /** The configured indexes, for bare names (`k8saudit-rules:1`). */
  indexes?: () => Promise<readonly LoadedIndex[]>;
  random?: Random;
  /** How long stop() waits for checks that are not swapping to unwind (default 5 s). */
  stopGraceMs?: number;
  /** How long a swap waits for the install lock of its dir (default 60 s). */
  lockTimeoutMs?: number;
  /** Node's options for the rules file check's child process (default: none). */
  rulesCheckExecArgv?: readonly string[];
}

export interface CheckOutcome {
  ref: string;
  result: CheckResult;
  digest?: string;
  version?: string;
  reason?: RejectReason;
  message?: string;
  error?: unknown;
  /** From a 429: when the registry allows the next request. */
  retryAfterMs?: number;
  /**
   * The registry still serves the digest `artifact rollback` moved away from, and the version rolled
   * back to is in place: held on purpose, not a failure (`result` is `rejected`, `reason` `rollback`).
   */
  pinned?: boolean;
}

/** A check that should make `--once` exit 1: an error, or a new version refused (not a rollback hold). */
export function isFailure(o: CheckOutcome): boolean {
  return o.result === 'error' || (o.result === 'rejected' && o.pinned !== true);
}

interface Worker {
  ref: string;
  timer: NodeJS.Timeout | undefined;
  running: Promise<CheckOutcome> | undefined;
  runningSince: number | undefined;
  nextAt: number | undefined;
  checksDone: number;
  failures: number;
  installed: boolean;
  removed: boolean;
}

/** At most this many refs download, validate and swap at once (memory and registry load). */
export const MAX_CONCURRENT_UPDATES = 2;

/** A counting semaphore. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((res) => this.#waiting.push(res));
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/** Checks that run longer than this make /healthz fail (a hung connection, a stuck validate-cmd). */
const STUCK_MS = 15 * 60_000;

class Abandoned extends Error {
  constructor() {
    super('shutting down: update abandoned before the swap');
  }
}

/** Applies the settings that decide whether a refused digest deserves another look. */
function rejectionKey(s: FollowSettings): string {
  const keys = s.verifyKeyFingerprints ?? s.verifyKeys;
  // The types that have a directory count too: giving one to a refused type earns its version another look.
  const placed = Object.keys(s.dirs ?? {}).sort();
  return JSON.stringify({ types: [...s.allowedTypes].sort(), cmd: s.validateCmd ?? null, ...(keys && { keys: [...keys].sort() }), ...(placed.length > 0 && { dirs: placed }) });
}

function requirementsMet(reqs: readonly { name: string; version: string }[], engine: string | undefined): boolean {
  if (engine === undefined) return true;
  return reqs.every((r) => r.name !== ENGINE_VERSION || engineSatisfies(engine, r.version));
}

export class Follower {
  #settings: FollowSettings;
  #client: RegistryClient;
  #indexes: (() => Promise<readonly LoadedIndex[]>) | undefined;
  #engine: EngineVersionSource;
  #store: StateStore;
  readonly #logger: Logger;
  readonly #metrics: FollowMetrics;
  readonly #random: Random;
  readonly #stopGraceMs: number;
  readonly #lockTimeoutMs: number;
  readonly #rulesCheckExecArgv: readonly string[];
  readonly #workers = new Map<string, Worker>();
  /** Per target dir: the tail of the queue of swaps into it (one at a time per dir in this process). */
  readonly #dirQueues = new Map<string, Promise<unknown>>();
  /** Swaps in progress: stop() waits for them, so a swap is never cut in the middle. */
  readonly #commits = new Set<Promise<unknown>>();
  /** Checks running on each client: a client replaced by reconfigure() is closed after its last one. */
  readonly #clientUsers = new Map<RegistryClient, number>();
  /** Replaced clients that still have checks running on them. */
  readonly #retiredClients = new Set<RegistryClient>();
  /** Closes of retired clients in progress (stop() waits for them). */
  readonly #closing = new Set<Promise<void>>();
  /** Staging dirs this process is using: never swept as a crash's leftovers. */
  readonly #staging = new Set<string>();
  readonly #abort = new AbortController();
  readonly #updates = new Slots(MAX_CONCURRENT_UPDATES);
  #stopping = false;
  #started = false;

  constructor(settings: FollowSettings, deps: FollowerDeps) {
    this.#settings = settings;
    this.#client = deps.client;
    this.#indexes = deps.indexes;
    this.#logger = deps.logger;
    this.#metrics = deps.metrics;
    this.#random = deps.random ?? Math.random;
    this.#stopGraceMs = deps.stopGraceMs ?? 5_000;
    this.#lockTimeoutMs = deps.lockTimeoutMs ?? 60_000;
    this.#rulesCheckExecArgv = deps.rulesCheckExecArgv ?? [];
    this.#engine = this.#engineSource(settings);
    this.#store = new StateStore(settings.stateDir);
  }

  get settings(): FollowSettings {
    return this.#settings;
  }

  get store(): StateStore {
    return this.#store;
  }

  #engineSource(s: FollowSettings): EngineVersionSource {
    return engineVersionSource({
      ...(s.engineVersion !== undefined && { version: s.engineVersion }),
      ...(s.engineVersionsUrl !== undefined && { url: s.engineVersionsUrl }),
      ...(s.engineVersionsTls?.caFile !== undefined && { caFile: s.engineVersionsTls.caFile }),
      ...(s.engineVersionsTls?.insecure === true && { insecure: true }),
    });
  }

  /** The client a new check runs on (the current one), counted until #releaseClient. */
  #useClient(): RegistryClient {
    const c = this.#client;
    this.#clientUsers.set(c, (this.#clientUsers.get(c) ?? 0) + 1);
    return c;
  }

  #releaseClient(c: RegistryClient): void {
    const n = (this.#clientUsers.get(c) ?? 1) - 1;
    if (n > 0) {
      this.#clientUsers.set(c, n);
      return;
    }
    this.#clientUsers.delete(c);
    if (this.#retiredClients.delete(c)) this.#closeClient(c);
  }

  #closeClient(c: RegistryClient): void {
    const closing = c.close().catch((err: unknown) => this.#logger.debug({ err: messageOf(err) }, `closing a replaced registry client: ${messageOf(err)}`));
    this.#closing.add(closing);
    void closing.finally(() => this.#closing.delete(closing));
  }

  // ------------------------------------------------------------------ scheduling

  /** Starts following every ref: each is checked now, then on its schedule. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const ref of this.#settings.refs) this.#addWorker(ref);
  }

  #addWorker(ref: string): void {
    const w: Worker = { ref, timer: undefined, running: undefined, runningSince: undefined, nextAt: undefined, checksDone: 0, failures: 0, installed: false, removed: false };
    this.#workers.set(ref, w);
    this.#schedule(w, 0);
  }

  #schedule(w: Worker, delayMs: number): void {
    if (w.timer) clearTimeout(w.timer);
    const delay = Math.max(0, Math.min(Math.round(delayMs), 2 ** 31 - 1));
    w.nextAt = Date.now() + delay;
    w.timer = setTimeout(() => void this.#run(w), delay);
  }

  async #run(w: Worker): Promise<void> {
    w.timer = undefined;
    w.nextAt = undefined;
    if (this.#stopping || w.removed) return;
    w.runningSince = Date.now();
    w.running = this.check(w.ref);
    const outcome = await w.running;
    w.running = undefined;
    w.runningSince = undefined;
    w.checksDone++;
    if (this.#stopping || w.removed) return;
    const s = this.#settings;
    if (outcome.result === 'error') {
      w.failures++;
      const delay = backoffDelayMs(w.failures, nominalPeriodMs(s.schedule, Date.now()), s.jitter, outcome.retryAfterMs, this.#random);
      this.#logger.info({ ref: w.ref, failures: w.failures, retryInMs: Math.round(delay) }, `next try of ${w.ref} in ${Math.round(delay / 1000)} s`);
      this.#schedule(w, delay);
    } else {
      w.failures = 0;
      this.#schedule(w, nextDelayMs(s.schedule, s.jitter, w.checksDone, Date.now(), this.#random));
    }
  }

  /**
   * Applies new settings without a restart: added refs start (checked now), removed refs stop, a new
   * schedule or jitter re-times the pending checks; a new client/indexes serve the next checks.
   */
  reconfigure(next: FollowSettings, deps: { client?: RegistryClient; indexes?: () => Promise<readonly LoadedIndex[]> } = {}): { added: string[]; removed: string[]; retimed: string[] } {
    const prev = this.#settings;
    this.#settings = next;
    if (deps.client && deps.client !== this.#client) {
      const old = this.#client;
      this.#client = deps.client;
      // Checks running on the old client finish on it; it is closed when the last one ends.
      if (this.#clientUsers.has(old)) this.#retiredClients.add(old);
      else this.#closeClient(old);
    }
    if (deps.indexes) this.#indexes = deps.indexes;
    this.#engine = this.#engineSource(next);
    if (next.stateDir !== prev.stateDir) this.#store = new StateStore(next.stateDir);
    const added: string[] = [];
    const removed: string[] = [];
    const retimed: string[] = [];
    if (!this.#started) return { added, removed, retimed };
    const wanted = new Set(next.refs);
    for (const [ref, w] of this.#workers) {
      if (wanted.has(ref)) continue;
      w.removed = true;
      if (w.timer) clearTimeout(w.timer);
      this.#workers.delete(ref);
      this.#metrics.forget(ref);
      removed.push(ref);
    }
    for (const ref of next.refs) {
      if (this.#workers.has(ref)) continue;
      this.#addWorker(ref);
      added.push(ref);
    }
    const timing = (s: FollowSettings): string => JSON.stringify([s.schedule, s.jitter]);
    if (timing(prev) !== timing(next)) {
      for (const w of this.#workers.values()) {
        if (added.includes(w.ref) || !w.timer || w.failures > 0) continue;
        this.#schedule(w, nextDelayMs(next.schedule, next.jitter, Math.max(w.checksDone, 2), Date.now(), this.#random));
        retimed.push(w.ref);
      }
    }
    return { added, removed, retimed };
  }

  /**
   * Stops: no new checks; a swap in progress is finished (never cut between two renames), a check that
   * is still downloading or validating is abandoned (its staging dir removed) within the grace time.
   */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#abort.abort();
    for (const w of this.#workers.values()) if (w.timer) clearTimeout(w.timer);
    while (this.#commits.size > 0) await Promise.allSettled([...this.#commits]);
    const running = [...this.#workers.values()].map((w) => w.running).filter((p): p is Promise<CheckOutcome> => p !== undefined);
    if (running.length > 0) {
      await Promise.race([Promise.allSettled(running), sleep(this.#stopGraceMs, undefined, { ref: false })]);
    }
    while (this.#commits.size > 0) await Promise.allSettled([...this.#commits]);
    const clients = [this.#client, ...this.#retiredClients];
    this.#retiredClients.clear();
    await Promise.allSettled([...clients.map((c) => c.close()), ...this.#closing]);
  }

  /** `--once`: one check of every ref, all at once. */
  async checkAll(): Promise<CheckOutcome[]> {
    return Promise.all(this.#settings.refs.map((ref) => this.check(ref)));
  }

  // ------------------------------------------------------------------ probes

  /** /readyz: every followed ref has been installed at least once. */
  ready(): Probe {
    if (this.#stopping) return { ok: false, detail: 'shutting down' };
    const missing = this.#settings.refs.filter((r) => !this.#workers.get(r)?.installed);
    return missing.length === 0 ? { ok: true } : { ok: false, detail: `not installed yet: ${missing.join(', ')}` };
  }

  /** /healthz: every ref has a check running or scheduled, and none is stuck. */
  healthy(): Probe {
    if (this.#stopping) return { ok: false, detail: 'shutting down' };
    const now = Date.now();
    for (const w of this.#workers.values()) {
      if (w.running && w.runningSince !== undefined && now - w.runningSince > STUCK_MS) {
        return { ok: false, detail: `check of ${w.ref} running for ${Math.round((now - w.runningSince) / 1000)} s` };
      }
      if (!w.running && !w.timer) return { ok: false, detail: `no check of ${w.ref} scheduled` };
    }
    return { ok: true };
  }

  /** Per-ref view, for logs and tests. */
  status(): { ref: string; installed: boolean; failures: number; checks: number; nextAt?: number }[] {
    return [...this.#workers.values()].map((w) => ({
      ref: w.ref,
      installed: w.installed,
      failures: w.failures,
      checks: w.checksDone,
      ...(w.nextAt !== undefined && { nextAt: w.nextAt }),
    }));
  }

  // ------------------------------------------------------------------ one check

  /** One check of `ref`, with its metrics and logs. Never throws: failures come back as `error`. */
  async check(ref: string): Promise<CheckOutcome> {
    const end = this.#metrics.checkDuration.startTimer();
    const client = this.#useClient();
    let outcome: CheckOutcome;
    try {
      outcome = await this.#check(ref, client);
    } catch (err) {
      outcome = {
        ref,
        result: 'error',
        error: err,
        message: messageOf(err),
        ...(isDiginfraError(err) && err.retryAfterMs !== undefined && { retryAfterMs: err.retryAfterMs }),
      };
      if (!(err instanceof Abandoned)) {
        this.#logger.warn({ ref, code: isDiginfraError(err) ? err.code : undefined, err: messageOf(err) }, `check of ${ref} failed: ${messageOf(err)}; the current files are kept`);
      } else {
        this.#logger.info({ ref }, messageOf(err));
      }
    } finally {
      end();
      this.#releaseClient(client);
    }
    this.#metrics.checks.inc({ ref, result: outcome.result });
    if (outcome.result !== 'error') this.#metrics.lastSuccess.set({ ref }, Date.now() / 1000);
    return outcome;
  }

  #markInstalled(ref: string, v: InstalledVersion): void {
    const w = this.#workers.get(ref);
    if (w) w.installed = true;
    this.#metrics.setInstalled(ref, v.digest, v.version);
  }

  /** registry/repository plus the tag or digest the ref asks for (bare names through the indexes). */
  async #target(ref: string): Promise<{ repo: OciReference; tag?: string; digest?: string }> {
    const parsed = parseArtifactRef(ref);
    if (parsed.kind === 'oci') {
      const r = parsed.ref;
      return { repo: { registry: r.registry, repository: r.repository }, ...(r.tag !== undefined && { tag: r.tag }), ...(r.digest !== undefined && { digest: r.digest }) };
    }
    if (!this.#indexes) throw new DiginfraError('ARTIFACT_NOT_FOUND', `"${ref}" is a name, and no index is configured to look it up`);
    const { resolveIndexedName } = await lazy.names();
    const found = resolveIndexedName(parsed.name, await this.#indexes());
    return { repo: { registry: found.ref.registry, repository: found.ref.repository }, ...(found.ref.tag !== undefined && { tag: found.ref.tag }) };
  }

  /** The digest the ref points at now: the requests listed in the file comment. */
  async #currentDigest(client: RegistryClient, target: { repo: OciReference; tag?: string; digest?: string }): Promise<{ digest: string; tag?: string }> {
    if (target.digest !== undefined) return { digest: target.digest };
    // No tag means `latest`; a floating tag (`1`, `1.2`) is kept by `repo push --add-floating-tags`
    // on the newest release of its line. Either is one HEAD; only a repository without that tag costs
    // the tag list (the highest matching version) and a HEAD of the tag chosen.
    const asked = target.tag ?? 'latest';
    if (target.tag === undefined || isFloatingTag(asked)) {
      try {
        const d = await client.resolve({ ...target.repo, tag: asked });
        return { digest: d.digest, tag: asked };
      } catch (err) {
        if (!isDiginfraError(err, 'NOT_FOUND')) throw err;
        const tag = await (await lazy.plan()).selectTag(client, target.repo, target.tag);
        if (tag === asked) throw err; // the tag list has nothing better: that 404 is the answer
        const d = await client.resolve({ ...target.repo, tag });
        return { digest: d.digest, tag };
      }
    }
    const d = await client.resolve({ ...target.repo, tag: asked });
    return { digest: d.digest, tag: asked };
  }

  async #check(ref: string, client: RegistryClient): Promise<CheckOutcome> {
    const s = this.#settings;
    const store = this.#store;
    const state = await store.read(ref);
    const current = state.current;
    const currentPresent = current !== undefined && (await filesPresent(current.dir, current.files));
    if (current && currentPresent && !this.#workers.get(ref)?.installed) this.#markInstalled(ref, current);

    const target = await this.#target(ref);
    if (target.digest !== undefined && current?.digest === target.digest && currentPresent) {
      return { ref, result: 'unchanged', digest: current.digest, version: current.version };
    }
    const { digest, tag } = await this.#currentDigest(client, target);
    if (current && current.digest === digest && currentPresent) {
      return { ref, result: 'unchanged', digest, version: current.version };
    }

    const engineFor = async (): Promise<string | undefined> => this.#engine.get();
    if (state.rejected?.digest === digest) {
      const again = await this.#worthAnotherLook(state.rejected, s, engineFor, client, { ...target.repo, digest });
      if (!again) {
        return {
          ref,
          result: 'rejected',
          digest,
          reason: state.rejected.reason as RejectReason,
          message: state.rejected.message,
          ...(state.rejected.version !== undefined && { version: state.rejected.version }),
          // Rolled back on purpose, and what it was rolled back to is in place: held, not failing.
          ...(state.rejected.reason === 'rollback' && currentPresent && { pinned: true }),
        };
      }
    }

    // A new digest: manifest + config (2 GETs), then the layers; a few refs at a time.
    return this.#updates.run(() => this.#update(ref, client, s, state, current, target, digest, tag, engineFor));
  }

  async #update(
    ref: string,
    client: RegistryClient,
    s: FollowSettings,
    state: RefState,
    current: InstalledVersion | undefined,
    target: { repo: OciReference },
    digest: string,
    tag: string | undefined,
    engineFor: () => Promise<string | undefined>,
  ): Promise<CheckOutcome> {
    if (this.#stopping) throw new Abandoned();
    const store = this.#store;
    const pinned: OciReference = { ...target.repo, ...(tag !== undefined && { tag }), digest };
    const artifact = await (await lazy.pull()).resolveArtifact(client, pinned, s.platform);
    const version = artifact.config.version;
    const label = `${artifact.config.name} ${version}`;
    const facts = { ref, oldDigest: current?.digest, oldVersion: current?.version, newDigest: digest, newVersion: version };

    // Own keys only: a type named like an Object property (`constructor`) has no directory.
    const placeable = artifact.type === RULESFILE || artifact.type === PLUGIN || Object.hasOwn(s.dirs, artifact.type);
    if (!placeable || (s.allowedTypes.length > 0 && !s.allowedTypes.includes(artifact.type))) {
      const why = !placeable
        ? `${label} is of type "${artifact.type}", and no directory is set for that type (--dir ${artifact.type}=DIR, or follow.dirs.${artifact.type})`
        : `${label} is of type "${artifact.type}", not in the allowed types (${s.allowedTypes.join(', ')})`;
      return this.#reject(state, facts, 'type_not_allowed', why, s);
    }

    if (s.verifyKeys) {
      const { loadPublicKeys, signaturesState, verifyDigest } = await lazy.cosign();
      // Read at every verification (a few small files, only for a new digest): a key replaced on disk
      // (rotated, revoked) counts from the next check on.
      const keys = loadPublicKeys(s.verifyKeys);
      // Noted before the check: a signature added meanwhile is then a change, and earns another look.
      const signatures = await signaturesState(client, artifact.ref, artifact.ref.digest);
      try {
        await verifyDigest(client, artifact.ref, artifact.ref.digest, keys);
      } catch (err) {
        if (!isDiginfraError(err, 'SIGNATURE_MISSING') && !isDiginfraError(err, 'SIGNATURE_INVALID')) throw err;
        return this.#reject(state, facts, 'signature', err.message, s, { signatures });
      }
    }

    const reqs = artifact.config.requirements ?? [];
    let engineVersion: string | undefined;
    if (reqs.length > 0) {
      engineVersion = await engineFor();
      try {
        const { warnings } = checkRequirements([{ label, requirements: reqs }], engineVersion !== undefined ? { engineVersion } : {});
        for (const w of warnings) this.#logger.warn({ ref }, w.replace('(give --engine-version or set install.engineVersion)', '(give --engine-version or --engine-versions-url, or set follow.engineVersion)'));
      } catch (err) {
        if (!isDiginfraError(err, 'REQUIREMENT_UNMET')) throw err;
        return this.#reject(state, facts, 'requirements', err.message, s, { requirements: reqs.map((r) => ({ name: r.name, version: r.version })), ...(engineVersion !== undefined && { engineVersion }) });
      }
    }

    const deps = artifact.config.dependencies ?? [];
    if (deps.length > 0) {
      const { describeUnmet, unmetDependencies } = await lazy.dependencies();
      const view = await this.#installed(s);
      const unmet = unmetDependencies(deps, view.installed);
      if (unmet.length > 0 && !view.known) {
        this.#logger.warn(
          { ref, dependencies: unmet.map((d) => d.name) },
          `${ref}: cannot check that ${label}'s dependencies are installed (${describeUnmet(unmet, view.installed)}): no lock file at ${s.installLockfiles.join(' or ')}; installing it anyway`,
        );
      } else if (unmet.length > 0) {
        const why = `${label} needs ${describeUnmet(unmet, view.installed)}; install it (diginfractl artifact install ${unmet.map((d) => `${d.name}:${d.version}`).join(' ')}) and restart the engine, and this version is installed at the next check`;
        return this.#reject(state, facts, 'dependencies', why, s, { dependencies: deps, installed: view.signature });
      }
    }

    const plugin = artifact.type === PLUGIN;
    const dir = resolve(plugin ? s.pluginsDir : artifact.type === RULESFILE ? s.rulesfilesDir : s.dirs[artifact.type]!);
    const { stageFromRegistry, swapFiles, sweepStaging } = await lazy.swap();
    const { ValidationError } = await lazy.validate();
    let stagingDir: string | undefined;
    let staged: Staged;
    try {
      staged = await stageFromRegistry(client, artifact, dir, {
        mode: plugin ? 0o755 : 0o644,
        onBytes: (n) => this.#metrics.downloadBytes.inc(n),
        ...(s.cacheDir !== undefined && { cacheDir: s.cacheDir }),
        onStaging: (path) => {
          stagingDir = path;
          this.#staging.add(path);
        },
      });
    } catch (err) {
      if (stagingDir !== undefined) this.#staging.delete(stagingDir);
      throw err;
    }
    let swap: SwapResult;
    let installed: InstalledVersion;
    try {
      // Only rules files are checked: the engine loads them; another type's format is its own.
      if (artifact.type === RULESFILE) {
        try {
          await this.#validate(staged, label, s);
        } catch (err) {
          if (err instanceof ValidationError) return await this.#reject(state, facts, err.reason, err.message, s);
          throw err;
        }
      }
      if (this.#stopping) throw new Abandoned();
      installed = {
        digest,
        manifestDigest: artifact.manifestDigest,
        name: artifact.config.name,
        version,
        type: artifact.type,
        ...(tag !== undefined && { tag }),
        dir,
        files: staged.files.map((f) => f.rel),
        modes: Object.fromEntries(staged.files.map((f) => [f.rel, f.mode])),
        installedAt: new Date().toISOString(),
      };
      await store.saveVersion(ref, digest, staged.staging, installed.files);
      const obsolete = current && resolve(current.dir) === dir ? current.files : [];
      swap = await this.#commit(dir, async () => {
        // Inside the lock: what a crash left in the dir goes (never a staging dir in use here)...
        const swept = await sweepStaging(dir, this.#staging);
        if (swept.length > 0) this.#logger.info({ ref, dir, removed: swept }, `removed ${swept.length} staging dir(s) left in ${dir} by an earlier run`);
        // ...and a rollback (another process) may have changed the state since we read it.
        const now = await store.read(ref);
        if (now.current?.digest !== current?.digest) throw new Abandoned();
        const result = await swapFiles(staged, obsolete);
        const next: RefState = {
          ...now,
          current: installed,
          ...(current && current.digest !== digest ? { previous: current } : {}),
          lastSuccess: new Date().toISOString(),
        };
        delete next.rejected;
        await store.write(next);
        return result;
      });
    } finally {
      this.#staging.delete(staged.staging);
      await removeDir(staged.staging);
    }
    const after = await store.read(ref);
    await store.pruneVersions(ref, [after.current?.digest, after.previous?.digest]).catch(() => undefined);
    this.#markInstalled(ref, installed);
    const changed = swap.placed.length > 0 || swap.removed.length > 0;
    if (changed) this.#metrics.updates.inc({ ref });
    this.#logger.info(
      { ...facts, event: changed ? 'swap' : 'adopt', dir, placed: swap.placed, unchanged: swap.unchanged, removed: swap.removed },
      changed
        ? `${ref}: ${current ? `${current.version} -> ${version}` : `installed ${version}`} (${swap.placed.length} file(s) replaced${swap.removed.length ? `, ${swap.removed.length} removed` : ''})`
        : `${ref}: ${version} recorded; the files in ${dir} were already identical`,
    );
    if (plugin && changed) {
      this.#logger.warn({ ref, dir, version }, `plugin ${label} installed in ${dir}: the engine must be restarted to load it`);
    }
    return { ref, result: changed ? 'updated' : 'unchanged', digest, version };
  }

  /** A refused digest is looked at again only when what refused it may have changed. */
  async #worthAnotherLook(r: Rejection, s: FollowSettings, engine: () => Promise<string | undefined>, client: RegistryClient, at: OciReference & { digest: string }): Promise<boolean> {
    if (r.reason === 'rollback') return false;
    if (r.reason === 'signature' && r.signatures !== undefined && s.verifyKeys) {
      // The publisher signs after pushing (cosign's usual order): a new signature is a change. One HEAD.
      const { signaturesState } = await lazy.cosign();
      if ((await signaturesState(client, at, at.digest)) !== r.signatures) return true;
    }
    if (r.reason === 'requirements' && r.requirements) {
      const now = await engine();
      return now !== r.engineVersion && requirementsMet(r.requirements, now);
    }
    if (r.reason === 'dependencies' && r.dependencies) {
      const view = await this.#installed(s);
      if (view.signature === r.installed) return false;
      const { unmetDependencies } = await lazy.dependencies();
      return unmetDependencies(r.dependencies, view.installed).length === 0 || !view.known;
    }
    return r.key !== rejectionKey(s);
  }

  /** What is installed on this node: the install lock files and the refs this agent follows. */
  async #installed(s: FollowSettings): Promise<import('./dependencies.js').InstalledView> {
    const followed: InstalledVersion[] = [];
    for (const ref of s.refs) {
      const current = (await this.#store.read(ref)).current;
      if (current) followed.push(current);
    }
    return (await lazy.dependencies()).installedArtifacts(s.installLockfiles, followed);
  }

  async #validate(staged: Staged, label: string, s: FollowSettings): Promise<void> {
    const { checkRulesFiles, isRulesYaml, runValidateCmd } = await lazy.validate();
    const yamls = staged.files.filter((f) => isRulesYaml(f.rel));
    await checkRulesFiles(yamls.map((f) => ({ path: join(staged.staging, f.rel), label: `${label}: ${f.rel}` })), { execArgv: this.#rulesCheckExecArgv });
    if (s.validateCmd === undefined) return;
    for (const f of yamls) {
      if (this.#stopping) throw new Abandoned();
      await runValidateCmd(s.validateCmd, join(staged.staging, f.rel), `${label}: ${f.rel}`, { signal: this.#abort.signal });
    }
  }

  async #reject(
    state: RefState,
    facts: { ref: string; oldDigest: string | undefined; oldVersion: string | undefined; newDigest: string; newVersion: string },
    reason: RejectReason,
    message: string,
    s: FollowSettings,
    extra: Partial<Rejection> = {},
  ): Promise<CheckOutcome> {
    this.#metrics.rejected.inc({ ref: facts.ref, reason });
    this.#logger.warn({ ...facts, event: 'reject', reason }, `${facts.ref}: not installing ${facts.newVersion} (${reason}): ${message}; keeping ${facts.oldVersion ?? 'nothing'}`);
    const rejected: Rejection = {
      digest: facts.newDigest,
      version: facts.newVersion,
      reason,
      message,
      at: new Date().toISOString(),
      key: rejectionKey(s),
      ...extra,
    };
    const fresh = await this.#store.read(facts.ref);
    if (fresh.current?.digest === state.current?.digest) await this.#store.write({ ...fresh, rejected });
    return { ref: facts.ref, result: 'rejected', digest: facts.newDigest, version: facts.newVersion, reason, message };
  }

  /** Runs `fn` (a swap and its state write) alone for `dir` in this process and under its install lock. */
  async #commit<T>(dir: string, fn: () => Promise<T>): Promise<T> {
    const key = resolve(dir);
    const prev = this.#dirQueues.get(key) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(async () => {
      if (this.#stopping) throw new Abandoned();
      const lock = await acquireDirLocks([key], { timeoutMs: this.#lockTimeoutMs });
      try {
        return await fn();
      } finally {
        await lock.release();
      }
    });
    // The bookkeeping copy never rejects: a failed swap (lock timeout, I/O error, Abandoned) is the
    // caller's to handle through `run`; an unhandled rejection here would end the process.
    const tracked: Promise<void> = run
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        this.#commits.delete(tracked);
        if (this.#dirQueues.get(key) === tracked) this.#dirQueues.delete(key);
      });
    this.#commits.add(tracked);
    this.#dirQueues.set(key, tracked);
    return run;
  }
}

/** Normalized, deduplicated refs (`ghcr.io/a/b` and `ghcr.io/a/b:latest` are one ref). Throws REF_INVALID. */
export function normalizeRefs(refs: readonly string[]): string[] {
  return [...new Set(refs.map((r) => normalizeRef(r)))];
}

/** `ghcr.io/a/b` -> `ghcr.io/a/b:latest`: the key of a ref in the state dir and in metrics labels. */
export function normalizeRef(text: string): string {
  return formatArtifactRef(parseArtifactRef(text));
}
