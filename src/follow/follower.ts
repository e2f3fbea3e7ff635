/**
 * The follow loop: every followed ref on its own timer (scheduler.ts); each check is a reconcile
 * (reconcile.ts): a manifest HEAD, and only a digest that differs from the installed one downloads
 * anything. A new version is admitted (admission.ts: type, signature, engine requirements,
 * dependencies), staged inside its target dir and validated there (YAML list, --validate-cmd), its
 * files kept in the state dir, then swapped in (swap.ts) under the install lock of the target dir.
 * Anything that refuses it leaves the live files exactly as they were.
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
import { isDiginfraError, messageOf } from '../errors.js';
import type { LoadedIndex } from '../indexes/index.js';
import type { Logger } from '../log/index.js';
import type { FollowMetrics, Probe } from '../metrics/index.js';
import type { RegistryClient } from '../registry/index.js';
import { engineVersionSource, type EngineVersionSource } from './engine-version.js';
import { LoopWatch, type LoopWatchOptions } from './liveness.js';
import { reconcile, type CheckContext, type SignatureDeps } from './reconcile.js';
import type { Random } from './schedule.js';
import { Abandoned, Scheduler } from './scheduler.js';
import { StateStore } from './state.js';
import type { CheckOutcome, FollowSettings } from './types.js';

export { normalizeRef, normalizeRefs } from './refs.js';
export { MAX_CONCURRENT_UPDATES } from './scheduler.js';
export { isFailure, type CheckOutcome, type FollowSettings } from './types.js';

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
  /** The least time without progress that makes a check stuck for /healthz (default 5 min, liveness.ts). */
  minStuckMs?: number;
  /** What /healthz counts as a stalled event loop (liveness.ts). */
  loopWatch?: LoopWatchOptions;
  /** What verifying signatures needs: the trust root, and the indexes whose policies apply (see SignatureDeps). */
  signatures?: SignatureDeps;
}

function engineSource(s: FollowSettings, logger: Logger): EngineVersionSource {
  return engineVersionSource({
    ...(s.engineVersion !== undefined && { version: s.engineVersion }),
    ...(s.engineVersionsUrl !== undefined && { url: s.engineVersionsUrl }),
    ...(s.engineVersionsTls?.caFile !== undefined && { caFile: s.engineVersionsTls.caFile }),
    ...(s.engineVersionsTls?.insecure === true && { insecure: true }),
    ...(s.engineVersionFallback !== undefined && {
      fallback: s.engineVersionFallback,
      onFallback: (err: unknown, version: string, from: string) =>
        logger.warn(
          { event: 'engine-version-fallback', url: s.engineVersionsUrl, version, from, err: messageOf(err) },
          `cannot read the engine version yet (${messageOf(err)}); checking requirements against ${version} (${from})`,
        ),
    }),
  });
}

export class Follower {
  #settings: FollowSettings;
  #client: RegistryClient;
  #indexes: (() => Promise<readonly LoadedIndex[]>) | undefined;
  #engine: EngineVersionSource;
  #signatures: SignatureDeps | undefined;
  #store: StateStore;
  readonly #logger: Logger;
  readonly #metrics: FollowMetrics;
  readonly #stopGraceMs: number;
  readonly #scheduler: Scheduler;
  readonly #rulesCheckExecArgv: readonly string[];
  readonly #loop: LoopWatch;
  /** Checks running on each client: a client replaced by reconfigure() is closed after its last one. */
  readonly #clientUsers = new Map<RegistryClient, number>();
  /** Replaced clients that still have checks running on them. */
  readonly #retiredClients = new Set<RegistryClient>();
  /** Closes of retired clients in progress (stop() waits for them). */
  readonly #closing = new Set<Promise<void>>();
  /** Staging dirs this process is using: never swept as a crash's leftovers. */
  readonly #staging = new Set<string>();
  #started = false;
  /** The engine version is unknown: said once per run (by the first version with an engine requirement). */
  #engineUnknownSaid = false;

  constructor(settings: FollowSettings, deps: FollowerDeps) {
    this.#settings = settings;
    this.#client = deps.client;
    this.#indexes = deps.indexes;
    this.#logger = deps.logger;
    this.#metrics = deps.metrics;
    this.#stopGraceMs = deps.stopGraceMs ?? 5_000;
    this.#engine = engineSource(settings, deps.logger);
    this.#rulesCheckExecArgv = deps.rulesCheckExecArgv ?? [];
    this.#loop = new LoopWatch(deps.loopWatch);
    this.#signatures = deps.signatures;
    this.#store = new StateStore(settings.stateDir);
    this.#scheduler = new Scheduler({
      check: (ref) => this.check(ref),
      timing: () => this.#settings,
      random: deps.random ?? Math.random,
      logger: deps.logger,
      lockTimeoutMs: deps.lockTimeoutMs ?? 60_000,
      ...(deps.minStuckMs !== undefined && { minStuckMs: deps.minStuckMs }),
    });
  }

  get settings(): FollowSettings {
    return this.#settings;
  }

  get store(): StateStore {
    return this.#store;
  }

  // ------------------------------------------------------------------ registry clients

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

  // ------------------------------------------------------------------ lifecycle

  /** Starts following every ref: each is checked now, then on its schedule. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#loop.start();
    for (const ref of this.#settings.refs) this.#scheduler.add(ref);
  }

  /**
   * Applies new settings without a restart: added refs start (checked now), removed refs stop, a new
   * schedule or jitter re-times the pending checks; a new client/indexes serve the next checks.
   */
  reconfigure(next: FollowSettings, deps: { client?: RegistryClient; indexes?: () => Promise<readonly LoadedIndex[]>; signatures?: SignatureDeps } = {}): { added: string[]; removed: string[]; retimed: string[] } {
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
    if (deps.signatures) this.#signatures = deps.signatures;
    this.#engine = engineSource(next, this.#logger);
    if (next.stateDir !== prev.stateDir) this.#store = new StateStore(next.stateDir);
    if (!this.#started) return { added: [], removed: [], retimed: [] };
    const wanted = new Set(next.refs);
    const removed = this.#scheduler.refs().filter((ref) => !wanted.has(ref));
    for (const ref of removed) {
      this.#scheduler.remove(ref);
      this.#metrics.forget(ref);
    }
    const following = new Set(this.#scheduler.refs());
    const added: string[] = [];
    for (const ref of next.refs) {
      if (following.has(ref)) continue;
      following.add(ref);
      this.#scheduler.add(ref);
      added.push(ref);
    }
    const timing = (s: FollowSettings): string => JSON.stringify([s.schedule, s.jitter]);
    const retimed = timing(prev) !== timing(next) ? this.#scheduler.retime(added) : [];
    return { added, removed, retimed };
  }

  /**
   * Stops: no new checks; a swap in progress is finished (never cut between two renames), a check that
   * is still downloading or validating is abandoned (its staging dir removed) within the grace time.
   */
  async stop(): Promise<void> {
    if (this.#scheduler.stopping) return;
    this.#loop.stop();
    await this.#scheduler.stop(this.#stopGraceMs);
    const clients = [this.#client, ...this.#retiredClients];
    this.#retiredClients.clear();
    await Promise.allSettled([...clients.map((c) => c.close()), ...this.#closing]);
  }

  /** `--once`: one check of every ref, all at once. */
  async checkAll(): Promise<CheckOutcome[]> {
    return Promise.all(this.#settings.refs.map((ref) => this.check(ref)));
  }

  // ------------------------------------------------------------------ probes

  /** /readyz: the files of every followed ref are in place, or its first check has ended (scheduler.ts). */
  ready(): Probe {
    return this.#scheduler.ready(this.#settings.refs);
  }

  /** /healthz: not stuck: no check without progress for several intervals, no stalled event loop (liveness.ts). */
  healthy(): Probe {
    const stall = this.#loop.stall();
    if (stall && !this.#scheduler.stopping) {
      return { ok: false, detail: `the event loop was blocked for ${(stall.lagMs / 1000).toFixed(1)} s, ${Math.round((Date.now() - stall.at) / 1000)} s ago` };
    }
    return this.#scheduler.healthy();
  }

  /** Per-ref view, for logs and tests. */
  status(): { ref: string; installed: boolean; failures: number; checks: number; nextAt?: number }[] {
    return this.#scheduler.status();
  }

  // ------------------------------------------------------------------ one check

  /** One check of `ref`, with its metrics and logs. Never throws: failures come back as `error`. */
  async check(ref: string): Promise<CheckOutcome> {
    const end = this.#metrics.checkDuration.startTimer();
    const client = this.#useClient();
    let outcome: CheckOutcome;
    try {
      outcome = await reconcile(this.#context(ref, client));
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
      this.#scheduler.checkEnded(ref);
    }
    this.#metrics.checks.inc({ ref, result: outcome.result });
    // A ref removed while its check ran keeps no gauges (its series went with it).
    if (this.#settings.refs.includes(ref)) this.#metrics.recordCheck(ref, outcome.result);
    return outcome;
  }

  #context(ref: string, client: RegistryClient): CheckContext {
    return {
      ref,
      settings: this.#settings,
      client,
      store: this.#store,
      indexes: this.#indexes,
      engineVersion: () => this.#engine.get(),
      engineUnknownSaid: () => this.#engineUnknownSaid || !(this.#engineUnknownSaid = true),
      logger: this.#logger,
      metrics: this.#metrics,
      scheduler: this.#scheduler,
      staging: this.#staging,
      rulesCheckExecArgv: this.#rulesCheckExecArgv,
      ...(this.#signatures !== undefined && { signatures: this.#signatures }),
    };
  }
}
