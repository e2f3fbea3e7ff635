import type { Command } from 'commander';
import { contextFrom } from '../run.js';

/** `diginfractl config ...`: declares the subcommands; each action module loads only when it runs. */
export function registerConfigCommands(program: Command): void {
  const group = program.command('config').description('show and check the configuration');

  group
    .command('show')
    .description('print the effective configuration (defaults < file < DIGINFRACTL_* environment) and where each value came from; secrets masked')
    .option('-o, --output <format>', 'yaml or json', 'yaml')
    .action(async (opts: { output?: string }, cmd: Command) => {
      const { runConfigShow } = await import('../actions/config-show.js');
      await runConfigShow(contextFrom(cmd), opts);
    });

  group
    .command('validate')
    .description('check a config file; exit status 0 when valid, 1 with every problem listed when not')
    .argument('<file>', 'config file to check')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (file: string, opts: { output?: string }, cmd: Command) => {
      const { runConfigValidate } = await import('../actions/config-validate.js');
      await runConfigValidate(contextFrom(cmd), file, opts);
    });
}
