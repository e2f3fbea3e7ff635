/**
 * Writing the config file back after a change (`index add|remove`): edits the YAML document in place so
 * comments, key order and unrelated keys survive, then replaces the file atomically.
 */
import { readFile, stat } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { DiginfraError, messageOf } from '../errors.js';
import { defaultConfig, type DiginfraConfig, type IndexConfig } from './types.js';
import { ALIASES, KEYS } from './keys.js';
import { checkConfig, configError, getPath } from './validate.js';
import { loadConfigFile } from './load.js';
import { writeFileAtomic } from './atomic-write.js';
import type { Env } from './paths.js';

type YamlModule = typeof import('yaml');
type Doc = import('yaml').Document.Parsed | import('yaml').Document;

function toJs(doc: Doc, node: unknown): unknown {
  const y = node as { toJS?: (doc: Doc) => unknown };
  return typeof y?.toJS === 'function' ? y.toJS(doc) : node;
}

/** Where the file holds a canonical key: an alias the file already uses, else the canonical path. */
function locate(doc: Doc, path: string): string[] {
  for (const [alias, targets] of ALIASES) {
    if (targets.length === 1 && targets[0] === path && doc.hasIn(alias.split('.'))) return alias.split('.');
  }
  return path.split('.');
}

/** Replaces the items of an `indexes` sequence, keeping the nodes (and their comments) of kept entries. */
function mergeIndexes(y: YamlModule, doc: Doc, seq: import('yaml').YAMLSeq, next: IndexConfig[]): void {
  const byName = new Map<string, import('yaml').YAMLMap>();
  for (const item of seq.items) {
    if (y.isMap(item)) {
      const name = item.get('name');
      if (typeof name === 'string') byName.set(name, item);
    }
  }
  // A block list reads better than `[ { name: ..., url: ... } ]` (an empty `indexes: []` is flow).
  if (next.length > 0) seq.flow = false;
  seq.items = next.map((ix) => {
    const node = byName.get(ix.name);
    if (!node) return doc.createNode(ix);
    for (const field of ['url', 'added', 'backend'] as const) {
      const v = ix[field];
      if (v === undefined) node.delete(field);
      else if (node.get(field) !== v) node.set(field, v);
    }
    return node;
  });
}

/**
 * Saves `config` to `path`: only keys that differ from what the file says change; keys the file lacks
 * are added only when they differ from the defaults. Keeps the file's mode (new files: 0644, or 0600
 * when they hold registry credentials). Atomic: temp file, fsync, rename.
 */
export async function saveConfig(path: string, config: DiginfraConfig): Promise<void> {
  const y = await import('yaml');
  let text: string | undefined;
  let mode: number | undefined;
  try {
    text = await readFile(path, 'utf8');
    mode = (await stat(path)).mode & 0o777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new DiginfraError('IO', `config ${path}: cannot read: ${messageOf(err)}`, { cause: err });
    }
  }
  const doc: Doc = text === undefined ? new y.Document({}) : y.parseDocument(text);
  if (doc.errors.length > 0) {
    throw configError(path, [`cannot update the file, its YAML does not parse: ${doc.errors[0]!.message.split('\n')[0]}`], `fix ${path} first`);
  }
  if (doc.contents === null || (y.isScalar(doc.contents) && doc.contents.value === null)) doc.contents = doc.createNode({}) as never;
  if (!y.isMap(doc.contents)) throw configError(path, ['cannot update the file: it is not a YAML map']);

  const defaults = defaultConfig();
  for (const def of KEYS) {
    const value = getPath(config, def.path);
    const where = locate(doc, def.path);
    const has = doc.hasIn(where);
    if (value === undefined) {
      if (has) doc.deleteIn(where);
      continue;
    }
    const node = has ? doc.getIn(where, true) : undefined;
    if (has && isDeepStrictEqual(toJs(doc, node), value)) continue;
    if (!has && isDeepStrictEqual(value, getPath(defaults, def.path))) continue;
    if (def.kind === 'indexes' && y.isSeq(node)) mergeIndexes(y, doc, node, value as IndexConfig[]);
    else doc.setIn(where, doc.createNode(value));
  }
  const holdsSecrets = (config.registry.auth?.basic.length ?? 0) + (config.registry.auth?.oauth.length ?? 0) > 0;
  await writeFileAtomic(path, doc.toString(), { mode: mode ?? (holdsSecrets ? 0o600 : 0o644) });
}

/**
 * Read-modify-write of the file alone (never the environment overrides): `mutate` gets the file's
 * validated config and returns the new one, which is validated again before it is saved.
 */
export async function updateConfigFile(
  path: string,
  mutate: (config: DiginfraConfig) => DiginfraConfig | Promise<DiginfraConfig>,
  env: Env = process.env,
): Promise<DiginfraConfig> {
  const { config } = await loadConfigFile(path, env);
  const next = await mutate(structuredClone(config));
  checkConfig(next, path);
  await saveConfig(path, next);
  return next;
}
