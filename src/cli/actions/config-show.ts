/**
 * `diginfractl config show`: the effective config with the source of each value, secrets masked, and
 * the registry timeouts in effect (for commands, and for the follow agent when they are defaults).
 */
import { DiginfraError } from '../../errors.js';
import { loadConfig, maskConfig, KEYS } from '../../config/index.js';
import { registryTimeouts, type RegistryTimeouts } from '../../registry/index.js';
import type { CliContext } from '../run.js';

interface ShownTimeouts {
  read: string;
  attempts: number;
}

/** Effective timeouts as the config writes them (`60s`). */
function shownTimeouts(t: RegistryTimeouts): ShownTimeouts {
  return { read: `${t.readTimeoutMs / 1000}s`, attempts: t.attempts };
}

export async function runConfigShow(ctx: CliContext, opts: { output?: string }): Promise<void> {
  const format = opts.output ?? 'yaml';
  if (format !== 'yaml' && format !== 'json') throw new DiginfraError('USAGE', `-o "${format}" is not one of yaml, json`);
  const loaded = await loadConfig(ctx.configPath === undefined ? {} : { path: ctx.configPath });
  for (const w of loaded.warnings) ctx.logger.warn(w);
  const masked = maskConfig(loaded.config);
  // registry.timeouts: the values in effect, those a command uses and those the follow agent uses.
  const effective = { commands: shownTimeouts(registryTimeouts(loaded.config.registry, 'command')), follow: shownTimeouts(registryTimeouts(loaded.config.registry, 'agent')) };
  masked.registry.timeouts = { ...effective.commands, ...loaded.config.registry.timeouts };
  const label = (path: string): string => {
    const src = loaded.sources[path] ?? 'default';
    if (src === 'default' && path.startsWith('registry.timeouts.')) return `default (artifact follow: ${effective.follow[path.slice('registry.timeouts.'.length) as keyof ShownTimeouts]})`;
    return src === 'env' ? `env ${KEYS.find((k) => k.path === path)!.env}` : src;
  };

  if (format === 'json') {
    ctx.out(
      JSON.stringify(
        {
          path: loaded.path,
          exists: loaded.exists,
          config: masked,
          sources: Object.fromEntries(KEYS.filter((k) => loaded.sources[k.path]).map((k) => [k.path, loaded.sources[k.path]])),
          env: Object.fromEntries(KEYS.filter((k) => loaded.sources[k.path] === 'env').map((k) => [k.path, k.env])),
          registryTimeouts: effective,
        },
        null,
        2,
      ),
    );
    return;
  }

  const y = await import('yaml');
  const doc = new y.Document(masked, { aliasDuplicateObjects: false });
  doc.commentBefore = ` config file: ${loaded.path}${loaded.exists ? '' : ' (not found: defaults apply)'}\n each value is annotated with its source: default, file, env VARIABLE or flag`;
  for (const def of KEYS) {
    const parts = def.path.split('.');
    const parent = parts.length === 1 ? doc.contents : doc.getIn(parts.slice(0, -1), true);
    if (!y.isMap(parent)) continue;
    const pair = parent.items.find((p) => y.isScalar(p.key) && p.key.value === parts.at(-1));
    if (!pair) continue;
    const value = pair.value;
    if (y.isCollection(value) && value.items.length > 0) {
      (pair.key as import('yaml').Scalar).commentBefore = ` ${label(def.path)}`;
    } else if (y.isCollection(value)) {
      value.flow = true;
      value.comment = ` ${label(def.path)}`;
    } else if (y.isScalar(value)) {
      value.comment = ` ${label(def.path)}`;
    }
  }
  ctx.out(doc.toString({ lineWidth: 0 }));
}
