import type { Command } from 'commander';

/** `diginfractl index ...`: declares the subcommands; each action module loads only when it runs. */
export function registerIndexCommands(program: Command): void {
  const group = program.command('index').description('index commands');
  void group;
}
