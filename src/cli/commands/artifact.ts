import type { Command } from 'commander';

/** `diginfractl artifact ...`: declares the subcommands; each action module loads only when it runs. */
export function registerArtifactCommands(program: Command): void {
  const group = program.command('artifact').description('artifact commands');
  void group;
}
