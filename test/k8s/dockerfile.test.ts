/**
 * The container image, checked by reading the Dockerfile: Node 24 base, production dependencies only,
 * non-root numeric USER, ENTRYPOINT diginfractl, no HEALTHCHECK, no downloads, no architecture-specific
 * steps; and a .dockerignore that sends only what the build copies. The image itself is built with
 * podman and run by image-e2e.test.ts; its runtime stage is also assembled and run without an engine
 * by pod-e2e.test.ts (image.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/helm.js';
import { IMAGE_ENV, IMAGE_UID } from './image.js';

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  image: string;
  name?: string;
  platformFlag?: string;
  body: Instruction[];
}

/** Joins continuation lines, drops comments and blank lines, splits into instructions. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (current === '' && (line.trim() === '' || line.trimStart().startsWith('#'))) continue;
    if (current !== '' && line.trimStart().startsWith('#')) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    const m = /^\s*(\w+)\s+([\s\S]*)$/.exec(current);
    if (m) out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim() });
    current = '';
  }
  return out;
}

function parseDockerfile(text: string): { globalArgs: Record<string, string>; stages: Stage[] } {
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructions(text)) {
    if (ins.op === 'FROM') {
      const m = /^(?:--platform=(\S+)\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`cannot parse FROM ${ins.args}`);
      const image = m[2]!.replace(/\$\{?(\w+)\}?/g, (_, name: string) => globalArgs[name] ?? `$${name}`);
      stages.push({ from: ins.args, image, ...(m[3] && { name: m[3] }), ...(m[1] && { platformFlag: m[1] }), body: [] });
    } else if (stages.length === 0) {
      if (ins.op === 'ARG') {
        const [name, value] = ins.args.split('=');
        globalArgs[name!] = value ?? '';
      }
    } else {
      stages.at(-1)!.body.push(ins);
    }
  }
  return { globalArgs, stages };
}

const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
const { stages } = parseDockerfile(dockerfile);
const runtime = stages.at(-1)!;
const stageByName = (name: string) => stages.find((s) => s.name === name);
const runs = (s: Stage) => s.body.filter((i) => i.op === 'RUN').map((i) => i.args);

describe('Dockerfile', () => {
  it('is multi-stage and every stage is based on Node 24', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const s of stages) {
      expect(s.image, `FROM ${s.from}`).toMatch(/^(?:docker\.io\/(?:library\/)?)?node:24(?:[.-][\w.-]*)?$|^gcr\.io\/distroless\/nodejs24-debian\d+(?::[\w.-]+)?$/);
    }
    expect(runtime.image, 'runtime image is slim or distroless').toMatch(/slim|distroless/);
  });

  it('builds with npm ci and npm run build, which compiles src/ and bundles src/cli/main.ts into the bin dist/bin/diginfractl.cjs', () => {
    const build = stages.find((s) => runs(s).some((r) => /\bnpm run build\b/.test(r)));
    expect(build, 'a stage runs npm run build').toBeDefined();
    expect(runs(build!).some((r) => /\bnpm ci\b/.test(r)), 'the build stage installs with npm ci').toBe(true);
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
    expect(pkg.bin.diginfractl).toBe('dist/bin/diginfractl.cjs');
    expect(pkg.scripts.build).toMatch(/^tsc -p tsconfig\.json && node scripts\/bundle\.mjs$/);
    const tsconfig = JSON.parse(readFileSync(join(REPO_ROOT, 'tsconfig.json'), 'utf8'));
    expect([tsconfig.compilerOptions.rootDir, tsconfig.compilerOptions.outDir]).toEqual(['src', 'dist']);
    // The entry is run through a symlink on PATH, so it needs its shebang.
    const shebang = /^#!\/usr\/bin\/env (-S ([A-Z_]+=\S* )*)?node( [^\n]*)?\n/;
    expect(readFileSync(join(REPO_ROOT, 'src/cli/main.ts'), 'utf8')).toMatch(shebang);
    expect(readFileSync(join(REPO_ROOT, 'dist/bin/diginfractl.cjs'), 'utf8')).toMatch(shebang);
  });

  it('puts only production dependencies in the runtime image (npm ci --omit=dev; no devDependency such as node)', () => {
    const copies = runtime.body.filter((i) => i.op === 'COPY');
    const nodeModules = copies.filter((c) => /node_modules/.test(c.args));
    expect(nodeModules.length, 'the runtime copies node_modules once').toBe(1);
    const from = /--from=(\S+)/.exec(nodeModules[0]!.args)?.[1];
    expect(from, 'node_modules come from another stage').toBeDefined();
    const deps = stageByName(from!)!;
    expect(deps, `stage ${from}`).toBeDefined();
    const install = runs(deps).filter((r) => /\bnpm (ci|install|i)\b/.test(r));
    expect(install.length).toBe(1);
    expect(install[0]).toMatch(/\bnpm ci\b/);
    expect(install[0]).toMatch(/--omit=dev\b/);
    // The stage that has devDependencies (the one that builds) gives the runtime dist/ only.
    const build = stages.find((s) => runs(s).some((r) => /\bnpm run build\b/.test(r)))!;
    for (const c of copies.filter((x) => x.args.includes(`--from=${build.name}`))) {
      expect(c.args, 'from the build stage only dist/ is copied').toMatch(/^--from=\S+\s+\S*\/dist\/?\s+\S+$/);
    }
    // Nothing installs packages in the runtime stage itself, and nothing is copied from the context but
    // package metadata.
    for (const r of runs(runtime)) expect(r).not.toMatch(/\bnpm (ci|install|i)\b/);
    for (const c of copies.filter((x) => !x.args.includes('--from='))) {
      const sources = c.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1);
      for (const src of sources) expect(['package.json', 'package-lock.json']).toContain(src);
    }
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8'));
    expect(Object.keys(pkg.devDependencies), 'the Node binary from npm is a devDependency').toContain('node');
    expect(Object.keys(pkg.dependencies ?? {})).not.toContain('node');
  });

  it('runs as a fixed non-root numeric USER', () => {
    const users = runtime.body.filter((i) => i.op === 'USER');
    expect(users.length).toBeGreaterThan(0);
    const user = users.at(-1)!.args;
    expect(user).toMatch(/^\d+(?::\d+)?$/);
    const [uid, gid] = user.split(':').map(Number);
    expect(uid).toBeGreaterThan(0);
    if (gid !== undefined) expect(gid).toBeGreaterThan(0);
    expect(uid, 'the chart documents UID 65532').toBe(65532);
  });

  it('has ENTRYPOINT ["diginfractl"], a symlink on PATH to the compiled entry', () => {
    const entrypoints = runtime.body.filter((i) => i.op === 'ENTRYPOINT');
    expect(entrypoints.length).toBe(1);
    expect(JSON.parse(entrypoints[0]!.args)).toEqual(['diginfractl']);
    expect(runs(runtime).join(' ')).toMatch(/ln -s \/app\/dist\/bin\/diginfractl\.cjs \/usr\/local\/bin\/diginfractl/);
    expect(runs(runtime).join(' ')).toMatch(/chmod 0?755 \/app\/dist\/bin\/diginfractl\.cjs/);
    const copies = runtime.body.filter((i) => i.op === 'COPY').map((c) => c.args);
    expect(copies.some((c) => /\/dist\s+(\.\/dist|\/app\/dist)\/?$/.test(c)), 'dist lands in /app/dist').toBe(true);
    expect(runtime.body.find((i) => i.op === 'WORKDIR')?.args).toBe('/app');
    // dist/ is ESM: Node needs /app/package.json ("type": "module") beside it.
    expect(copies).toContain('package.json ./');
    expect(JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).type).toBe('module');
  });

  it('works with a read-only root filesystem: caches and config under the state dir, HOME in /tmp', () => {
    const env = runtime.body.filter((i) => i.op === 'ENV').map((i) => i.args).join(' ');
    expect(env).toMatch(/XDG_CACHE_HOME=\/var\/lib\/diginfractl\//);
    expect(env).toMatch(/XDG_CONFIG_HOME=\/var\/lib\/diginfractl\//);
    expect(env).toMatch(/HOME=\/tmp\b/);
    expect(runs(runtime).join(' ')).toMatch(/chown -R 65532:65532 \/var\/lib\/diginfractl/);
  });

  it('is the image the pod tests assemble and run (test/k8s/image.ts): the same ENV, USER and production-install command', () => {
    const env: Record<string, string> = {};
    for (const i of runtime.body.filter((x) => x.op === 'ENV')) {
      for (const m of i.args.matchAll(/(\w+)=(\S+)/g)) env[m[1]!] = m[2]!;
    }
    const { PATH: _path, ...imageEnv } = IMAGE_ENV;
    expect(env).toEqual(imageEnv);
    expect(runtime.body.filter((i) => i.op === 'USER').at(-1)!.args).toBe(`${IMAGE_UID}:${IMAGE_UID}`);
    expect(runs(stageByName('deps')!).join(' ')).toContain('npm ci --omit=dev --ignore-scripts --no-audit --no-fund');
    expect(runs(runtime).join(' ')).toContain('mkdir -p /etc/diginfractl /var/lib/diginfractl/cache /var/lib/diginfractl/config');
  });

  it('has no HEALTHCHECK: the kubelet ignores it and probes /healthz and /readyz itself', () => {
    expect(stages.flatMap((s) => s.body).filter((i) => i.op === 'HEALTHCHECK')).toEqual([]);
  });

  it('downloads nothing with ADD and has no architecture-specific step', () => {
    const all = stages.flatMap((s) => s.body);
    expect(all.filter((i) => i.op === 'ADD' && /https?:\/\//.test(i.args))).toEqual([]);
    expect(all.filter((i) => i.op === 'ADD')).toEqual([]);
    for (const i of all) expect(`${i.op} ${i.args}`).not.toMatch(/amd64|arm64|x86_64|aarch64|x64\b|armv7/);
    for (const s of stages) expect(s.image).not.toMatch(/amd64|arm64/);
    for (const r of stages.flatMap(runs)) expect(r, 'no curl/wget in the build').not.toMatch(/\b(curl|wget)\b/);
  });

  it('carries OCI labels', () => {
    const labels = runtime.body.filter((i) => i.op === 'LABEL').map((i) => i.args).join(' ');
    for (const key of ['title', 'description', 'source', 'licenses', 'version', 'revision']) {
      expect(labels).toContain(`org.opencontainers.image.${key}=`);
    }
    expect(labels).toContain('org.opencontainers.image.licenses="Apache-2.0"');
  });
});

/** .dockerignore semantics: patterns in order, the last match wins, `!` re-includes. */
function ignored(patterns: string[], path: string): boolean {
  let result = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const p = (negate ? raw.slice(1) : raw).replace(/\/$/, '');
    const re = new RegExp(
      `^${p
        .split('/')
        .map((seg) => (seg === '**' ? '(?:.*/)?' : `${seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}/`))
        .join('')
        .replace(/\(\?:\.\*\/\)\?$/, '.*')
        .replace(/\/$/, '')}(?:/.*)?$`,
    );
    if (re.test(path)) result = !negate;
  }
  return result;
}

describe('.dockerignore', () => {
  const patterns = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  it.each(['package.json', 'package-lock.json', 'tsconfig.json', 'scripts/bundle.mjs', 'src/cli/main.ts', 'src/config/types.ts'])('sends %s', (p) => {
    expect(ignored(patterns, p)).toBe(false);
  });

  it.each(['node_modules/node/bin/node', 'dist/cli/main.js', '.git/config', 'test/k8s/chart.test.ts', 'charts/diginfractl/values.yaml', 'bench/run.mjs', 'scripts/image.sh', 'src/node_modules/x', '.env'])(
    'leaves out %s',
    (p) => {
      expect(ignored(patterns, p)).toBe(true);
    },
  );

  it('sends everything the Dockerfile copies from the context', () => {
    const sources = stages
      .flatMap((s) => s.body)
      .filter((i) => i.op === 'COPY' && !i.args.includes('--from='))
      .flatMap((i) => i.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const src of sources) expect(ignored(patterns, src.replace(/^\.\//, '').replace(/\/$/, '')), src).toBe(false);
  });
});
