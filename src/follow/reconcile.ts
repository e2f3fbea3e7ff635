/**
 * One check of a followed ref, the way Flux's source controller reconciles:
 *
 *   check   what the ref points at now (one HEAD); the digest installed and in place: done
 *   admit   the new version's config against the settings (admission.ts); a refusal is recorded
 *   stage   its layers into a staging dir inside the target dir, and the staged files validated
 *   swap    a copy kept in the state dir, then one rename per file under the dir's install lock (swap.ts)
 *   record  the state, metrics and logs
 *
 * A failure throws (the follower counts it as an `error`); the live files are then as they were.
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { PLUGIN, RULESFILE, type ResolvedArtifact } from '../artifact/index.js';
import type { LoadedIndex } from '../indexes/index.js';
import type { Logger } from '../log/index.js';
import type { FollowMetrics, RejectReason } from '../metrics/index.js';
import type { OciReference } from '../reference/index.js';
import type { RegistryClient } from '../registry/index.js';
import type { TrustRoot } from '../signature/index.js';
import { removeDir } from '../util/index.js';
import type { AdmissionIo, Candidate, Refusal, SignatureIo, Verdict } from './admission.js';
import type { InstalledView } from './dependencies.js';
import { currentDigest, resolveTarget, type Target } from './refs.js';
import { Abandoned, type Scheduler } from './scheduler.js';
import { filesPresent, type InstalledVersion, type RefState, type Rejection, type StateStore } from './state.js';
import type { Staged, SwapResult } from './swap.js';
import type { CheckOutcome, FollowSettings } from './types.js';

// Loaded on first use: an agent whose refs are all current (the steady state, and every restart)
// never loads the archive, YAML, admission, dependency or signature code, and stays small
// (bench/follow-rss.mjs).
const lazy = {
  pull: () => import('../artifact/pull.js'),
  swap: () => import('./swap.js'),
  admission: () => import('./admission.js'),
  dependencies: () => import('./dependencies.js'),
  signature: () => import('../signature/index.js'),
};

/** What one check works with: the follower's settings and parts as they were when it started. */
export interface CheckContext {
  ref: string;
  /** A reconfigure meanwhile applies from the next check on. */
  settings: FollowSettings;
  client: RegistryClient;
  store: StateStore;
  /** The configured indexes, for bare names (`k8saudit-rules:1`). */
  indexes: (() => Promise<readonly LoadedIndex[]>) | undefined;
  /** The running engine's version (fixed, or read from the versions URL), for requirements. */
  engineVersion: () => Promise<string | undefined>;
  /** False the first time this run says the engine version is unknown, true after. */
  engineUnknownSaid?: () => boolean;
  logger: Logger;
  metrics: FollowMetrics;
  scheduler: Pick<Scheduler, 'signal' | 'inUpdateSlot' | 'commit' | 'markInstalled' | 'isInstalled' | 'progress'>;
  /** Staging dirs this process is using: never swept as a crash's leftovers. */
  staging: Set<string>;
  /** Node's options for the rules check's child process (the CLI passes its own, less the agent's lean flags). */
  rulesCheckExecArgv?: readonly string[];
  /** What verifying signatures needs (the trust root, the policies' indexes); without it, keys alone can be checked. */
  signatures?: SignatureDeps;
}

/** What verifying signatures needs besides the settings. */
export interface SignatureDeps {
  /** The Sigstore trust root for keyless policies, loaded on first need. */
  trust: () => Promise<TrustRoot>;
  /** The indexes whose signature policies apply: their cached copies (never a fetch per check). */
  indexes: () => Promise<readonly LoadedIndex[]>;
}

/** A digest the ref points at that is not the one installed (or whose files are gone). */
interface Change {
  state: RefState;
  target: Target;
  digest: string;
  tag?: string;
}

/** The old and new version, for logs. */
interface Facts {
  ref: string;
  oldDigest: string | undefined;
  oldVersion: string | undefined;
  newDigest: string;
  newVersion: string;
}

export async function reconcile(ctx: CheckContext): Promise<CheckOutcome> {
  const seen = await check(ctx);
  if ('done' in seen) return seen.done;
  // A new digest: manifest + config (2 GETs), then the layers; a few refs at a time.
  return ctx.scheduler.inUpdateSlot(() => update(ctx, seen.change));
}

/** The cheap part: what the ref points at now, against what is installed and what was refused. */
async function check(ctx: CheckContext): Promise<{ done: CheckOutcome } | { change: Change }> {
  const { ref, store } = ctx;
  const state = await store.read(ref);
  const current = state.current;
  const currentPresent = current !== undefined && (await filesPresent(current.dir, current.files));
  if (!ctx.scheduler.isInstalled(ref)) {
    // For /readyz, before any request: the files are in place when follow's state or install's lock
    // file says so (an init container's install that this agent has not recorded yet).
    if (current && currentPresent) markInstalled(ctx, current);
    else if (await (await lazy.dependencies()).placedByInstall(ctx.settings.installLockfiles, ref)) ctx.scheduler.markInstalled(ref);
  }

  const target = await resolveTarget(ref, ctx.indexes);
  if (target.digest !== undefined && current?.digest === target.digest && currentPresent) {
    return { done: { ref, result: 'unchanged', digest: current.digest, version: current.version } };
  }
  const { digest, tag } = await currentDigest(ctx.client, target);
  if (current && current.digest === digest && currentPresent) {
    return { done: { ref, result: 'unchanged', digest, version: current.version } };
  }

  const rejected = state.rejected;
  if (rejected?.digest === digest) {
    const { worthAnotherLook } = await lazy.admission();
    if (!(await worthAnotherLook(rejected, ctx.settings, admissionIo(ctx, { ...target.repo, digest })))) {
      return {
        done: {
          ref,
          result: 'rejected',
          digest,
          reason: rejected.reason as RejectReason,
          message: rejected.message,
          ...(rejected.version !== undefined && { version: rejected.version }),
          // Rolled back on purpose, and what it was rolled back to is in place: held, not failing.
          ...(rejected.reason === 'rollback' && currentPresent && { pinned: true }),
        },
      };
    }
  }
  return { change: { state, target, digest, ...(tag !== undefined && { tag }) } };
}

/** admit -> stage -> validate -> swap -> record, for a new digest. */
async function update(ctx: CheckContext, change: Change): Promise<CheckOutcome> {
  ctx.scheduler.signal.throwIfAborted();
  const { ref, settings } = ctx;
  const current = change.state.current;
  const pinned: OciReference = { ...change.target.repo, ...(change.tag !== undefined && { tag: change.tag }), digest: change.digest };
  const artifact = await (await lazy.pull()).resolveArtifact(ctx.client, pinned, settings.platform);
  ctx.scheduler.signal.throwIfAborted();
  const { name, version } = artifact.config;
  const candidate: Candidate = { ref, label: `${name} ${version}`, type: artifact.type, requirements: artifact.config.requirements ?? [], dependencies: artifact.config.dependencies ?? [] };
  const facts: Facts = { ref, oldDigest: current?.digest, oldVersion: current?.version, newDigest: change.digest, newVersion: version };

  const admission = await lazy.admission();
  const verdict = await admission.admitVersion(candidate, settings, admissionIo(ctx, artifact.ref, { name, type: artifact.type, version }));
  logWarnings(ctx, verdict);
  if (!verdict.admitted) return recordRejection(ctx, change.state, facts, verdict);

  const dir = resolve(artifact.type === PLUGIN ? settings.pluginsDir : artifact.type === RULESFILE ? settings.rulesfilesDir : settings.dirs[artifact.type]!);
  const staged = await stage(ctx, artifact, dir);
  let installed: InstalledVersion;
  let swap: SwapResult;
  try {
    const checked = await admission.admitStaged(candidate, staged, { validateCmd: settings.validateCmd, rulesCheckExecArgv: ctx.rulesCheckExecArgv ?? [] }, ctx.scheduler.signal);
    if (!checked.admitted) return await recordRejection(ctx, change.state, facts, checked);
    ctx.scheduler.signal.throwIfAborted();
    installed = {
      digest: change.digest,
      manifestDigest: artifact.manifestDigest,
      name,
      version,
      type: artifact.type,
      ...(change.tag !== undefined && { tag: change.tag }),
      dir,
      files: staged.files.map((f) => f.rel),
      modes: Object.fromEntries(staged.files.map((f) => [f.rel, f.mode])),
      installedAt: new Date().toISOString(),
    };
    swap = await swapIn(ctx, current, staged, installed);
  } finally {
    ctx.staging.delete(staged.staging);
    await removeDir(staged.staging);
  }
  if (settings.verification === 'off') countUnverified(ctx, installed);
  return recordUpdate(ctx, facts, installed, swap);
}

/** The reads admission makes, for the digest `at` (of the artifact `config`, once its config is read). */
function admissionIo(ctx: CheckContext, at: OciReference & { digest: string }, config?: { name: string; type: string; version: string }): AdmissionIo {
  return {
    engineVersion: ctx.engineVersion,
    ...(ctx.engineUnknownSaid && { engineUnknownSaid: ctx.engineUnknownSaid }),
    installed: () => installedView(ctx),
    signatures: signatureIo(ctx, at, config),
  };
}

/**
 * The signatures of the digest `at`, and its verification under the policies that apply (src/signature):
 * its index entries' (with `verification: on`), else the verification keys.
 */
function signatureIo(ctx: CheckContext, at: OciReference & { digest: string }, config?: { name: string; type: string; version: string }): SignatureIo {
  const indexes = async () => (ctx.settings.verification === 'on' && ctx.signatures ? ctx.signatures.indexes() : []);
  return {
    async state() {
      const { describePolicy, policiesFor, signaturesState } = await lazy.signature();
      const signatures = await signaturesState(ctx.client, at, at.digest);
      // The repository's index policies count too: an index update that changes them earns a refused version another look.
      const policies = policiesFor({ registry: at.registry, repository: at.repository }, await indexes());
      if (policies.length === 0) return signatures;
      return `${signatures}; policies ${createHash('sha256').update(policies.map((p) => `${p.from}: ${describePolicy(p.policy)}`).join('\n')).digest('hex').slice(0, 16)}`;
    },
    async verifier(keyPaths) {
      const { createVerification, fetchKeyPem } = await lazy.signature();
      const verification = createVerification({
        indexes,
        ...(keyPaths.length > 0 && { keys: { paths: keyPaths, from: 'the verification keys (--verify-key, registry.cosignKeys)' } }),
        ...(ctx.signatures !== undefined && { trust: ctx.signatures.trust }),
        fetchKey: fetchKeyPem,
      });
      const subject = { registry: at.registry, repository: at.repository, ...(config !== undefined && { name: config.name, type: config.type }) };
      if ((await verification.policiesFor(subject)).length === 0) return undefined;
      return async () => {
        const { verified } = await verification.verify(ctx.client, at, subject);
        for (const v of verified) {
          const signer = v.signer?.identities.join(', ');
          ctx.logger.info(
            { ref: ctx.ref, event: 'verified', digest: at.digest, format: v.format, where: v.where, ...(signer !== undefined && { signer }) },
            `${ctx.ref}: ${config ? `${config.name} ${config.version}` : at.digest} is signed as its policy requires (${v.policy})${signer !== undefined ? `, by ${signer}` : ''}`,
          );
        }
      };
    },
  };
}

/** A version installed with verification off: never silent (a warning and diginfractl_unverified_installs_total). */
function countUnverified(ctx: CheckContext, installed: InstalledVersion): void {
  ctx.metrics.unverifiedInstalls.inc({ ref: ctx.ref });
  ctx.logger.warn(
    { ref: ctx.ref, event: 'unverified', digest: installed.digest, version: installed.version },
    `${ctx.ref}: ${installed.name} ${installed.version} installed without verifying its signature (--no-verify, verify: false)`,
  );
}

/** What is installed on this node: the install lock files and the refs this agent follows. */
async function installedView(ctx: CheckContext): Promise<InstalledView> {
  const followed: InstalledVersion[] = [];
  for (const ref of ctx.settings.refs) {
    const current = (await ctx.store.read(ref)).current;
    if (current) followed.push(current);
  }
  return (await lazy.dependencies()).installedArtifacts(ctx.settings.installLockfiles, followed);
}

function logWarnings(ctx: CheckContext, verdict: Verdict): void {
  for (const w of verdict.warnings ?? []) ctx.logger.warn({ ref: ctx.ref, ...w.fields }, w.message);
}

/** Downloads the layers into a staging dir inside `dir`, counted in ctx.staging while it exists. */
async function stage(ctx: CheckContext, artifact: ResolvedArtifact, dir: string): Promise<Staged> {
  const { stageFromRegistry } = await lazy.swap();
  let stagingDir: string | undefined;
  try {
    return await stageFromRegistry(ctx.client, artifact, dir, {
      mode: artifact.type === PLUGIN ? 0o755 : 0o644,
      onBytes: (n) => {
        ctx.metrics.downloadBytes.inc({ ref: ctx.ref }, n);
        ctx.scheduler.progress(ctx.ref);
      },
      // A stop abandons the download at once (docs/follow.md: within 5 s), not after it finished.
      signal: ctx.scheduler.signal,
      ...(ctx.settings.cacheDir !== undefined && { cacheDir: ctx.settings.cacheDir }),
      onStaging: (path) => {
        // A download started over stages afresh: the failed try's dir is gone.
        if (stagingDir !== undefined) ctx.staging.delete(stagingDir);
        stagingDir = path;
        ctx.staging.add(path);
      },
    });
  } catch (err) {
    if (stagingDir !== undefined) ctx.staging.delete(stagingDir);
    throw err;
  }
}

/**
 * Keeps a copy of the staged files in the state dir (for a rollback), then swaps them in and writes
 * the state, alone in the dir and under its install lock.
 */
async function swapIn(ctx: CheckContext, current: InstalledVersion | undefined, staged: Staged, installed: InstalledVersion): Promise<SwapResult> {
  const { ref, store } = ctx;
  const dir = installed.dir;
  const { swapFiles, sweepStaging } = await lazy.swap();
  await store.saveVersion(ref, installed.digest, staged.staging, installed.files);
  const obsolete = current && resolve(current.dir) === dir ? current.files : [];
  return ctx.scheduler.commit(dir, async () => {
    // Inside the lock: what a crash left in the dir goes (never a staging dir in use here)...
    const swept = await sweepStaging(dir, ctx.staging);
    if (swept.length > 0) ctx.logger.info({ ref, dir, removed: swept }, `removed ${swept.length} staging dir(s) left in ${dir} by an earlier run`);
    // ...and a rollback (another process) may have changed the state since we read it.
    const now = await store.read(ref);
    if (now.current?.digest !== current?.digest) throw new Abandoned();
    const next: RefState = {
      ...now,
      current: installed,
      ...(current && current.digest !== installed.digest ? { previous: current } : {}),
      lastSuccess: new Date().toISOString(),
    };
    delete next.rejected;
    // The state is the swap's commit: a kill before it is written is undone at the next start.
    return swapFiles(staged, obsolete, store.fileOf(next));
  });
}

function markInstalled(ctx: CheckContext, v: InstalledVersion): void {
  ctx.scheduler.markInstalled(ctx.ref);
  ctx.metrics.setInstalled(ctx.ref, v.digest, v.version);
}

/** After a swap: only the current and previous copies are kept; metrics and the log say what changed. */
async function recordUpdate(ctx: CheckContext, facts: Facts, installed: InstalledVersion, swap: SwapResult): Promise<CheckOutcome> {
  const { ref, store } = ctx;
  const { dir, version } = installed;
  const after = await store.read(ref);
  await store.pruneVersions(ref, [after.current?.digest, after.previous?.digest]).catch(() => undefined);
  markInstalled(ctx, installed);
  const changed = swap.placed.length > 0 || swap.removed.length > 0;
  if (changed) ctx.metrics.updates.inc({ ref });
  ctx.logger.info(
    { ...facts, event: changed ? 'swap' : 'adopt', dir, placed: swap.placed, unchanged: swap.unchanged, removed: swap.removed },
    changed
      ? `${ref}: ${facts.oldVersion !== undefined ? `${facts.oldVersion} -> ${version}` : `installed ${version}`} (${swap.placed.length} file(s) replaced${swap.removed.length ? `, ${swap.removed.length} removed` : ''})`
      : `${ref}: ${version} recorded; the files in ${dir} were already identical`,
  );
  if (installed.type === PLUGIN && changed) {
    ctx.logger.warn({ ref, dir, version }, `plugin ${installed.name} ${version} installed in ${dir}: the engine must be restarted to load it`);
  }
  return { ref, result: changed ? 'updated' : 'unchanged', digest: installed.digest, version };
}

/**
 * A refused version: counted, logged, and remembered in the state (unless a rollback changed the
 * state meanwhile), so that it is not downloaded again until what refused it changes.
 */
async function recordRejection(ctx: CheckContext, state: RefState, facts: Facts, refusal: Refusal): Promise<CheckOutcome> {
  const { reason, message } = refusal;
  ctx.metrics.rejected.inc({ ref: facts.ref, reason });
  ctx.logger.warn({ ...facts, event: 'reject', reason }, `${facts.ref}: not installing ${facts.newVersion} (${reason}): ${message}; keeping ${facts.oldVersion ?? 'nothing'}`);
  const rejected: Rejection = {
    digest: facts.newDigest,
    version: facts.newVersion,
    reason,
    message,
    at: new Date().toISOString(),
    key: (await lazy.admission()).rejectionKey(ctx.settings),
    ...refusal.remember,
  };
  const fresh = await ctx.store.read(facts.ref);
  if (fresh.current?.digest === state.current?.digest) await ctx.store.write({ ...fresh, rejected });
  return { ref: facts.ref, result: 'rejected', digest: facts.newDigest, version: facts.newVersion, reason, message };
}
