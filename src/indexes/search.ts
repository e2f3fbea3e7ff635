/**
 * Pure search over indexes. Every keyword must match (case-insensitive) the name, a keyword or the
 * description of an entry. Ranking, per keyword: exact name > name prefix > keyword (exact first,
 * then substring, or a name substring) > description; the scores add up; ties go by name, then by
 * configured index order. Two forms: over loaded entries, and over the cached search rows (bytes),
 * which decodes and parses only the lines that can match.
 */
import type { IndexEntry, LoadedIndex } from './types.js';

export interface SearchOptions {
  /** Only entries of this type (case-insensitive). */
  type?: string;
}

export interface SearchHit {
  index: string;
  entry: IndexEntry;
  score: number;
}

const EXACT_NAME = 1000;
const NAME_PREFIX = 100;
const KEYWORD = 10;
const DESCRIPTION = 1;

function normalize(keywords: readonly string[]): string[] {
  return keywords.map((k) => k.trim().toLowerCase()).filter((k) => k !== '');
}

function scoreKeyword(q: string, name: string, entry: IndexEntry, lower: { kws?: string[]; desc?: string }): number {
  if (name === q) return EXACT_NAME;
  if (name.startsWith(q)) return NAME_PREFIX;
  const kws = (lower.kws ??= (Array.isArray(entry.keywords) ? entry.keywords : []).map((k) => String(k).toLowerCase()));
  if (kws.includes(q)) return KEYWORD + 1;
  if (name.includes(q) || kws.some((k) => k.includes(q))) return KEYWORD;
  if ((lower.desc ??= String(entry.description ?? '').toLowerCase()).includes(q)) return DESCRIPTION;
  return 0;
}

/** The score of an entry, or 0 when a keyword or the type filter does not match. */
export function scoreEntry(entry: IndexEntry, qs: readonly string[], type: string | undefined): number {
  if (type !== undefined && String(entry.type).toLowerCase() !== type) return 0;
  if (qs.length === 0) return 1;
  const name = String(entry.name).toLowerCase();
  const lower = {};
  let score = 0;
  for (const q of qs) {
    const s = scoreKeyword(q, name, entry, lower);
    if (s === 0) return 0;
    score += s;
  }
  return score;
}

type Ranked = SearchHit & { order: number };

function rank(hits: Ranked[]): SearchHit[] {
  hits.sort((a, b) => b.score - a.score || (a.entry.name < b.entry.name ? -1 : a.entry.name > b.entry.name ? 1 : 0) || a.order - b.order);
  return hits.map(({ order: _o, ...h }) => h);
}

/** Search over loaded indexes, in configured order. */
export function searchIndexes(indexes: readonly LoadedIndex[], keywords: readonly string[], opts: SearchOptions = {}): SearchHit[] {
  const qs = normalize(keywords);
  const type = opts.type?.toLowerCase();
  const hits: Ranked[] = [];
  indexes.forEach((ix, order) => {
    for (const entry of ix.entries) {
      const score = scoreEntry(entry, qs, type);
      if (score > 0) hits.push({ index: ix.name, entry, score, order });
    }
  });
  return rank(hits);
}

/** One index's search rows: UTF-8 lines of `[name, type, registry, repository, description, keywords]`. */
export interface SearchRows {
  index: string;
  rows: Buffer;
}

/** [start, end) of every line of `text` where `re` (global) matches, each line once, in order. */
function linesMatching(text: string, re: RegExp): [number, number][] {
  const out: [number, number][] = [];
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const start = text.lastIndexOf('\n', m.index) + 1;
    let end = text.indexOf('\n', m.index);
    if (end < 0) end = text.length;
    out.push([start, end]);
    re.lastIndex = end + 1;
  }
  return out;
}

function allLines(text: string): [number, number][] {
  const out: [number, number][] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    if (end > start) out.push([start, end]);
    start = end + 1;
  }
  return out;
}

function parseRows(lines: string[]): unknown[] {
  try {
    // One parse of all candidate lines is much faster than one parse per line.
    return JSON.parse(`[${lines.join(',')}]`) as unknown[];
  } catch {
    return lines.map((l) => {
      try {
        return JSON.parse(l) as unknown;
      } catch {
        return undefined;
      }
    });
  }
}

/** Printable ASCII that JSON writes unescaped: such a keyword can be looked for in the raw rows. */
function rawSearchable(q: string): boolean {
  return /^[\x20-\x7e]+$/.test(q) && !/["\\]/.test(q);
}

function escapeRegExp(q: string): string {
  return q.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/**
 * Search over cached search rows. The rows are scanned as bytes (a latin1 view: one character per
 * byte, no UTF-8 decoding, no lower-cased copy) for the longest keyword with a case-insensitive
 * regexp; candidate lines must contain the other keywords too, and only they are decoded and parsed,
 * then scored like `searchIndexes`. Keywords that are not plain ASCII (or that JSON escapes) skip this
 * pre-filter and are checked on the parsed entries. So a selective search over 10,000 entries costs
 * a scan of the bytes, not a parse of every entry.
 */
export function searchRows(indexes: readonly SearchRows[], keywords: readonly string[], opts: SearchOptions = {}): SearchHit[] {
  const qs = normalize(keywords);
  const type = opts.type?.toLowerCase();
  const prefilter = [...qs.filter(rawSearchable), ...(type !== undefined && rawSearchable(type) ? [`"${type}"`] : [])].sort((a, b) => b.length - a.length);
  const hits: Ranked[] = [];
  indexes.forEach((ix, order) => {
    // latin1 keeps byte offsets, so a span of `text` is the same span of `ix.rows`.
    const text = ix.rows.toString('latin1');
    let spans = prefilter.length > 0 ? linesMatching(text, new RegExp(escapeRegExp(prefilter[0]!), 'gi')) : allLines(text);
    if (prefilter.length > 1) {
      spans = spans.filter(([s, e]) => {
        const line = text.slice(s, e).toLowerCase();
        return prefilter.every((q) => line.includes(q));
      });
    }
    const rows = parseRows(spans.map(([s, e]) => ix.rows.toString('utf8', s, e)));
    for (const row of rows) {
      if (!Array.isArray(row)) continue;
      const [name, t, registry, repository, description, kws] = row as [string, string, string, string, string, string[]];
      const entry: IndexEntry = { name, type: t, registry, repository, description, keywords: Array.isArray(kws) ? kws : [] };
      const score = scoreEntry(entry, qs, type);
      if (score > 0) hits.push({ index: ix.index, entry, score, order });
    }
  });
  return rank(hits);
}
