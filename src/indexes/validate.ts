/**
 * Pure validation of an index file. Every bad entry is reported in one INDEX_INVALID error, one line
 * per entry: `index "corp": entry 4 ("k8saudit"): missing "registry"`. Positions are 1-based.
 */
import { DiginfraError } from '../errors.js';
import { signatureProblems } from './policy.js';
import type { IndexEntry } from './types.js';

const MANDATORY = ['name', 'type', 'registry', 'repository', 'description', 'keywords'] as const;
const NAME_RE = /^[a-z0-9][a-z0-9._-]*$/;
const TYPE_RE = /^[a-z][a-z0-9-]*$/;
const HOST_RE =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REPOSITORY_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);

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

function invalid(index: string, lines: string[], hint?: string): DiginfraError {
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
    if (f === 'registry' && !HOST_RE.test(v)) out.push(`"registry" "${v}" is not a host[:port]`);
    if (f === 'repository' && !REPOSITORY_RE.test(v)) out.push(`"repository" "${v}" is not an OCI repository path (lower-case components separated by "/")`);
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

/**
 * Pure: a parsed index (any JSON-like value) to its entries. Throws INDEX_INVALID naming the index,
 * every bad entry (position and name) and each field.
 */
export function validateIndex(raw: unknown, index: string): IndexEntry[] {
  if (raw === null || raw === undefined) throw invalid(index, ['the file is empty; expected a YAML list of artifact entries']);
  if (typeof raw === 'string' && /^\s*</.test(raw)) {
    throw invalid(index, ['got an HTML/XML page, not a YAML index'], 'check the URL: it should point at the raw index.yaml, not a web page or a login page');
  }
  if (!Array.isArray(raw)) {
    const keys = isMap(raw) ? ` (keys: ${Object.keys(raw).slice(0, 5).join(', ')}${Object.keys(raw).length > 5 ? ', ...' : ''})` : '';
    throw invalid(index, [`expected a YAML list of artifact entries, got ${kind(raw)}${keys}`], 'check the URL points at an index file (a list of entries with name, type, registry, repository, description, keywords)');
  }
  const lines: string[] = [];
  const seen = new Map<string, number>();
  raw.forEach((item, i) => {
    const pos = i + 1;
    if (!isMap(item)) {
      lines.push(`entry ${pos}: must be a map with ${MANDATORY.join(', ')}, not ${kind(item)}`);
      return;
    }
    const name = typeof item.name === 'string' && item.name !== '' ? item.name : undefined;
    const problems = entryProblems(item);
    if (name !== undefined) {
      const first = seen.get(name);
      if (first !== undefined) problems.push(`name "${name}" is already used by entry ${first}`);
      else seen.set(name, pos);
    }
    if (problems.length > 0) lines.push(`entry ${pos} (${name === undefined ? 'no name' : `"${name}"`}): ${problems.join('; ')}`);
  });
  if (lines.length > 0) throw invalid(index, lines);
  return raw as IndexEntry[];
}

/** Index text (YAML) to entries: sniffs HTML, parses, validates. Loads the YAML library on demand. */
export async function parseIndexText(text: string, index: string): Promise<IndexEntry[]> {
  if (/^\s*<(!doctype|html|\?xml|head|body)/i.test(text)) {
    throw invalid(index, ['got an HTML/XML page, not a YAML index'], 'check the URL: it should point at the raw index.yaml, not a web page or a login page');
  }
  const { parseDocument } = await import('yaml');
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    throw invalid(index, [
      `the YAML does not parse: ${pos ? `line ${pos.line}, column ${pos.col}: ` : ''}${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`,
    ]);
  }
  return validateIndex(doc.toJS({ maxAliasCount: 10_000 }), index);
}
