/**
 * Index YAML to entries, one entry at a time. The yaml library's document model costs about a
 * hundred bytes of memory per byte of YAML (a 9 MB index peaked near 1 GB), so a plain index (one
 * block list at column 0, as every index is written) is cut at its top-level `- ` items and each item
 * is parsed on its own: memory then follows the largest item, not the file. The cuts come from the
 * library's own lexer, so a `-` inside a scalar, a block scalar or a flow collection never counts.
 * Anything else (aliases, directives, several documents, a flow list, content at column 0 that is
 * not an item) is parsed as one document, exactly as before.
 */
import type { DiginfraError } from '../errors.js';
import { IndexChecker, htmlPage, invalid, validateIndex } from './validate.js';
import type { IndexEntry } from './types.js';

type YamlModule = typeof import('yaml');

/** Lexer tokens that are markers, not source text (yaml's CST.DOCUMENT, FLOW_END, SCALAR). */
const DOCUMENT = '\x02';
const FLOW_END = '\x18';
const SCALAR = '\x1f';
const BOM = '\u{FEFF}';

/**
 * Offsets where the top-level items of a plain block list start, or undefined when the text is not
 * one (then it must be parsed whole). Pure: reads the lexer's tokens, keeps only the offsets.
 */
export function topLevelItems(y: Pick<YamlModule, 'Lexer'>, text: string): number[] | undefined {
  const starts: number[] = [];
  let offset = 0;
  let flow = 0;
  let documents = 0;
  let docStarts = 0;
  let scalarNext = false;
  for (const token of new y.Lexer().lex(text)) {
    if (token === SCALAR) {
      scalarNext = true;
      continue;
    }
    if (token === DOCUMENT) {
      if (++documents > 1) return undefined;
      continue;
    }
    if (token === FLOW_END) return undefined;
    const atLineStart = offset === 0 || text.charCodeAt(offset - 1) === 10;
    const first = token[0];
    const blank = first === undefined || first === ' ' || first === '\t' || first === '\r' || first === '\n' || first === '#';
    if (scalarNext) {
      // A scalar's text: content at column 0 is not part of an item (block scalars start with their indentation).
      if (atLineStart && !blank) return undefined;
      if (starts.length === 0) return undefined;
    } else if (token === '-' && atLineStart && flow === 0) {
      starts.push(offset);
    } else if (token === '---' && atLineStart && starts.length === 0 && docStarts === 0) {
      docStarts++;
    } else if (token === BOM && offset === 0) {
      // allowed before anything
    } else if (first === '*' || first === '%' || token === '...' || token === '---') {
      return undefined; // aliases refer across items; directives and documents markers need the whole stream
    } else {
      if (atLineStart && !blank) return undefined;
      if (starts.length === 0 && !blank) return undefined;
      if (token === '[' || token === '{') flow++;
      else if (token === ']' || token === '}') flow--;
    }
    scalarNext = false;
    offset += token.length;
  }
  // Every byte accounted for, or the cut is not to be trusted.
  return offset === text.length && starts.length > 0 ? starts : undefined;
}

function syntaxError(index: string, e: import('yaml').YAMLError, lineOffset: number): DiginfraError {
  const pos = e.linePos?.[0];
  return invalid(index, [
    `the YAML does not parse: ${pos ? `line ${pos.line + lineOffset}, column ${pos.col}: ` : ''}${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`,
  ]);
}

function parseWhole(y: YamlModule, text: string, index: string): unknown {
  const doc = y.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) throw syntaxError(index, doc.errors[0]!, 0);
  return doc.toJS({ maxAliasCount: 10_000 });
}

function countLines(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = text.indexOf('\n', from); i >= 0 && i < to; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * Parses and validates index text, calling `visit` with each valid entry in order. Throws
 * INDEX_INVALID (every bad entry named, as validateIndex does) after the last entry; until this
 * returns, what `visit` was given must not be committed anywhere. Returns the number of entries.
 */
export async function forEachIndexEntry(text: string, index: string, visit: (entry: IndexEntry) => void | Promise<void>): Promise<number> {
  if (/^\s*<(!doctype|html|\?xml|head|body)/i.test(text)) throw htmlPage(index);
  const y = await import('yaml');
  const starts = topLevelItems(y, text);
  if (starts === undefined) {
    const entries = validateIndex(parseWhole(y, text, index), index);
    for (const e of entries) await visit(e);
    return entries.length;
  }
  const checker = new IndexChecker(index);
  let line = countLines(text, 0, starts[0]!);
  for (let i = 0; i < starts.length; i++) {
    const from = starts[i]!;
    const to = starts[i + 1] ?? text.length;
    const item = text.slice(from, to);
    const doc = y.parseDocument(item, { prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0) throw syntaxError(index, doc.errors[0]!, line);
    const value = doc.toJS() as unknown;
    if (!Array.isArray(value) || value.length !== 1) {
      // The lexer's cut and the parser disagree (not seen in practice): refuse rather than guess.
      throw invalid(index, [`the YAML does not parse: line ${line + 1}: the list item starting here does not read as one item`]);
    }
    const entry = checker.add(value[0]);
    if (entry !== undefined) await visit(entry);
    line += countLines(item, 0, item.length);
  }
  checker.finish();
  return starts.length;
}

/** Index text (YAML) to entries: sniffs HTML, parses, validates. Loads the YAML library on demand. */
export async function parseIndexText(text: string, index: string): Promise<IndexEntry[]> {
  const entries: IndexEntry[] = [];
  await forEachIndexEntry(text, index, (e) => {
    entries.push(e);
  });
  return entries;
}
