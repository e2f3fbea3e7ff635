/**
 * Pure search over indexes. Every keyword must match (case-insensitive) the name, a keyword or the
 * description of an entry. Ranking, per keyword: exact name > name prefix > keyword (exact first,
 * then substring, or a name substring) > description; the scores add up; ties go by name, then by
 * configured index order. Two forms: over loaded entries, and over the cached search rows (text),
 * which parses only the lines that can match.
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

/** One index's search rows: lines of `[name, type, registry, repository, description, keywords]`. */
export interface SearchRows {
  index: string;
  rows: string;
}

/** [start, end) of every line of `text` that contains `needle` (each line once, in order). */
function linesContaining(text: string, needle: string): [number, number][] {
  const out: [number, number][] = [];
  let pos = 0;
  for (;;) {
    const at = text.indexOf(needle, pos);
    if (at < 0) return out;
    const start = text.lastIndexOf('\n', at) + 1;
    let end = text.indexOf('\n', at);
    if (end < 0) end = text.length;
    out.push([start, end]);
    pos = end + 1;
  }
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

/**
 * Search over cached search rows. Candidate lines are found with `indexOf` of the first keyword in
 * the lower-cased text and must contain the other keywords too; only they are parsed and scored. (A
 * keyword with a quote, a backslash or a control character, which JSON escapes, skips the
 * pre-filter.) So a selective search costs a few scans of the text, not a parse of every entry.
 */
export function searchRows(indexes: readonly SearchRows[], keywords: readonly string[], opts: SearchOptions = {}): SearchHit[] {
  const qs = normalize(keywords);
  const type = opts.type?.toLowerCase();
  const plain = (q: string) => !/["\\\u0000-\u001f]/.test(q);
  const prefilter = [...qs.filter(plain), ...(type !== undefined && plain(type) ? [`"${type}"`] : [])].sort((a, b) => b.length - a.length);
  const hits: Ranked[] = [];
  indexes.forEach((ix, order) => {
    const lower = ix.rows.toLowerCase();
    // toLowerCase keeps offsets for almost all text; when it does not, fall back to every line.
    const aligned = lower.length === ix.rows.length;
    let spans = aligned && prefilter.length > 0 ? linesContaining(lower, prefilter[0]!) : allLines(ix.rows);
    if (aligned && prefilter.length > 1) {
      spans = spans.filter(([s, e]) => {
        const line = lower.slice(s, e);
        return prefilter.every((q) => line.includes(q));
      });
    }
    const rows = parseRows(spans.map(([s, e]) => ix.rows.slice(s, e)));
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
