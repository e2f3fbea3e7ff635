/**
 * `diginfractl artifact list`: what is installed on this node and by whom (install's lock files,
 * follow's state dir), whether its files are still in place, and what follow last refused. Reads
 * local files only; the registry is never asked.
 */
import { loadConfig } from '../../config/index.js';
import { readInventory, type InventoryItem } from '../../follow/index.js';
import { lockfilePath } from '../../install/index.js';
import { formatTable, outputFormat, type CliContext } from '../run.js';

export interface ListFlags {
  lockfile?: string[];
  stateDir?: string;
  output?: string;
}

/** `ghcr.io/a/b:1@sha256:0123456789ab…`: the table shows 12 hex digits of a digest, JSON all of them. */
function shortRef(ref: string): string {
  return ref.replace(/@(sha256:[0-9a-f]{12})[0-9a-f]+$/, '@$1…');
}

function status(item: InventoryItem): string {
  const parts: string[] = [];
  if (item.version === undefined) parts.push('nothing installed');
  else if (item.missing.length === 0) parts.push('ok');
  else parts.push(`${item.missing.length} of ${item.files.length} file(s) missing`);
  if (item.replacedBy) parts.push(`now follow's ${item.replacedBy.version ?? 'version'}`);
  const r = item.rejected;
  if (r && r.digest !== item.digest) parts.push(`refused ${r.version ?? r.digest.slice(0, 19)} (${r.reason})`);
  return parts.join('; ');
}

export async function runArtifactList(ctx: CliContext, flags: ListFlags): Promise<void> {
  const format = outputFormat(flags.output);
  const loaded = await loadConfig(ctx.configPath === undefined ? {} : { path: ctx.configPath });
  for (const w of loaded.warnings) ctx.logger.warn(w);
  const { install, follow } = loaded.config;
  // Where install writes its lock file by default, and where follow looks for it (src/follow/settings.ts).
  const lockfiles = flags.lockfile?.length
    ? flags.lockfile
    : [lockfilePath(install.rulesfilesDir, install.lockfile), lockfilePath(follow.rulesfilesDir)];
  const inventory = await readInventory({ lockfiles, stateDir: flags.stateDir ?? follow.stateDir });
  if (format === 'json') {
    ctx.out(JSON.stringify(inventory, null, 2));
    return;
  }
  if (inventory.items.length === 0) {
    const looked = inventory.lockfiles.map((l) => `${l.path}${l.found ? '' : ' (absent)'}`).join(', ');
    ctx.out(`nothing installed: no lock file entry (${looked}) and nothing followed (state dir ${inventory.stateDir})`);
    return;
  }
  const rows = inventory.items.map((i) => [i.name ?? '-', i.type ?? '-', i.version ?? '-', i.source, status(i), shortRef(i.ref)]);
  ctx.out(formatTable(['NAME', 'TYPE', 'VERSION', 'SOURCE', 'STATUS', 'REF'], rows));
  // What needs a look, spelled out under the table.
  for (const i of inventory.items) {
    for (const f of i.missing) ctx.out(`${i.name ?? i.ref}: missing ${f}`);
    if (i.replacedBy) ctx.out(`${i.name}: ${i.replacedBy.files.join(', ')} now hold(s) ${i.replacedBy.version ?? 'the version'} of ${i.replacedBy.ref} (artifact follow)`);
    if (i.rejected && i.rejected.digest !== i.digest) ctx.out(`${i.name ?? i.ref}: refused ${i.rejected.version ?? i.rejected.digest} at ${i.rejected.at}: ${i.rejected.message}`);
  }
}
