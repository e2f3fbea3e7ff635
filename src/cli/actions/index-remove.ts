/** `diginfractl index remove NAME...`: all names must exist, or nothing changes. */
import { DiginfraError } from '../../errors.js';
import { loadConfigFile, updateConfigFile } from '../../config/index.js';
import { notConfigured, removeCachedIndex, updateIndexCredentials } from '../../indexes/index.js';
import { outputFormat, printJson, type CliContext } from '../run.js';
import { loadIndexContext } from './index-common.js';

export async function runIndexRemove(ctx: CliContext, names: string[], opts: { output?: string } = {}): Promise<void> {
  const format = outputFormat(opts.output);
  const ictx = await loadIndexContext(ctx);
  const file = await loadConfigFile(ictx.path);
  const unique = [...new Set(names)];
  const unknown = unique.filter((n) => !file.config.indexes.some((ix) => ix.name === n));
  const fromEnv = unknown.filter((n) => ictx.sources.indexes === 'env' && ictx.config.indexes.some((ix) => ix.name === n));
  if (fromEnv.length > 0) {
    throw new DiginfraError('INDEX_NOT_FOUND', `index ${fromEnv.map((n) => `"${n}"`).join(', ')} comes from DIGINFRACTL_INDEXES, not from ${ictx.path}`, {
      hint: 'change or unset the DIGINFRACTL_INDEXES environment variable',
    });
  }
  if (unknown.length > 0) throw notConfigured(unknown, file.config);
  await updateConfigFile(ictx.path, (cfg) => ({ ...cfg, indexes: cfg.indexes.filter((ix) => !unique.includes(ix.name)) }));
  for (const n of unique) await removeCachedIndex(ictx.cacheDir, n);
  await updateIndexCredentials(ictx.credentialsPath, Object.fromEntries(unique.map((n) => [n, undefined])));
  if (format === 'json') printJson(ctx, { removed: unique });
  else for (const n of unique) ctx.out(`index "${n}" removed`);
}
