/**
 * `diginfractl artifact install [REF...]`: flags over the `install` section of the config, then the
 * installer (src/install). With no REF it installs `install.refs`: what the Kubernetes init container
 * runs.
 */
import { resolve } from 'node:path';
import { checkArtifactType } from '../../artifact/index.js';
import { applySectionFlags, loadConfig, cacheRoot, indexCredentialsPath, parseDuration } from '../../config/index.js';
import { DiginfraError } from '../../errors.js';
import { commandLoadOptions, loadIndexes, type LoadedIndex } from '../../indexes/index.js';
import { BlobCache, DEFAULT_CACHE_MAX_AGE_MS } from '../../content/index.js';
import { installArtifacts, type InstallResult, lockfilePath, withOciLayouts, type BlobEvent, type PlannedArtifact } from '../../install/index.js';
import { checkAllowed, restrictReads } from '../../registry/index.js';
import { formatPlatform, platformOrHost } from '../../platform/index.js';
import { openRegistry, type RegistryFlagOptions } from '../session.js';
import { policyIndexes, verificationFor, type VerifyFlagOptions } from '../verification.js';
import type { OciReference } from '../../reference/index.js';
import { interruptOnSignals, outputFormat, type CliContext } from '../run.js';
import { human, progressReporter } from '../progress.js';

export interface InstallFlags extends RegistryFlagOptions, VerifyFlagOptions {
  type?: string;
  allowedTypes?: string;
  platform?: string;
  rulesfilesDir?: string;
  pluginsDir?: string;
  resolveDeps?: boolean;
  engineVersion?: string;
  lockfile?: string;
  dir?: string[];
  frozen?: boolean;
  lockTimeout?: string;
  output?: string;
}

function parseSeconds(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new DiginfraError('USAGE', `--lock-timeout "${value}" must be a number of seconds`);
  return n * 1000;
}

export async function runArtifactInstall(ctx: CliContext, refArgs: string[], flags: InstallFlags): Promise<void> {
  const format = outputFormat(flags.output);
  const type = flags.type !== undefined ? checkArtifactType(flags.type) : undefined;
  const lockTimeoutMs = parseSeconds(flags.lockTimeout);
  const loaded = await loadConfig(ctx.configPath === undefined ? {} : { path: ctx.configPath });
  for (const w of loaded.warnings) ctx.logger.warn(w);
  const { config } = applySectionFlags(loaded, 'install', flags);
  const install = config.install;
  const refs = refArgs.length > 0 ? refArgs : install.refs;
  if (refs.length === 0) {
    throw new DiginfraError('USAGE', 'nothing to install: give one or more references, or list them under install.refs in the config', {
      hint: `config file: ${loaded.path}`,
    });
  }
  for (const t of install.allowedTypes) checkArtifactType(t);
  const platform = platformOrHost(install.platform);
  const rulesfilesDir = resolve(install.rulesfilesDir);
  const pluginsDir = resolve(install.pluginsDir);
  const lockfile = resolve(lockfilePath(rulesfilesDir, install.lockfile));
  const root = cacheRoot(config);

  // From here a SIGINT/SIGTERM abandons the install (exit 130/143) instead of killing it mid-download.
  const interrupt = interruptOnSignals();
  // registry.allowed: every read of this install (references, index entries, dependencies) is checked;
  // `oci:DIR[:TAG]` references read the layout on disk instead (src/install/oci-source.ts).
  const client = withOciLayouts(restrictReads(await openRegistry(ctx, flags, config, { signal: interrupt.signal }), config.registry));
  let indexes: Promise<LoadedIndex[]> | undefined;
  const verification = await verificationFor(ctx, config, flags, policyIndexes(ctx, loaded));
  /** Before anything is written: where each artifact comes from (a cached one too), and its signatures. */
  const verify = async (ref: OciReference & { digest: string }, planned: PlannedArtifact): Promise<void> => {
    checkAllowed(config.registry, ref);
    if (!verification) return;
    const { verified } = await verification.verify(client, ref, { registry: ref.registry, repository: ref.repository, name: planned.name, type: planned.type });
    for (const v of verified) {
      ctx.logger.info({ digest: ref.digest, where: v.where, ...(v.signer && { signer: v.signer.identities.join(', ') }) }, `${planned.name} ${planned.version}: signed as its policy requires (${v.policy})`);
    }
  };
  try {
    const result = await installArtifacts({
      refs,
      session: {
        client,
        platform,
        indexes: () =>
          (indexes ??= loadIndexes(config, root, commandLoadOptions(() => ctx.logger, indexCredentialsPath(loaded.path)))),
        warn: (m) => ctx.logger.warn(m),
        debug: (m) => ctx.logger.debug(m),
      },
      cache: new BlobCache(root),
      cacheMaxAgeMs: config.cacheMaxAge !== undefined ? parseDuration(config.cacheMaxAge)! : DEFAULT_CACHE_MAX_AGE_MS,
      lockfile,
      frozen: flags.frozen === true,
      ...(lockTimeoutMs !== undefined && { lockTimeoutMs }),
      ...(type !== undefined && { type }),
      allowedTypes: install.allowedTypes,
      resolveDeps: install.resolveDeps,
      ...(install.engineVersion !== undefined && { engineVersion: install.engineVersion }),
      rulesfilesDir,
      pluginsDir,
      dirs: Object.fromEntries(Object.entries(install.dirs).map(([t, d]) => [t, resolve(d)])),
      verify,
      onPlan: (plan) => {
        for (const w of plan.warnings) ctx.logger.warn(w);
        for (const a of plan.artifacts) {
          ctx.logger.info(
            { digest: a.artifact.ref.digest, ...(a.artifact.platform && { platform: formatPlatform(a.artifact.platform) }) },
            `installing ${a.type} ${a.name} ${a.version}${a.requiredBy.length > 0 && a.requested.length === 0 ? ` (needed by ${a.requiredBy.join(', ')})` : ''}`,
          );
        }
      },
      onRecovered: ({ outcome, record }) =>
        ctx.logger.warn(
          { event: 'recovered', outcome, interruptedPid: record.pid, startedAt: record.startedAt, changes: record.changes.length },
          `an install killed while moving files (pid ${record.pid} on ${record.host}, started ${record.startedAt}) was ${outcome === 'completed' ? 'completed' : 'undone'}: ${record.changes.length} file change(s) ${outcome === 'completed' ? 'finished' : 'put back'}`,
        ),
      onWaitLock: (dir, holder) => ctx.logger.warn(`waiting for another install to finish in ${dir}${holder ? ` (pid ${holder.pid} on ${holder.host})` : ''}`),
      onBlob: progressReporter(ctx, format === 'json'),
      signal: interrupt.signal,
    });
    print(ctx, format, result, formatPlatform(platform));
  } finally {
    await client.close();
    interrupt.dispose();
  }
}

function print(ctx: CliContext, format: 'table' | 'json', r: InstallResult, platform: string): void {
  if (format === 'json') {
    ctx.out(
      JSON.stringify(
        {
          platform,
          installed: r.installed.map((a) => ({
            name: a.name,
            type: a.type,
            version: a.version,
            ref: a.ref,
            digest: a.digest,
            manifestDigest: a.manifestDigest,
            ...(a.platform !== undefined && { platform: a.platform }),
            requested: a.requested,
            requiredBy: a.requiredBy,
            dir: a.dir,
            files: a.files,
            changed: a.placed,
          })),
          skipped: r.skipped,
          removed: r.removed,
          lockfile: r.lockfile,
          downloaded: r.downloaded,
          warnings: r.warnings,
        },
        null,
        2,
      ),
    );
    return;
  }
  if (r.installed.length === 0) {
    ctx.out('nothing installed');
    return;
  }
  for (const a of r.installed) {
    const unchanged = a.placed.length === 0 ? ', unchanged' : '';
    ctx.out(`installed ${a.type} ${a.name} ${a.version}${a.platform ? ` (${a.platform})` : ''} from ${a.ref}${unchanged}`);
    for (const f of a.files) ctx.out(`  ${f}`);
  }
  for (const f of r.removed) ctx.out(`removed ${f}`);
  ctx.out(`lock file: ${r.lockfile}`);
}
