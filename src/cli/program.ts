/**
 * Entry point. It only declares commands; each action module is imported when its command runs, so
 * `diginfractl artifact search` does not pay for loading the registry client or the installer.
 */
import { Command, CommanderError } from 'commander';
import { registerRepoCommands } from './commands/repo.js';
import { registerIndexCommands } from './commands/index.js';
import { registerArtifactCommands } from './commands/artifact.js';
import { registerConfigCommands } from './commands/config.js';
import { registerCompletionCommands } from './commands/completion.js';
import { DiginfraError } from '../errors.js';
import { contextFrom, failIfUnfinished, printJson, quietOnClosedPipes, reportError, reportUsageError } from './run.js';

const VERSION = '0.1.0';

const GROUPS: Record<string, (program: Command) => void> = {
  repo: registerRepoCommands,
  // falcoctl's name for the same group (`registry push|pull|auth`): an alias of `repo`.
  registry: registerRepoCommands,
  index: registerIndexCommands,
  artifact: registerArtifactCommands,
  config: registerConfigCommands,
  completion: registerCompletionCommands,
  // `__complete` (what the completion scripts call) needs the whole tree: not a group of its own.
};

/**
 * The whole command tree, or with `only` (the command group named first on the command line) just
 * that group: `artifact search` need not declare the other groups' commands and options. With
 * `quiet`, commander writes nothing to stderr (`-o json` prints its usage errors as JSON instead).
 */
export function buildProgram(only?: string, opts: { quiet?: boolean } = {}): Command {
  const program = new Command('diginfractl')
    .description('Find, publish, install and follow Diginfra rules files and plugins stored in OCI registries')
    .option('--config <file>', 'config file (default: $DIGINFRACTL_CONFIG, /etc/diginfractl/diginfractl.yaml, then $XDG_CONFIG_HOME/diginfractl/diginfractl.yaml)')
    .option('--log-level <level>', 'trace, debug, info, warn, error or silent', 'info')
    .option('--log-format <format>', 'text or json (falcoctl\'s color is text; default: text on a terminal, JSON lines otherwise)')
    .showHelpAfterError()
    .exitOverride();
  // Before any subcommand is declared: they copy these settings.
  if (opts.quiet) program.configureOutput({ writeErr: () => {}, outputError: () => {} });
  const group = only !== undefined && Object.hasOwn(GROUPS, only) ? GROUPS[only] : undefined;
  if (group) {
    group(program);
    return program;
  }
  for (const register of new Set(Object.values(GROUPS))) register(program);
  program
    .command('version')
    .description('print the diginfractl version')
    .option('-o, --output <format>', 'text or json', 'text')
    .action((o: { output: string }, cmd: Command) => {
      if (o.output === 'json') printJson(contextFrom(cmd), { version: VERSION });
      else if (o.output === 'text') contextFrom(cmd).out(VERSION);
      else throw new DiginfraError('USAGE', `-o "${o.output}" is not one of text, json`);
    });
  return program;
}

/**
 * The value of `-o`/`--output` on the command line (before a `--`): a usage error is found before any
 * command parses its options, and must still come out as JSON when JSON was asked for.
 */
function outputFlag(args: readonly string[]): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (a === '-o' || a === '--output') value = args[++i];
    else if (a.startsWith('--output=')) value = a.slice('--output='.length);
    else if (a.startsWith('-o') && !a.startsWith('--')) value = a.slice(2).replace(/^=/, '');
  }
  return value;
}

async function main(argv: string[], json: boolean): Promise<void> {
  quietOnClosedPipes();
  // `--version` is a flag of `repo push`, so the program's own is only the lone first argument.
  if (argv.length === 3 && (argv[2] === '--version' || argv[2] === '-V')) {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  const program = buildProgram(argv[2], { quiet: json });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed the message (unless quiet); --help and --version exit 0.
      if (err.exitCode !== 0 && json) reportUsageError(err.message);
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    process.exitCode = reportError(err, { json });
  }
}

const json = outputFlag(process.argv.slice(2)) === 'json';
failIfUnfinished(main(process.argv, json), { json });
