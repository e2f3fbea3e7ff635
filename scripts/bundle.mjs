#!/usr/bin/env node
/**
 * Bundles the compiled CLI (dist/, from tsc) into the shipped bin: dist/bin/diginfractl.cjs, the
 * validate worker, and one chunk per lazily imported command (rolldown, the bundler inside vite).
 *
 * Why a CommonJS bundle: importing a Node builtin from an ES module builds a namespace of every export,
 * which runs every lazy getter (`node:http` loads Node's whole internal fetch/WebSocket stack for
 * `http.WebSocket`, `node:process` builds process.report, `node:fs` loads fs/promises...); `require()`
 * does not. Measured on `artifact search`: 88 -> 75 ms; the idle `follow` agent drops Node's internal
 * undici (0.7 MB of source plus http2, perf_hooks and web streams). See docs/benchmarks.md.
 *
 * Output is minified (smaller source strings held in the heap) and ASCII only: V8 stores a script
 * with one non-Latin-1 character as UTF-16, twice the memory. pino and cron-parser stay in
 * node_modules: they are loaded on demand with require() (src/log/logger.ts, src/follow/schedule.ts).
 *
 *   node scripts/bundle.mjs        (npm run build runs it after tsc)
 */
import { chmod, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, 'dist/bin');

/** Escapes every non-ASCII UTF-16 unit as \uXXXX: valid in strings, templates, regexps and comments alike. */
function asciiOnly(code) {
  return code.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Node builtins that a dependency imports at load time for paths this CLI never takes: each gets a
 * stand-in that loads the real module on first use (a call, or reading a property). commander:
 * child_process (with net, dgram and streams) for executable subcommands, which this CLI does not have.
 */
const LAZY_BUILTINS = [
  { builtin: 'node:child_process', importer: /[\\/]node_modules[\\/]commander[\\/]/ },
];
const lazyBuiltins = {
  name: 'lazy-builtins',
  resolveId(source, importer) {
    const lazy = LAZY_BUILTINS.find((l) => l.builtin === source && importer && l.importer.test(importer));
    return lazy ? `\0lazy:${lazy.builtin}` : null;
  },
  load(id) {
    if (!id.startsWith('\0lazy:')) return null;
    const real = `process.getBuiltinModule(${JSON.stringify(id.slice('\0lazy:'.length))})`;
    return `export default new Proxy(function () {}, { apply: (_, self, args) => Reflect.apply(${real}, self, args), get: (_, key) => ${real}[key] });`;
  },
};

/**
 * undici's client loads its HTTP/2 client (and node:http2, ~10 ms) at start-up; it is needed only
 * once a TLS server has chosen h2. The require moves into the function that uses it, which the
 * bundler's CommonJS wrapper then runs on first call. The build fails if undici's source changes shape.
 */
const H2_REQUIRE = "const connectH2 = require('./client-h2.js')";
const lazyUndiciH2 = {
  name: 'lazy-undici-h2',
  transform(code, id) {
    if (!/[\\/]node_modules[\\/]undici[\\/]lib[\\/]dispatcher[\\/]client\.js$/.test(id)) return null;
    if (!code.includes(H2_REQUIRE)) throw new Error(`${id}: "${H2_REQUIRE}" not found; update lazyUndiciH2 in scripts/bundle.mjs`);
    // Every argument passes through, whatever undici's call site gives it.
    return code.replace(H2_REQUIRE, "const connectH2 = (...args) => require('./client-h2.js')(...args)");
  },
};

/**
 * Our own modules have no side effects when imported, except the ones that run something: the entry
 * points and program.js, which runs the command it is loaded for. Telling the bundler so (what
 * `"sideEffects": false` in a package.json says for a library) lets a folder's index.ts be its public
 * surface without cost: a command's chunk gets only the modules behind the names it imports, not
 * everything the index re-exports. Measured on `artifact list`: 688 KB of chunks loaded at start
 * (undici and the registry client, reached through follow/index.ts) without this, 100 KB with it.
 * test/architecture.test.ts fails if another module of ours gains top-level code that runs.
 */
const RUNS_ON_IMPORT = /[\\/]dist[\\/](cli[\\/](main|program|node-version)|follow[\\/]validate-worker)\.js$/;
const ownModule = (id) => id.startsWith(join(ROOT, 'dist') + sep);

await rm(OUT, { recursive: true, force: true });
await build({
  input: {
    diginfractl: join(ROOT, 'dist/cli/main.js'),
    'validate-worker': join(ROOT, 'dist/follow/validate-worker.js'),
  },
  platform: 'node',
  treeshake: { moduleSideEffects: (id) => !ownModule(id) || RUNS_ON_IMPORT.test(id) },
  external: ['pino', 'cron-parser'],
  plugins: [lazyBuiltins, lazyUndiciH2],
  logLevel: 'warn',
  onLog(level, log, handler) {
    // run.js is shared by every action, so its dynamic import cannot split: expected, not a problem.
    if (log.code === 'INEFFECTIVE_DYNAMIC_IMPORT') return;
    handler(level, log);
  },
  output: {
    dir: OUT,
    format: 'cjs',
    minify: true,
    entryFileNames: '[name].cjs',
    chunkFileNames: '[name]-[hash].cjs',
  },
});

for (const name of await readdir(OUT)) {
  if (!name.endsWith('.cjs')) continue;
  const path = join(OUT, name);
  const code = await readFile(path, 'utf8');
  const ascii = asciiOnly(code);
  if (ascii !== code) await writeFile(path, ascii);
}
const bin = join(OUT, 'diginfractl.cjs');
if (!(await readFile(bin, 'utf8')).startsWith('#!/usr/bin/env ')) throw new Error(`${bin} lost its shebang`);
await chmod(bin, 0o755);
