/**
 * `diginfractl artifact rollback REF`: puts back the version `artifact follow` replaced last, from the
 * copy kept in the state dir, with the same atomic swap (src/follow/rollback.ts).
 */
import { resolve } from 'node:path';
import { loadConfig } from '../../config/index.js';
import { rollbackRef, StateStore } from '../../follow/index.js';
import { outputFormat, type CliContext } from '../run.js';

export interface RollbackFlags {
  stateDir?: string;
  output?: string;
}

export async function runArtifactRollback(ctx: CliContext, ref: string, flags: RollbackFlags): Promise<void> {
  const format = outputFormat(flags.output);
  const stateDir = flags.stateDir ?? (await loadConfig(ctx.configPath === undefined ? {} : { path: ctx.configPath })).config.follow.stateDir;
  const r = await rollbackRef(new StateStore(resolve(stateDir)), ref);
  ctx.logger.info(
    { event: 'rollback', ref: r.ref, oldDigest: r.from.digest, oldVersion: r.from.version, newDigest: r.to.digest, newVersion: r.to.version, placed: r.swap.placed, removed: r.swap.removed },
    `${r.ref}: rolled back ${r.from.version} -> ${r.to.version}`,
  );
  if (format === 'json') {
    ctx.out(JSON.stringify({ ref: r.ref, from: { version: r.from.version, digest: r.from.digest }, to: { version: r.to.version, digest: r.to.digest }, dir: r.to.dir, ...r.swap }, null, 2));
    return;
  }
  ctx.out(`rolled back ${r.ref} from ${r.from.version} (${r.from.digest}) to ${r.to.version} (${r.to.digest})`);
  for (const f of r.swap.placed) ctx.out(`  replaced ${resolve(r.to.dir, f)}`);
  for (const f of r.swap.removed) ctx.out(`  removed ${resolve(r.to.dir, f)}`);
  if (r.to.type === 'plugin') ctx.out('the engine must be restarted to load the plugin');
}
