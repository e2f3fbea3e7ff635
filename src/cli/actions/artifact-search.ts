/**
 * `diginfractl artifact search [KEYWORD...]`: reads the cached indexes (their JSON form) and ranks
 * entries. Nothing here loads the registry client, the YAML library or the HTTP client unless an
 * index was never fetched.
 */
import { DiginfraError, messageOf } from '../../errors.js';
import { loadConfig, cacheRoot, indexCredentialsPath } from '../../config/index.js';
import { commandLoadOptions, loadIndexes, loadSearchRows, skipCode, IndexSkipped, searchIndexes, searchRows, type SearchHit } from '../../indexes/index.js';
import { formatTable, outputFormat, type CliContext } from '../run.js';
import { parseMinScore, searchSimilar } from './search-similar.js';

export interface SearchCliOptions {
  type?: string;
  index?: string[];
  /** falcoctl's --min-score: also names this similar to a keyword (search-similar.ts). */
  minScore?: string;
  output?: string;
}

export async function runArtifactSearch(ctx: CliContext, keywords: string[], opts: SearchCliOptions): Promise<void> {
  const format = outputFormat(opts.output);
  const minScore = parseMinScore(opts.minScore);
  const loaded = await loadConfig(ctx.configPath === undefined ? {} : { path: ctx.configPath });
  for (const w of loaded.warnings) ctx.logger.warn(w);
  const { config } = loaded;
  if (config.indexes.length === 0) {
    throw new DiginfraError('INDEX_NOT_FOUND', 'no index is configured, so there is nothing to search', { hint: 'add one with "diginfractl index add NAME URL"' });
  }
  const failures: { index: string; err: unknown }[] = [];
  const common = commandLoadOptions(() => ctx.logger, indexCredentialsPath(loaded.path));
  const loadOpts = {
    ...common,
    // A skipped index has nothing to search: the table and JSON list only the others.
    keepSkipped: false,
    ...(opts.index && opts.index.length > 0 && { only: opts.index }),
    onError: (index: string, err: unknown) => {
      failures.push({ index, err });
      common.onError!(index, err);
    },
  };
  const searchOpts = opts.type !== undefined ? { type: opts.type } : {};
  let hits: SearchHit[];
  let loadedCount: number;
  if (format === 'table') {
    // The table needs the mandatory fields only: scan the compact search rows.
    const rows = await loadSearchRows(config, cacheRoot(config), loadOpts);
    loadedCount = rows.length;
    hits = minScore === undefined ? searchRows(rows, keywords, searchOpts) : searchSimilar(searchRows(rows, [], searchOpts), keywords, minScore);
  } else {
    // JSON passes every field of the entries on.
    const indexes = await loadIndexes(config, cacheRoot(config), loadOpts);
    loadedCount = indexes.length;
    hits = minScore === undefined ? searchIndexes(indexes, keywords, searchOpts) : searchSimilar(searchIndexes(indexes, [], searchOpts), keywords, minScore);
  }
  if (loadedCount === 0 && failures.length > 0) {
    // Every index asked for was skipped: say which and why, not that there is nothing configured.
    const only = failures.length === 1 ? failures[0]! : undefined;
    throw new DiginfraError(
      only && only.err instanceof IndexSkipped ? skipCode(only.err) : 'INDEX_FETCH_FAILED',
      only
        ? `nothing to search: index "${only.index}"${config.indexes.length === 1 ? ', the only one configured,' : ''} was skipped: ${messageOf(only.err)}`
        : `nothing to search: every index was skipped:\n${failures.map((f) => `index "${f.index}": ${messageOf(f.err)}`).join('\n')}`,
      { hint: `run "diginfractl index update ${failures.map((f) => f.index).join(' ')}" to try again now` },
    );
  }
  if (format === 'json') {
    ctx.out(JSON.stringify(hits.map((h) => ({ index: h.index, ...h.entry })), null, 2));
    return;
  }
  if (hits.length === 0) {
    // Nothing found: say which indexes were not searched, and why (a remembered failure is not warned about again).
    const skipped = failures.map((f) => `; index "${f.index}" was skipped: ${messageOf(f.err)}`).join('');
    ctx.logger.info(`no artifact matches ${keywords.length > 0 ? keywords.map((k) => `"${k}"`).join(' ') : 'the filters'}${skipped}`);
    return;
  }
  ctx.out(
    formatTable(
      ['INDEX', 'ARTIFACT', 'TYPE', 'REGISTRY', 'REPOSITORY', 'DESCRIPTION'],
      hits.map((h) => [h.index, h.entry.name, h.entry.type, h.entry.registry, h.entry.repository, String(h.entry.description).replace(/\s+/g, ' ').trim()]),
    ),
  );
}
