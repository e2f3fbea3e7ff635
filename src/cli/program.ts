/**
 * Entry point. It only declares commands; each action module is imported when its command runs, so
 * `diginfractl artifact search` does not pay for loading the registry client or the installer.
 */
import { Command, CommanderError } from 'commander';
import { registerRepoCommands } from './commands/repo.js';
import { registerIndexCommands } from './commands/index.js';
import { registerArtifactCommands } from './commands/artifact.js';
import { registerConfigCommands } from './commands/config.js';
import { failIfUnfinished, reportError } from './run.js';

const VERSION = '0.1.0';

const GROUPS: Record<string, (program: Command) => void> = {
  repo: registerRepoCommands,
  index: registerIndexCommands,
  artifact: registerArtifactCommands,
  config: registerConfigCommands,
};

/**
 * The whole command tree, or with `only` (the command group named first on the command line) just
 * that group: `artifact search` need not declare the other groups' commands and options.
 */
export function buildProgram(only?: string): Command {
  const program = new Command('diginfractl')
    .description('Find, publish, install and follow Diginfra rules files and plugins stored in OCI registries')
    .option('--config <file>', 'config file (default: $DIGINFRACTL_CONFIG, /etc/diginfractl/diginfractl.yaml, then $XDG_CONFIG_HOME/diginfractl/diginfractl.yaml)')
    .option('--log-level <level>', 'trace, debug, info, warn, error or silent', 'info')
    .showHelpAfterError()
    .exitOverride();
  const group = only !== undefined && Object.hasOwn(GROUPS, only) ? GROUPS[only] : undefined;
  if (group) {
    group(program);
    return program;
  }
  for (const register of Object.values(GROUPS)) register(program);
  program
    .command('version')
    .description('print the diginfractl version')
    .action(() => {
      process.stdout.write(`${VERSION}\n`);
    });
  return program;
}

async function main(argv: string[]): Promise<void> {
  // `--version` is a flag of `repo push`, so the program's own is only the lone first argument.
  if (argv.length === 3 && (argv[2] === '--version' || argv[2] === '-V')) {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  const program = buildProgram(argv[2]);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander already printed the message; --help and --version exit 0.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    process.exitCode = reportError(err);
  }
}

failIfUnfinished(main(process.argv));
