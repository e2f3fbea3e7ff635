/** `diginfractl index list`: NAME, URL, ADDED, UPDATED, ENTRIES. */
import { formatTable, outputFormat, type CliContext } from '../run.js';
import { readCacheMeta } from '../../indexes/index.js';
import { formatTime, loadIndexContext } from './index-common.js';

export async function runIndexList(ctx: CliContext, opts: { output?: string }): Promise<void> {
  const format = outputFormat(opts.output);
  const ictx = await loadIndexContext(ctx);
  const rows = await Promise.all(
    ictx.config.indexes.map(async (ix) => {
      const meta = await readCacheMeta(ictx.cacheDir, ix.name);
      const current = meta && meta.url === ix.url ? meta : undefined;
      return {
        name: ix.name,
        url: ix.url,
        added: ix.added ?? null,
        updated: current?.checkedAt ?? null,
        fetched: current?.fetchedAt ?? null,
        entries: current?.entries ?? null,
      };
    }),
  );
  if (format === 'json') {
    ctx.out(JSON.stringify(rows, null, 2));
    return;
  }
  ctx.out(
    formatTable(
      ['NAME', 'URL', 'ADDED', 'UPDATED', 'ENTRIES'],
      rows.map((r) => [r.name, r.url, r.added ? formatTime(r.added) : '-', formatTime(r.updated ?? undefined), r.entries === null ? '-' : String(r.entries)]),
    ),
  );
}
