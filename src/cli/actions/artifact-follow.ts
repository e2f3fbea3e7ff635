/**
 * `diginfractl artifact follow [REF...]`: the sync agent (src/follow). Flags over the `follow` section
 * of the config; with no REF, `follow.refs`. Runs until SIGTERM/SIGINT, reloading the config file when
 * it changes; `--once` checks every ref once and exits (1 when any check failed or refused a new
 * version; a ref held by `artifact rollback` is not a failure).
 */
import { loadConfig, type LoadConfigOptions, type LoadedConfig, cacheRoot, indexCredentialsPath, type DiginfraConfig } from '../../config/index.js';
import { DiginfraError, messageOf } from '../../errors.js';
import {
  Abandoned,
  checkFlagConflicts,
  effectiveFollow,
  Follower,
  isFailure,
  sameDependentFiles,
  watchConfigFile,
  watchDependentFiles,
  type CheckOutcome,
  type ConfigWatcher,
  type DependencyHandlers,
  type DependentFiles,
  type EffectiveFollow,
  type FollowFlags,
  type SignatureDeps,
} from '../../follow/index.js';
import type { LoadedIndex } from '../../indexes/index.js';
import { recoverInterruptedChanges } from '../../install/index.js';
import { createFollowMetrics, type FollowMetrics, parseListenAddr, startOpsServer, type OpsServer } from '../../metrics/index.js';
import { createRegistryClient, credentialStoreFor, registryFiles, restrictReads, type CredentialStore, type RegistryClient } from '../../registry/index.js';
import { childExecArgv } from '../process-tuning.js';
import { outputFormat, type CliContext } from '../run.js';
import { registryFlags, type RegistryFlagOptions } from '../session.js';
import { policyIndexes, trustFor, UNVERIFIED_WARNING } from '../verification.js';

export interface FollowCliFlags extends FollowFlags, RegistryFlagOptions {
  once?: boolean;
  output?: string;
}

/** Indexes are read from their local cache; re-read at most this often (an `index update` meanwhile). */
const INDEX_TTL_MS = 10 * 60_000;

function indexLoader(ctx: CliContext, config: DiginfraConfig, configPath: string): () => Promise<readonly LoadedIndex[]> {
  let memo: Promise<LoadedIndex[]> | undefined;
  let at = 0;
  return () => {
    if (!memo || Date.now() - at > INDEX_TTL_MS) {
      at = Date.now();
      // Loaded on first use: an agent following registry refs only never needs the index code.
      const loading = import('../../indexes/resolve-name.js').then(({ commandLoadOptions, loadIndexes }) =>
        loadIndexes(config, cacheRoot(config), commandLoadOptions(() => ctx.logger, indexCredentialsPath(configPath))),
      );
      memo = loading;
      loading.catch(() => {
        if (memo === loading) memo = undefined;
      });
    }
    return memo;
  };
}

/** The registry client of the agent, and the credential store it reads (told when its files change). */
interface AgentRegistry {
  client: RegistryClient;
  store: CredentialStore;
}

/** `shutdown` aborts every request of the client when the agent stops (SIGTERM/SIGINT). */
function registryFor(config: DiginfraConfig, flags: FollowCliFlags, metrics: FollowMetrics, shutdown: AbortSignal, log: () => CliContext['logger']): AgentRegistry {
  const store = credentialStoreFor(config.registry);
  // The agent's timeouts (registry.timeouts, else AGENT_TIMEOUTS: 20 s of silence, 2 tries); a 429
  // comes straight back to the follower, which waits for Retry-After on its own schedule instead of
  // holding the check open.
  const client = createRegistryClient(config.registry, registryFlags(flags), {
    store,
    onResponse: (info) => metrics.onResponse(info),
    role: 'agent',
    retry: { maxRetryAfterMs: 0 },
    signal: shutdown,
    log,
  });
  // registry.allowed: nothing outside it is followed, whether named, typed or served by a mirror.
  return { client: restrictReads(client, config.registry), store };
}

/** The files the agent depends on besides its config (src/follow/watch-dependencies.ts). */
function dependentFiles(eff: EffectiveFollow, flags: FollowCliFlags, store: CredentialStore): DependentFiles {
  const { credentials, ca } = registryFiles(eff.config.registry, registryFlags(flags), store);
  // Verification material: the key files and a given trusted_root.json.
  const trust = [...(eff.settings.verifyKeys ?? []), ...(eff.settings.trustedRoot !== undefined ? [eff.settings.trustedRoot] : [])];
  return { credentials, ca, trust };
}

/** How long the agent keeps a Sigstore trust root before loading it again (a TUF refresh brings rotated keys). */
const TRUST_TTL_MS = 6 * 60 * 60_000;

/**
 * What verifying needs: the trust root (a given trusted_root.json is read now, so a bad one fails the
 * start or the reload) and the cached indexes whose policies apply (re-read as often as the names').
 */
async function signatureDeps(ctx: CliContext, eff: EffectiveFollow, configPath: string): Promise<SignatureDeps> {
  const trust = await trustFor(ctx, eff.config, { ...(eff.settings.trustedRoot !== undefined && { trustedRoot: eff.settings.trustedRoot }) }, TRUST_TTL_MS);
  if (eff.settings.trustedRoot !== undefined && eff.settings.verification === 'on') await trust();
  return { trust, indexes: policyIndexes(ctx, { config: eff.config, path: configPath }, INDEX_TTL_MS) };
}

function printOutcomes(ctx: CliContext, format: 'table' | 'json', outcomes: CheckOutcome[]): void {
  if (format === 'json') {
    ctx.out(JSON.stringify(outcomes.map(({ error: _e, ...o }) => o), null, 2));
    return;
  }
  for (const o of outcomes) {
    const what = [o.version, o.digest].filter(Boolean).join(' ');
    // One line per ref, whatever the message (a multi-line error is folded).
    const message = o.result === 'error' || o.result === 'rejected' ? `: ${(o.message ?? '').replace(/\s*\n\s*/g, ' ')}` : '';
    ctx.out(`${o.ref}: ${o.result}${o.reason ? ` (${o.reason}${o.pinned ? ', held' : ''})` : ''}${what ? ` ${what}` : ''}${message}`);
  }
}

/** How often the idle agent collects its whole heap (see compactHeapPeriodically). */
export const HEAP_COMPACT_EVERY_MS = 30_000;

/**
 * The agent allocates a little for every check; with its 1 MB young generation (process-tuning.ts),
 * part of that outlives a scavenge and piles up in the old generation, which V8 collects only when it
 * has grown a lot (idle RSS crept up ~5 MB in 5 minutes). A full collection every 30 s (a few ms on a
 * ~12 MB heap) keeps it at what is live. `gc` exists when Node runs with --expose-gc, as the agent
 * re-executes itself (process-tuning.ts); otherwise this does nothing. Only this thread's heap: validation workers are
 * left alone.
 */
export function compactHeapPeriodically(): NodeJS.Timeout {
  const gc = (globalThis as { gc?: () => void }).gc;
  return setInterval(() => gc?.(), HEAP_COMPACT_EVERY_MS).unref();
}

/**
 * Reads the verification keys now, so a missing or bad key file fails the start (or the reload), not
 * each check; their fingerprints go into the settings, so a key file whose contents changed (a rotated
 * or revoked key) is a config change.
 */
async function checkVerifyKeys(eff: EffectiveFollow): Promise<void> {
  if (!eff.settings.verifyKeys) return;
  const { fingerprintOf, loadPublicKeys } = await import('../../signature/cosign.js');
  eff.settings.verifyKeyFingerprints = loadPublicKeys(eff.settings.verifyKeys).map(fingerprintOf);
}

/**
 * Before anything else: a swap (or an install) that a kill cut short in follow's dirs left its intent
 * record there; it is completed or undone, so each dir holds one version again, the one the state
 * (or the install's lock file) records.
 */
async function recoverSwaps(ctx: CliContext, eff: EffectiveFollow): Promise<void> {
  const { rulesfilesDir, pluginsDir, dirs } = eff.settings;
  const settled = await recoverInterruptedChanges([rulesfilesDir, pluginsDir, ...Object.values(dirs)], {
    timeoutMs: 60_000,
    onWait: (dir) => ctx.logger.warn(`waiting for another install or swap to finish in ${dir}`),
  });
  for (const { outcome, record } of settled) {
    ctx.logger.warn(
      { event: 'recovered', outcome, interruptedPid: record.pid, startedAt: record.startedAt, changes: record.changes.length },
      `a swap or install killed while moving files (pid ${record.pid} on ${record.host}, started ${record.startedAt}) was ${outcome === 'completed' ? 'completed' : 'undone'}: ${record.changes.length} file change(s) ${outcome === 'completed' ? 'finished' : 'put back'}`,
    );
  }
}

export async function runArtifactFollow(ctx: CliContext, refArgs: string[], flags: FollowCliFlags): Promise<void> {
  checkFlagConflicts(flags);
  const format = outputFormat(flags.output);
  const loadOpts: LoadConfigOptions = ctx.configPath === undefined ? {} : { path: ctx.configPath };
  const loaded = await loadConfig(loadOpts);
  for (const w of loaded.warnings) ctx.logger.warn(w);
  const eff = effectiveFollow(loaded, flags, refArgs);
  await recoverSwaps(ctx, eff);
  await checkVerifyKeys(eff);
  if (eff.settings.verification === 'off') ctx.logger.warn({ event: 'unverified' }, UNVERIFIED_WARNING);
  const metrics = createFollowMetrics();
  // Aborted at SIGTERM/SIGINT: requests in flight (a manifest, a stalled blob) stop at once.
  const shutdown = new AbortController();
  let registry = registryFor(eff.config, flags, metrics, shutdown.signal, () => ctx.logger);
  const follower = new Follower(eff.settings, {
    logger: ctx.logger,
    metrics,
    client: registry.client,
    indexes: indexLoader(ctx, eff.config, loaded.path),
    rulesCheckExecArgv: childExecArgv(process.execArgv),
    signatures: await signatureDeps(ctx, eff, loaded.path),
  });

  if (flags.once) {
    if (eff.settings.refs.length === 0) {
      throw new DiginfraError('USAGE', 'nothing to follow: give one or more references, or list them under follow.refs in the config', { hint: `config file: ${loaded.path}` });
    }
    const outcomes = await follower.checkAll();
    await follower.stop();
    printOutcomes(ctx, format, outcomes);
    // A ref held on the version `artifact rollback` put back is where it was meant to be: not a failure.
    if (outcomes.some(isFailure)) process.exitCode = 1;
    return;
  }

  // Listen for SIGTERM/SIGINT from here on: a signal during start-up stops the agent right after it.
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      // A second signal while finishing: say so, and keep finishing (a swap is a few renames).
      const again = (s: NodeJS.Signals): void => ctx.logger.warn(`${s}: still finishing the current swap`);
      process.on('SIGTERM', again);
      process.on('SIGINT', again);
      resolve(sig);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
  const ops = { registry: metrics.registry, healthy: () => follower.healthy(), ready: () => follower.ready() };
  const listening = (s: OpsServer): void =>
    ctx.logger.info({ event: 'listening', address: s.host, port: s.port }, `metrics on http://${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}/metrics (/healthz, /readyz)`);
  let server: OpsServer | undefined;
  if (eff.metricsAddr !== undefined) {
    server = await startOpsServer(eff.metricsAddr, ops);
    listening(server);
  }
  /**
   * Moves the metrics server to `addr` (undefined: off), for a config reload. The new one listens
   * before the old one closes, so probes never miss; when both want the same port, the old one closes
   * first, and comes back if the new one cannot listen. Returns the address now served.
   */
  const moveServer = async (addr: string | undefined, from: string | undefined): Promise<string | undefined> => {
    if (addr === undefined) {
      await server?.close();
      server = undefined;
      ctx.logger.info({ event: 'metrics-off' }, 'follow.metricsAddr removed: metrics server stopped');
      return undefined;
    }
    try {
      const next = await startOpsServer(addr, ops);
      await server?.close();
      server = next;
    } catch (err) {
      // startOpsServer wraps the socket error; the fallback is only for the port this server holds.
      const inUse = ((err as { cause?: NodeJS.ErrnoException }).cause?.code ?? (err as NodeJS.ErrnoException).code) === 'EADDRINUSE';
      if (!inUse || server === undefined || parseListenAddr(addr).port !== server.port) throw err;
      await server.close();
      server = undefined;
      try {
        server = await startOpsServer(addr, ops);
      } catch (again) {
        if (from !== undefined) server = await startOpsServer(from, ops).catch(() => undefined);
        throw again;
      }
    }
    listening(server);
    return addr;
  };
  if (eff.settings.refs.length === 0) ctx.logger.warn(`no refs to follow yet; add them under follow.refs in ${loaded.path}`);
  ctx.logger.info(
    { event: 'start', refs: eff.settings.refs, schedule: eff.settings.schedule, jitter: eff.settings.jitter, stateDir: eff.settings.stateDir, config: loaded.path },
    `following ${eff.settings.refs.length} ref(s)`,
  );
  follower.start();
  const compactor = compactHeapPeriodically();

  let current: EffectiveFollow = eff;
  // Rotated credentials, CA bundles and verification keys apply without a restart.
  const onDependency: DependencyHandlers = {
    credentials: () => registry.store.changed(),
    ca: (changed) => void registry.client.transport.reloadTls(changed),
    trust: async () => {
      const next = { ...current, settings: { ...current.settings } };
      await checkVerifyKeys(next);
      // A rotated trusted_root.json is read again now (a bad one fails here, and the old one stays).
      follower.reconfigure(next.settings, { signatures: await signatureDeps(ctx, next, loaded.path) });
      current = next;
    },
  };
  let dependencies: { files: DependentFiles; watch: ConfigWatcher | undefined } | undefined;
  const watchDependencies = async (): Promise<void> => {
    const files = dependentFiles(current, flags, registry.store);
    if (dependencies && sameDependentFiles(files, dependencies.files)) return;
    await dependencies?.watch?.close();
    const watch = await watchDependentFiles(files, onDependency, ctx.logger).catch((err: unknown) => {
      ctx.logger.warn(`cannot watch the credential, CA and key files (their changes need a restart): ${messageOf(err)}`);
      return undefined;
    });
    dependencies = { files, watch };
  };
  const reload = async (): Promise<void> => {
    let next: EffectiveFollow;
    let nextLoaded: LoadedConfig;
    let signatures: SignatureDeps;
    try {
      nextLoaded = await loadConfig(loadOpts);
      next = effectiveFollow(nextLoaded, flags, refArgs);
      await checkVerifyKeys(next);
      signatures = await signatureDeps(ctx, next, nextLoaded.path);
    } catch (err) {
      ctx.logger.error({ event: 'config-invalid', config: loaded.path, err: messageOf(err) }, `config ${loaded.path} is not valid; keeping the last good one: ${messageOf(err)}`);
      return;
    }
    for (const w of nextLoaded.warnings) ctx.logger.warn(w);
    if (next.settings.verification === 'off' && current.settings.verification !== 'off') ctx.logger.warn({ event: 'unverified' }, UNVERIFIED_WARNING);
    const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
    const registryChanged = !same(current.config.registry, next.config.registry);
    const indexesChanged = !same(current.config.indexes, next.config.indexes) || current.config.cacheDir !== next.config.cacheDir;
    if (same(current.settings, next.settings) && !registryChanged && !indexesChanged && next.metricsAddr === current.metricsAddr) {
      ctx.logger.debug(`config ${loaded.path} changed, but nothing follow uses`);
      return;
    }
    let metricsAddr = current.metricsAddr;
    if (next.metricsAddr !== current.metricsAddr) {
      try {
        metricsAddr = await moveServer(next.metricsAddr, current.metricsAddr);
      } catch (err) {
        ctx.logger.error({ event: 'metrics-move-failed', address: next.metricsAddr, err: messageOf(err) }, `cannot serve metrics on ${next.metricsAddr}: ${messageOf(err)}; ${server ? `still on ${current.metricsAddr}` : 'metrics are off'}`);
        if (!server) metricsAddr = undefined;
      }
    }
    if (registryChanged) registry = registryFor(next.config, flags, metrics, shutdown.signal, () => ctx.logger);
    const change = follower.reconfigure(next.settings, {
      ...(registryChanged && { client: registry.client }),
      ...(indexesChanged && { indexes: indexLoader(ctx, next.config, nextLoaded.path) }),
      // Re-read indexes (an index update), and a trusted root that may have changed on disk.
      signatures,
    });
    ctx.logger.info({ event: 'config-reloaded', config: loaded.path, ...change, refs: next.settings.refs }, `config reloaded: ${change.added.length} ref(s) added, ${change.removed.length} removed${change.retimed.length ? `, ${change.retimed.length} re-timed` : ''}`);
    current = { ...next, metricsAddr };
    await watchDependencies();
  };
  await watchDependencies();
  let watcher: ConfigWatcher | undefined;
  try {
    watcher = await watchConfigFile(loaded.path, reload, { onError: (err) => ctx.logger.warn(`watching ${loaded.path}: ${messageOf(err)}`) });
  } catch (err) {
    ctx.logger.warn(`cannot watch ${loaded.path} (config changes need a restart): ${messageOf(err)}`);
  }

  const signal = await stopSignal;
  ctx.logger.info({ event: 'stop', signal }, `${signal}: stopping (a swap in progress is finished first)`);
  clearInterval(compactor);
  await watcher?.close();
  await dependencies?.watch?.close();
  // A swap in progress makes no request: it is finished; a download or a check is abandoned.
  shutdown.abort(new Abandoned());
  await follower.stop();
  await server?.close();
  ctx.logger.info({ event: 'stopped' }, 'stopped');
  process.exitCode = 0;
  // Anything still holding the loop open (a socket in a slow close) must not keep the agent alive.
  setTimeout(() => process.exit(0), 2_000).unref();
}
