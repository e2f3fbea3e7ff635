/**
 * The code's shape, checked: imports flow one way down the pipeline, and a folder is entered only
 * through its `index.ts` (its public surface). docs/development.md explains the layers.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../src');

/**
 * Each top-level folder of src/ and its layer: a folder may import folders of a lower layer only.
 * Top to bottom: cli → follow → install → artifact → content → indexes → signature → registry →
 * resolve, config → platform → reference, util, metrics, log, errors. (An index entry carries a
 * signature policy, whose grammar is signature's.)
 */
const LAYERS: Record<string, number> = {
  cli: 10,
  follow: 9,
  install: 8,
  artifact: 7,
  content: 6,
  indexes: 5.5,
  signature: 5,
  registry: 4,
  resolve: 3,
  config: 3,
  platform: 2,
  reference: 1,
  util: 1,
  metrics: 1,
  log: 1,
  'errors.ts': 0,
};

interface Import {
  from: string;
  to: string;
  line: number;
  dynamic: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

/** Relative imports of a file: static (`import`/`export ... from`) and dynamic (`import('...')`). */
function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const found: Import[] = [];
  const patterns: [RegExp, boolean][] = [
    [/(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+'(\.[^']+)'/g, false],
    [/(?:^|\n)\s*import\s+'(\.[^']+)'/g, false],
    [/\bimport\(\s*'(\.[^']+)'\s*\)/g, true],
  ];
  for (const [re, dynamic] of patterns) {
    for (const m of text.matchAll(re)) {
      const spec = m[1]!;
      const line = text.slice(0, m.index + m[0].length).split('\n').length;
      found.push({ from: file, to: resolve(dirname(file), spec.replace(/\.js$/, '.ts')), line, dynamic });
    }
  }
  return found;
}

/** The top-level folder of src/ a path belongs to (or `errors.ts` for the root file). */
function folderOf(path: string): string {
  return relative(SRC, path).split(sep)[0]!;
}

const where = (i: Import) => `${relative(SRC, i.from)}:${i.line} → ${relative(SRC, i.to)}`;

/** Imports into a folder of the same or a higher layer than the importing file's. */
function upward(list: readonly Import[]): string[] {
  return list
    .filter((i) => folderOf(i.from) !== folderOf(i.to))
    .filter((i) => LAYERS[folderOf(i.to)]! >= LAYERS[folderOf(i.from)]!)
    .map(where);
}

/** Static imports into another folder that do not go through its index.ts. */
function deep(list: readonly Import[]): string[] {
  return list
    .filter((i) => !i.dynamic && folderOf(i.from) !== folderOf(i.to) && folderOf(i.to) !== 'errors.ts')
    .filter((i) => relative(SRC, i.to) !== join(folderOf(i.to), 'index.ts'))
    .map(where);
}

const imports = sourceFiles(SRC).flatMap(importsOf);

describe('the architecture', () => {
  it('has a layer for every folder of src/', () => {
    const folders = readdirSync(SRC).filter((name) => statSync(join(SRC, name)).isDirectory() || name === 'errors.ts');
    expect(folders.filter((f) => LAYERS[f] === undefined)).toEqual([]);
  });

  it('imports only downward: no folder imports a folder of its own or a higher layer', () => {
    expect(upward(imports)).toEqual([]);
  });

  it('enters another folder only through its index.ts (lazy import() excepted: it keeps per-command chunks small)', () => {
    expect(deep(imports)).toEqual([]);
  });

  it('gives every folder an index.ts', () => {
    const missing = Object.keys(LAYERS)
      .filter((f) => f !== 'errors.ts' && f !== 'cli')
      .filter((f) => {
        try {
          return !statSync(join(SRC, f, 'index.ts')).isFile();
        } catch {
          return true;
        }
      });
    expect(missing).toEqual([]);
  });

  it('runs no code on import, but for the entry points (the bundle counts on it: scripts/bundle.mjs)', () => {
    const entryPoints = new Set(['cli/main.ts', 'cli/node-version.ts', 'cli/program.ts', 'follow/validate-worker.ts']);
    const statement = /^(?:void |await |if \(|for \(|while \(|try |[\w.]+\()/;
    const running = sourceFiles(SRC).flatMap((f) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .map((text, i) => ({ file: relative(SRC, f), where: `${relative(SRC, f)}:${i + 1}: ${text}`, text }))
        // `name() {` is shell inside a template string (completion scripts), not a statement of ours.
        .filter(({ text }) => statement.test(text) && !/^[\w-]+\(\) \{$/.test(text)),
    );
    expect(running.filter((r) => !entryPoints.has(r.file)).map((r) => r.where)).toEqual([]);
    // The entry points do run code at the top level: the check sees it.
    expect(new Set(running.map((r) => r.file))).toEqual(entryPoints);
  });

  it('finds an upward, a sideways and a deep import in made-up files (the checks can fail)', () => {
    const at = (...p: string[]) => join(SRC, ...p);
    const made: Import[] = [
      { from: at('registry', 'fake.ts'), to: at('install', 'index.ts'), line: 1, dynamic: false },
      { from: at('resolve', 'fake.ts'), to: at('config', 'index.ts'), line: 2, dynamic: false },
      { from: at('install', 'fake.ts'), to: at('reference', 'reference.ts'), line: 3, dynamic: false },
      { from: at('install', 'fake.ts'), to: at('reference', 'index.ts'), line: 4, dynamic: false },
      { from: at('cli', 'fake.ts'), to: at('follow', 'follower.ts'), line: 5, dynamic: true },
    ];
    expect(upward(made)).toEqual(['registry/fake.ts:1 → install/index.ts', 'resolve/fake.ts:2 → config/index.ts']);
    expect(deep(made)).toEqual(['install/fake.ts:3 → reference/reference.ts']);
    expect(importsOf(join(import.meta.dirname, 'architecture.test.ts')).length).toBeGreaterThan(0);
  });
});
