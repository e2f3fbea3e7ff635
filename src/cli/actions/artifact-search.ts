/**
 * `diginfractl artifact search [KEYWORD...]`: reads the cached indexes (their JSON form) and ranks
 * entries. Nothing here loads the registry client, the YAML library or the HTTP client unless an
 * index was never fetched.
 */
import { DiginfraError, messageOf } from '../../errors.js';
import { loadConfig } from '../../config/load.js';
import { cacheRoot, indexCredentialsPath } from '../../config/paths.js';
import { loadIndexes, loadSearchRows } from '../../indexes/load.js';
import { searchIndexes, searchRows, type SearchHit } from '../../indexes/search.js';
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
  const loadOpts = {
    ...(opts.index && opts.index.length > 0 && { only: opts.index }),
    credentialsPath: indexCredentialsPath(loaded.path),
    onFetch: (name: string, url: string) => ctx.logger.info(`fetching index "${name}" from ${url} (first use)`),
    onError: (index: string, err: unknown) => {
      failures.push({ index, err });
      ctx.logger.warn(`index "${index}" skipped: ${messageOf(err)}`);
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
    const first = failures[0]!.err;
    if (failures.length === 1) throw first;
    throw new DiginfraError('INDEX_FETCH_FAILED', `no index could be loaded:\n${failures.map((f) => messageOf(f.err)).join('\n')}`);
  }
  if (format === 'json') {
    ctx.out(JSON.stringify(hits.map((h) => ({ index: h.index, ...h.entry })), null, 2));
    return;
  }
  if (hits.length === 0) {
    ctx.logger.info(`no artifact matches ${keywords.length > 0 ? keywords.map((k) => `"${k}"`).join(' ') : 'the filters'}`);
    return;
  }
  ctx.out(
    formatTable(
      ['INDEX', 'ARTIFACT', 'TYPE', 'REGISTRY', 'REPOSITORY', 'DESCRIPTION'],
      hits.map((h) => [h.index, h.entry.name, h.entry.type, h.entry.registry, h.entry.repository, String(h.entry.description).replace(/\s+/g, ' ').trim()]),
    ),
  );
}
