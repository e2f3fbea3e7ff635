/**
 * Pure validation of an index file. Every bad entry is reported in one INDEX_INVALID error, one line
 * per entry: `index "corp": entry 4 ("k8saudit"): missing "registry"`. Positions are 1-based.
 */
import { DiginfraError } from '../errors.js';
import { signatureProblems } from '../signature/index.js';
import { MAX_PORT, isRegistryHostSyntax, isRepositoryPath, unusablePort } from '../reference/index.js';
import type { IndexEntry } from './types.js';

const MANDATORY = ['name', 'type', 'registry', 'repository', 'description', 'keywords'] as const;
const NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;
const TYPE_RE = /^[a-z][a-z0-9-]*$/;

/** The largest index body read; anything bigger is refused (the read stops at the limit). */
export const MAX_INDEX_BYTES = 10 * 1024 * 1024;

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function kind(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return `a ${typeof v}`;
}

export function invalid(index: string, lines: string[], hint?: string): DiginfraError {
  return new DiginfraError('INDEX_INVALID', lines.map((l) => `index "${index}": ${l}`).join('\n'), {
    hint: hint ?? 'ask the index maintainer to fix it; the previous cached copy, if any, stays in use',
  });
}

/** Problems of one entry (empty when it is fine). */
function entryProblems(e: Record<string, unknown>): string[] {
  const out: string[] = [];
  const missing = MANDATORY.filter((f) => e[f] === undefined || e[f] === null);
  if (missing.length > 0) out.push(`missing ${missing.map((f) => `"${f}"`).join(', ')}`);
  for (const f of MANDATORY) {
    const v = e[f];
    if (v === undefined || v === null) continue;
    if (f === 'keywords') {
      if (!Array.isArray(v) || !v.every((k) => typeof k === 'string')) out.push(`"keywords" must be a list of strings${Array.isArray(v) ? '' : `, not ${kind(v)}`}`);
      continue;
    }
    if (typeof v !== 'string') {
      out.push(`"${f}" must be a string, not ${kind(v)}`);
      continue;
    }
    if (v.trim() === '') {
      out.push(`"${f}" is empty`);
      continue;
    }
    if (f === 'name' && !NAME_RE.test(v)) out.push(`"name" "${v}" must be lower-case letters, digits, ".", "_" or "-" (it is what users type)`);
    if (f === 'type' && !TYPE_RE.test(v)) out.push(`"type" "${v}" must be a lower-case word like rulesfile or plugin`);
    if (f === 'registry' && !isRegistryHostSyntax(v)) out.push(`"registry" "${v}" is not a host[:port]`);
    else if (f === 'registry' && unusablePort(v) !== undefined) out.push(`"registry" "${v}": port ${unusablePort(v)} is out of range (1-${MAX_PORT})`);
    if (f === 'repository' && !isRepositoryPath(v)) out.push(`"repository" "${v}" is not an OCI repository path (lower-case components separated by "/")`);
  }
  for (const f of ['license', 'home'] as const) {
    if (e[f] !== undefined && e[f] !== null && typeof e[f] !== 'string') out.push(`"${f}" must be a string, not ${kind(e[f])}`);
  }
  if (e.sources !== undefined && e.sources !== null && (!Array.isArray(e.sources) || !e.sources.every((s) => typeof s === 'string'))) {
    out.push(`"sources" must be a list of strings${Array.isArray(e.sources) ? '' : `, not ${kind(e.sources)}`}`);
  }
  if (e.maintainers !== undefined && e.maintainers !== null) {
    if (!Array.isArray(e.maintainers) || !e.maintainers.every(isMap)) out.push(`"maintainers" must be a list of {name, email} maps`);
  }
  out.push(...signatureProblems(e.signature));
  return out;
}

/** An HTML or XML page where an index was expected (a login page, a web view of the file). */
export function htmlPage(index: string): DiginfraError {
  return invalid(index, ['got an HTML/XML page, not a YAML index'], 'check the URL: it should point at the raw index.yaml, not a web page or a login page');
}

/**
 * Checks the entries of one index one at a time (so a large index need not be held whole): `add`
 * returns the entry when it is fine, `finish` throws INDEX_INVALID naming every bad entry.
 */
export class IndexChecker {
  private readonly lines: string[] = [];
  /** name -> position of its first entry */
  private readonly seen = new Map<string, number>();
  private position = 0;

  constructor(private readonly index: string) {}

  add(item: unknown): IndexEntry | undefined {
    const pos = ++this.position;
    if (!isMap(item)) {
      this.lines.push(`entry ${pos}: must be a map with ${MANDATORY.join(', ')}, not ${kind(item)}`);
      return undefined;
    }
    const name = typeof item.name === 'string' && item.name !== '' ? item.name : undefined;
    const problems = entryProblems(item);
    if (name !== undefined) {
      const first = this.seen.get(name);
      if (first !== undefined) problems.push(`name "${name}" is already used by entry ${first}`);
      else this.seen.set(name, pos);
    }
    if (problems.length > 0) {
      this.lines.push(`entry ${pos} (${name === undefined ? 'no name' : `"${name}"`}): ${problems.join('; ')}`);
      return undefined;
    }
    return item as IndexEntry;
  }

  finish(): void {
    if (this.lines.length > 0) throw invalid(this.index, this.lines);
  }
}

/**
 * Pure: a parsed index (any JSON-like value) to its entries. Throws INDEX_INVALID naming the index,
 * every bad entry (position and name) and each field.
 */
export function validateIndex(raw: unknown, index: string): IndexEntry[] {
  if (raw === null || raw === undefined) throw invalid(index, ['the file is empty; expected a YAML list of artifact entries']);
  if (typeof raw === 'string' && /^\s*</.test(raw)) throw htmlPage(index);
  if (!Array.isArray(raw)) {
    const keys = isMap(raw) ? ` (keys: ${Object.keys(raw).slice(0, 5).join(', ')}${Object.keys(raw).length > 5 ? ', ...' : ''})` : '';
    throw invalid(index, [`expected a YAML list of artifact entries, got ${kind(raw)}${keys}`], 'check the URL points at an index file (a list of entries with name, type, registry, repository, description, keywords)');
  }
  const checker = new IndexChecker(index);
  for (const item of raw) checker.add(item);
  checker.finish();
  return raw as IndexEntry[];
}
