/**
 * `artifact search --min-score S` (falcoctl's flag): besides what the search matches (name, keyword or
 * description containing each keyword), an entry whose name is at least S similar to a keyword matches
 * too, so a typo (`k8sadit`) still finds `k8saudit`. Similarity is falcoctl's: 1 - the Levenshtein
 * distance over the longer length, case-insensitive. Such a match ranks below any substring match.
 */
import { DiginfraError } from '../../errors.js';
import { scoreEntry, type SearchHit } from '../../indexes/index.js';

/** `--min-score` as a number in (0, 1]; undefined when not given. */
export function parseMinScore(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 1) throw new DiginfraError('USAGE', `--min-score "${value}" must be a number above 0 and at most 1, such as 0.65`);
  return n;
}

/** Edit distance (insertions, deletions, substitutions) between two strings, one row at a time. */
function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = a[i - 1] === b[j - 1] ? prev[j - 1]! : 1 + Math.min(prev[j - 1]!, prev[j]!, row[j - 1]!);
    }
    prev = row;
  }
  return prev[b.length]!;
}

/** falcoctl's score: 1 for the same name, 0 for nothing in common. */
export function similarity(name: string, keyword: string): number {
  const a = name.toLowerCase();
  const b = keyword.toLowerCase();
  const longer = Math.max(a.length, b.length);
  return longer === 0 ? 1 : (longer - levenshtein(a, b)) / longer;
}

/**
 * Of `candidates` (every entry of the right type, in the search's order), those where each keyword
 * matches as the search does or is `minScore` similar to the name; the search's score ranks first.
 */
export function searchSimilar(candidates: readonly SearchHit[], keywords: readonly string[], minScore: number): SearchHit[] {
  const qs = keywords.map((k) => k.trim().toLowerCase()).filter((k) => k !== '');
  const hits: SearchHit[] = [];
  for (const hit of candidates) {
    let score = 0;
    for (const q of qs) {
      const exact = scoreEntry(hit.entry, [q], undefined);
      const close = exact > 0 ? 0 : similarity(String(hit.entry.name), q);
      if (exact === 0 && close < minScore) {
        score = -1;
        break;
      }
      score += exact > 0 ? exact : close;
    }
    if (score >= 0) hits.push({ ...hit, score: qs.length === 0 ? hit.score : score });
  }
  // Stable: equal scores keep the search's order (name, then configured index order).
  return hits.sort((a, b) => b.score - a.score);
}
