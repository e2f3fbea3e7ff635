import type { Command } from 'commander';

/** `diginfractl config ...`: declares the subcommands; each action module loads only when it runs. */
export function registerConfigCommands(program: Command): void {
  const group = program.command('config').description('config commands');
  void group;
}
