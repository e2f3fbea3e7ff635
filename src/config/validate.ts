/**
 * Pure validation of a parsed config file: no I/O. Every problem is collected, then thrown as one
 * CONFIG_INVALID error whose lines each name the file and the key path.
 */
import { DiginfraError } from '../errors.js';
import { defaultConfig, type DiginfraConfig } from './types.js';
import { ALIASES, IGNORED, KEY_BY_PATH, KEYS } from './keys.js';
import { coerceValue, isPlainObject } from './coerce.js';
import { closest } from './suggest.js';

/** The result of validation: the config, which canonical keys the file set, and notes for the user. */
export interface CheckedConfig {
  config: DiginfraConfig;
  /** Canonical key paths the file set (directly or through a falcoctl alias). */
  present: Set<string>;
  /** Accepted but ignored keys, and the like. */
  warnings: string[];
}

interface Level {
  /** key -> full dotted path of a leaf (canonical, alias or ignored) */
  leaves: Map<string, string>;
  sections: Map<string, Level>;
}

function buildTree(): Level {
  const root: Level = { leaves: new Map(), sections: new Map() };
  const paths = [...KEYS.map((k) => k.path), ...ALIASES.keys(), ...IGNORED.keys()];
  for (const path of paths) {
    const parts = path.split('.');
    let level = root;
    for (const part of parts.slice(0, -1)) {
      let next = level.sections.get(part);
      if (!next) {
        next = { leaves: new Map(), sections: new Map() };
        level.sections.set(part, next);
      }
      level = next;
    }
    level.leaves.set(parts.at(-1)!, path);
  }
  return root;
}

let TREE: Level | undefined;

/** Sets a dotted path inside the config, creating `registry.auth` on first use. */
export function setPath(config: DiginfraConfig, path: string, value: unknown): void {
  const parts = path.split('.');
  let obj = config as unknown as Record<string, unknown>;
  for (const part of parts.slice(0, -1)) {
    if (obj[part] === undefined) obj[part] = part === 'auth' ? { basic: [], oauth: [], gcp: [] } : {};
    obj = obj[part] as Record<string, unknown>;
  }
  const last = parts.at(-1)!;
  if (value === undefined) delete obj[last];
  else obj[last] = value;
}

export function getPath(config: DiginfraConfig, path: string): unknown {
  let obj: unknown = config;
  for (const part of path.split('.')) {
    if (!isPlainObject(obj)) return undefined;
    obj = obj[part];
  }
  return obj;
}

/** Lines of a CONFIG_INVALID error, each prefixed with `config FILE: `. */
export function configError(file: string, problems: string[], hint?: string): DiginfraError {
  return new DiginfraError('CONFIG_INVALID', problems.map((p) => `config ${file}: ${p}`).join('\n'), {
    hint: hint ?? `fix ${problems.length === 1 ? 'this key' : 'these keys'} in ${file}; docs/configuration.md lists every key`,
  });
}

/** Validates, collects every problem, and reports which keys were set. Throws CONFIG_INVALID. */
export function checkConfig(raw: unknown, file: string): CheckedConfig {
  TREE ??= buildTree();
  const config = defaultConfig();
  const present = new Set<string>();
  const warnings: string[] = [];
  const problems: string[] = [];
  /** canonical path -> the file key that set it, and whether a more specific key may override it */
  const setBy = new Map<string, { key: string; weak: boolean }>();
  /** Map entries set through an alias, merged after the walk. */
  const mapEntries: { fileKey: string; mapKey: string; entry: string; value: string }[] = [];

  if (raw === null || raw === undefined) return { config, present, warnings };
  if (!isPlainObject(raw)) {
    throw configError(file, [`the file must be a YAML map of sections (indexes, registry, install, follow), not ${Array.isArray(raw) ? 'a list' : typeof raw}`]);
  }

  const leaf = (fileKey: string, value: unknown): void => {
    if (value === null || value === undefined) return;
    const ignored = IGNORED.get(fileKey);
    if (ignored !== undefined) {
      warnings.push(`config ${file}: ${fileKey} is ignored: ${ignored}`);
      return;
    }
    const targets = ALIASES.get(fileKey) ?? [fileKey];
    const direct = KEY_BY_PATH.get(targets[0]!);
    if (!direct) {
      // An alias for one entry of a map key (artifact.install.assetsDir -> install.dirs.asset):
      // merged once the whole file is read, whatever the order of its sections.
      if (typeof value !== 'string' || value.trim() === '') {
        problems.push(`${fileKey} must be a non-empty string`);
        return;
      }
      const cut = targets[0]!.lastIndexOf('.');
      mapEntries.push({ fileKey, mapKey: targets[0]!.slice(0, cut), entry: targets[0]!.slice(cut + 1), value });
      return;
    }
    const def = direct;
    const coerced = coerceValue(def, value, fileKey, problems);
    if (!coerced.ok) return;
    const weak = targets.length > 1;
    for (const target of targets) {
      const prev = setBy.get(target);
      if (prev) {
        if (weak && !prev.weak) continue; // artifact.allowedTypes does not override install.allowedTypes
        if (!(prev.weak && !weak)) {
          problems.push(`${fileKey} and ${prev.key} both set ${target}; keep one`);
          continue;
        }
      }
      setBy.set(target, { key: fileKey, weak });
      setPath(config, target, structuredClone(coerced.value));
      if (coerced.value === undefined) present.delete(target);
      else present.add(target);
    }
  };

  const walk = (obj: Record<string, unknown>, level: Level, prefix: string): void => {
    for (const [k, v] of Object.entries(obj)) {
      const full = prefix ? `${prefix}.${k}` : k;
      const leafPath = level.leaves.get(k);
      if (leafPath !== undefined) {
        leaf(leafPath, v);
        continue;
      }
      const section = level.sections.get(k);
      if (section) {
        if (v === null || v === undefined) continue;
        if (!isPlainObject(v)) {
          problems.push(`${full} must be a map of keys (${[...section.leaves.keys(), ...section.sections.keys()].join(', ')}), not ${Array.isArray(v) ? 'a list' : typeof v}`);
          continue;
        }
        walk(v, section, full);
        continue;
      }
      const candidates = [...level.leaves.keys(), ...level.sections.keys()];
      const near = closest(k, candidates);
      problems.push(
        `unknown key "${full}"${near === undefined ? `; ${prefix ? `${prefix} has` : 'the top level has'} ${candidates.join(', ')}` : ` (did you mean "${prefix ? `${prefix}.` : ''}${near}"?)`}`,
      );
    }
  };
  walk(raw, TREE, '');
  for (const { fileKey, mapKey, entry, value } of mapEntries) {
    const map = (getPath(config, mapKey) ?? {}) as Record<string, string>;
    if (present.has(mapKey) && Object.hasOwn(map, entry) && setBy.has(mapKey)) {
      problems.push(`${fileKey} and ${mapKey}.${entry} both set ${mapKey}.${entry}; keep one`);
      continue;
    }
    setPath(config, mapKey, { ...map, [entry]: value });
    present.add(mapKey);
  }

  if (problems.length > 0) throw configError(file, problems);
  return { config, present, warnings };
}

/**
 * Pure: a parsed config file (any JSON-like value) to a complete config with defaults filled in.
 * Errors name the file and the key path: `config /x.yaml: install.resolveDeps must be true or false`.
 */
export function validateConfig(raw: unknown, file: string): DiginfraConfig {
  return checkConfig(raw, file).config;
}
