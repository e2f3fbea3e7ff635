/**
 * Shell completion. The scripts (bash, zsh, fish) hand the words typed so far to `diginfractl
 * __complete`, which walks the commander tree: a group's commands, a command's flags, a few flag values,
 * and for commands that take an artifact, the names in the cached copies of the configured indexes.
 * Nothing here touches the network: an index never fetched offers no names. It never fails either: a
 * completion that cannot be computed is no completion.
 */
import type { Command, Option } from 'commander';
import { loadConfig, cacheRoot } from '../../config/index.js';
import { DiginfraError } from '../../errors.js';
import { searchRows, readSearchRows } from '../../indexes/index.js';
import type { CliContext } from '../run.js';

const BASH = `# diginfractl completion for bash: source <(diginfractl completion bash)
_diginfractl_complete() {
  local line="\${COMP_LINE:0:COMP_POINT}"
  local -a words
  read -ra words <<< "$line"
  [[ "$line" =~ [[:space:]]$ ]] && words+=("")
  local cur="\${words[-1]}"
  local IFS=$'\\n'
  COMPREPLY=($(diginfractl __complete -- "\${words[@]:1}" 2>/dev/null))
  # bash splits words at ":" (INDEX::NAME): complete only what follows the last one.
  if [[ "$cur" == *:* && "$COMP_WORDBREAKS" == *:* ]]; then
    local colon="\${cur%"\${cur##*:}"}"
    COMPREPLY=("\${COMPREPLY[@]#"$colon"}")
  fi
}
complete -o default -F _diginfractl_complete diginfractl
`;

const ZSH = `#compdef diginfractl
# diginfractl completion for zsh: source <(diginfractl completion zsh)
_diginfractl() {
  local -a candidates
  candidates=("\${(@f)$(diginfractl __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  candidates=(\${candidates:#})
  if (( \${#candidates} )); then
    compadd -Q -- "\${candidates[@]}"
  else
    _files
  fi
}
if [[ "\${funcstack[1]}" == "_diginfractl" ]]; then
  _diginfractl "$@"
else
  compdef _diginfractl diginfractl
fi
`;

const FISH = `# diginfractl completion for fish: diginfractl completion fish | source
function __diginfractl_complete
    set -l words (commandline -opc) (commandline -ct)
    diginfractl __complete -- $words[2..-1] 2>/dev/null
end
complete -c diginfractl -a '(__diginfractl_complete)'
`;

const SCRIPTS: Record<string, string> = { bash: BASH, zsh: ZSH, fish: FISH };

export function completionScript(shell: string): string {
  if (!Object.hasOwn(SCRIPTS, shell)) throw new DiginfraError('USAGE', `no completion for "${shell}": give bash, zsh or fish`);
  return SCRIPTS[shell]!;
}

/** Commands whose arguments are artifacts (`NAME[:TAG]`, `INDEX::NAME`), by path. */
const ARTIFACT_ARGS = new Set(['artifact info', 'artifact install', 'artifact follow', 'artifact manifest', 'artifact config', 'repo pull']);
/** Commands whose arguments are index names. */
const INDEX_ARGS = new Set(['index remove', 'index update']);

/** The command's options and those of the commands above it (global options), visible ones. */
function optionsOf(cmd: Command): Option[] {
  const out: Option[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) out.push(...c.options.filter((o) => !o.hidden));
  return out;
}

function pathOf(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

interface Walked {
  cmd: Command;
  /** The option whose value the last word is. */
  valueFor?: Option;
  /** Positional arguments before the last word. */
  positional: number;
  configPath?: string;
}

/** Follows the complete words (all but the last) down the command tree. */
function walk(root: Command, done: readonly string[]): Walked {
  const w: Walked = { cmd: root, positional: 0 };
  for (let i = 0; i < done.length; i++) {
    const word = done[i]!;
    if (word.startsWith('-')) {
      const [flag] = word.split('=');
      const opt = optionsOf(w.cmd).find((o) => o.long === flag || o.short === flag);
      if (opt && (opt.required || opt.optional) && !word.includes('=')) {
        if (i === done.length - 1) w.valueFor = opt;
        else if (opt.long === '--config') w.configPath = done[i + 1];
        i++;
      } else if (opt?.long === '--config' && word.includes('=')) {
        w.configPath = word.slice(word.indexOf('=') + 1);
      }
      continue;
    }
    const sub = w.positional === 0 ? w.cmd.commands.find((c) => c.name() === word || c.aliases().includes(word)) : undefined;
    if (sub) w.cmd = sub;
    else w.positional++;
  }
  return w;
}

function valuesFor(opt: Option, path: string): string[] {
  switch (opt.long) {
    case '--output':
      if (path === 'config show') return ['yaml', 'json'];
      if (path === 'version') return ['text', 'json'];
      if (path === 'artifact manifest' || path === 'artifact config') return ['json'];
      return ['table', 'json'];
    case '--log-format':
      return ['text', 'json', 'color'];
    case '--log-level':
      return ['trace', 'debug', 'info', 'warn', 'error', 'silent'];
    case '--type':
      return ['rulesfile', 'plugin', 'asset'];
    default:
      return [];
  }
}

/** Artifact names (and `INDEX::NAME` once `::` is typed) from the cached indexes; index names with `index`. */
async function namesFromCache(configPath: string | undefined, current: string, what: 'artifacts' | 'indexes'): Promise<string[]> {
  const { config } = await loadConfig(configPath === undefined ? {} : { path: configPath });
  if (what === 'indexes') return config.indexes.map((ix) => ix.name);
  const sep = current.indexOf('::');
  const only = sep >= 0 ? current.slice(0, sep) : undefined;
  const names = new Set<string>();
  for (const ix of config.indexes) {
    if (only !== undefined && ix.name !== only) continue;
    const cached = await readSearchRows(cacheRoot(config), ix.name).catch(() => undefined);
    if (!cached || cached.meta.url !== ix.url) continue;
    for (const hit of searchRows([{ index: ix.name, rows: cached.rows }], [])) names.add(only !== undefined ? `${only}::${hit.entry.name}` : String(hit.entry.name));
  }
  return [...names].sort();
}

/** The candidates for the last of `words` (the command line after the program name). */
export async function completeWords(ctx: CliContext, root: Command, words: readonly string[]): Promise<string[]> {
  try {
    const current = words.at(-1) ?? '';
    const w = walk(root, words.slice(0, -1));
    const path = pathOf(w.cmd);
    let candidates: string[];
    if (w.valueFor) {
      candidates = w.valueFor.long === '--index' ? await namesFromCache(w.configPath ?? ctx.configPath, current, 'indexes') : valuesFor(w.valueFor, path);
    } else if (current.startsWith('-')) {
      candidates = optionsOf(w.cmd).flatMap((o) => (o.long ? [o.long] : []));
    } else if (w.cmd.commands.length > 0 && w.positional === 0) {
      candidates = w.cmd.createHelp().visibleCommands(w.cmd).map((c) => c.name());
    } else if (ARTIFACT_ARGS.has(path) || INDEX_ARGS.has(path)) {
      candidates = await namesFromCache(w.configPath ?? ctx.configPath, current, ARTIFACT_ARGS.has(path) ? 'artifacts' : 'indexes');
    } else {
      candidates = [];
    }
    return [...new Set(candidates)].filter((c) => c.startsWith(current));
  } catch {
    return [];
  }
}
