/**
 * `diginfractl artifact follow [REF...]`: the sync agent (src/follow). Flags over the `follow` section
 * of the config; with no REF, `follow.refs`. Runs until SIGTERM/SIGINT, reloading the config file when
 * it changes; `--once` checks every ref once and exits (1 when any check failed or refused a new
 * version; a ref held by `artifact rollback` is not a failure).
 */
import { loadConfig, type LoadConfigOptions, type LoadedConfig } from '../../config/load.js';
import { cacheRoot, indexCredentialsPath } from '../../config/paths.js';
import type { DiginfraConfig } from '../../config/types.js';
import { DiginfraError, messageOf } from '../../errors.js';
import { checkFlagConflicts, effectiveFollow, Follower, isFailure, watchConfigFile, type CheckOutcome, type ConfigWatcher, type EffectiveFollow, type FollowFlags } from '../../follow/index.js';
import type { LoadedIndex } from '../../indexes/resolve-name.js';
import { createFollowMetrics, type FollowMetrics } from '../../metrics/follow-metrics.js';
import { parseListenAddr, startOpsServer, type OpsServer } from '../../metrics/server.js';
import { createRegistryClient, type RegistryClient } from '../../registry/index.js';
import { childExecArgv } from '../process-tuning.js';
import { outputFormat, type CliContext } from '../run.js';
import { registryFlags, type RegistryFlagOptions } from '../session.js';

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

function clientFor(config: DiginfraConfig, flags: FollowCliFlags, metrics: FollowMetrics, log: () => CliContext['logger']): RegistryClient {
  // One quick retry of a dropped connection or 5xx; a 429 comes straight back to the follower, which
  // waits for Retry-After on its own schedule instead of holding the check open.
  return createRegistryClient(config.registry, registryFlags(flags), {
    onResponse: (info) => metrics.onResponse(info),
    retry: { attempts: 2, maxRetryAfterMs: 0 },
    log,
  });
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

export async function runArtifactFollow(ctx: CliContext, refArgs: string[], flags: FollowCliFlags): Promise<void> {
  checkFlagConflicts(flags);
  const format = outputFormat(flags.output);
  const loadOpts: LoadConfigOptions = ctx.configPath === undefined ? {} : { path: ctx.configPath };
  const loaded = await loadConfig(loadOpts);
  for (const w of loaded.warnings) ctx.logger.warn(w);
  const eff = effectiveFollow(loaded, flags, refArgs);
  await checkVerifyKeys(eff);
  const metrics = createFollowMetrics();
  const follower = new Follower(eff.settings, {
    logger: ctx.logger,
    metrics,
    client: clientFor(eff.config, flags, metrics, () => ctx.logger),
    indexes: indexLoader(ctx, eff.config, loaded.path),
    rulesCheckExecArgv: childExecArgv(process.execArgv),
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
  const reload = async (): Promise<void> => {
    let next: EffectiveFollow;
    let nextLoaded: LoadedConfig;
    try {
      nextLoaded = await loadConfig(loadOpts);
      next = effectiveFollow(nextLoaded, flags, refArgs);
      await checkVerifyKeys(next);
    } catch (err) {
      ctx.logger.error({ event: 'config-invalid', config: loaded.path, err: messageOf(err) }, `config ${loaded.path} is not valid; keeping the last good one: ${messageOf(err)}`);
      return;
    }
    for (const w of nextLoaded.warnings) ctx.logger.warn(w);
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
    const change = follower.reconfigure(next.settings, {
      ...(registryChanged && { client: clientFor(next.config, flags, metrics, () => ctx.logger) }),
      ...(indexesChanged && { indexes: indexLoader(ctx, next.config, nextLoaded.path) }),
    });
    ctx.logger.info({ event: 'config-reloaded', config: loaded.path, ...change, refs: next.settings.refs }, `config reloaded: ${change.added.length} ref(s) added, ${change.removed.length} removed${change.retimed.length ? `, ${change.retimed.length} re-timed` : ''}`);
    current = { ...next, metricsAddr };
  };
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
  await follower.stop();
  await server?.close();
  ctx.logger.info({ event: 'stopped' }, 'stopped');
  process.exitCode = 0;
  // Anything still holding the loop open (a socket in a slow close) must not keep the agent alive.
  setTimeout(() => process.exit(0), 2_000).unref();
}
