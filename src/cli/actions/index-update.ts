/** `diginfractl index update [NAME...]`: conditional GETs; a failure keeps that index's previous copy. */
import { DiginfraError, messageOf } from '../../errors.js';
import { notConfigured, refreshIndex, tlsForIndex, readIndexCredentials } from '../../indexes/index.js';
import { formatTable, outputFormat, type CliContext } from '../run.js';
import { loadIndexContext, warnPlainHttp } from './index-common.js';

export async function runIndexUpdate(ctx: CliContext, names: string[], opts: { output?: string }): Promise<void> {
  const format = outputFormat(opts.output);
  const ictx = await loadIndexContext(ctx);
  const unknown = names.filter((n) => !ictx.config.indexes.some((ix) => ix.name === n));
  if (unknown.length > 0) throw notConfigured(unknown, ictx.config);
  const targets = names.length > 0 ? ictx.config.indexes.filter((ix) => names.includes(ix.name)) : ictx.config.indexes;
  if (targets.length === 0) {
    throw new DiginfraError('INDEX_NOT_FOUND', 'no index is configured', { hint: 'add one with "diginfractl index add NAME URL"' });
  }
  const credentials = await readIndexCredentials(ictx.credentialsPath);
  const results = await Promise.all(
    targets.map(async (ix) => {
      warnPlainHttp(ctx, ix.name, ix.url);
      try {
        const c = credentials[ix.name];
        const r = await refreshIndex(ix, { cacheDir: ictx.cacheDir, ...(c !== undefined && { credentials: c }), ...tlsForIndex(ictx.config.registry, ix.url) });
        return { name: ix.name, status: r.status === 'fetched' ? 'updated' : 'unchanged', entries: r.meta.entries as number | null, error: undefined as unknown };
      } catch (err) {
        return { name: ix.name, status: 'failed', entries: null, error: err };
      }
    }),
  );
  if (format === 'json') {
    ctx.out(JSON.stringify(results.map((r) => ({ name: r.name, status: r.status, entries: r.entries, ...(r.error !== undefined && { error: messageOf(r.error) }) })), null, 2));
  } else {
    ctx.out(formatTable(['NAME', 'STATUS', 'ENTRIES'], results.map((r) => [r.name, r.status, r.entries === null ? '-' : String(r.entries)])));
  }
  const failed = results.filter((r) => r.error !== undefined);
  if (failed.length === 0) return;
  if (failed.length === 1 && results.length === 1) throw failed[0]!.error;
  const first = failed[0]!.error;
  throw new DiginfraError(
    failed.length === 1 && first instanceof DiginfraError ? first.code : 'INDEX_FETCH_FAILED',
    `${failed.length} of ${results.length} indexes failed to update; their previous cached copies stay in use:\n${failed.map((f) => messageOf(f.error)).join('\n')}`,
    { ...(failed.length === 1 && first instanceof DiginfraError && first.hint !== undefined && { hint: first.hint }) },
  );
}
