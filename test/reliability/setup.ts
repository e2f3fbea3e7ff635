/**
 * What the reliability tests share: a sandboxed "node" for the built CLI (its own XDG dirs and a
 * config file naming the registry as plain HTTP), and looks at a directory the way a user would.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { cliEnv } from '../helpers/cli.js';

export interface Node {
  env: NodeJS.ProcessEnv & { HOME: string };
  rules: string;
  plugins: string;
  /** Where `repo pull --dest` writes in these tests. */
  pulled: string;
  config: string;
}

/** A node whose config trusts `hosts` over plain HTTP, with `extra` merged into the config file. */
export async function node(hosts: readonly string[], extra: Record<string, unknown> = {}): Promise<Node> {
  const env = await cliEnv();
  const rules = join(env.HOME, 'etc/diginfra');
  const plugins = join(env.HOME, 'plugins');
  const { registry, install, ...rest } = extra as { registry?: Record<string, unknown>; install?: Record<string, unknown> };
  await writeFile(
    env.DIGINFRACTL_CONFIG!,
    stringify({
      indexes: [],
      registry: { plainHttp: [...hosts], ...registry },
      install: { rulesfilesDir: rules, pluginsDir: plugins, ...install },
      ...rest,
    }),
  );
  return { env, rules, plugins, pulled: join(env.HOME, 'pulled'), config: env.DIGINFRACTL_CONFIG! };
}

/** Names in `dir` (none when it does not exist), sorted. */
export async function namesIn(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).sort();
}

/** Dot-named leftovers of diginfractl in `dir`: staging dirs, temp files, intent records, locks. */
export async function leftoversIn(dir: string): Promise<string[]> {
  return (await namesIn(dir)).filter((n) => n.startsWith('.'));
}
