import type { Command } from 'commander';
import { contextFrom } from '../run.js';

/**
 * `diginfractl completion bash|zsh|fish` prints a script for the shell; the script asks the hidden
 * `diginfractl __complete -- WORD...` for the candidates of the last word: commands, flags, flag
 * values, and artifact names from the cached indexes (never the network).
 */
export function registerCompletionCommands(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script: commands, flags, and artifact names from the cached indexes')
    .argument('<shell>', 'bash, zsh or fish')
    .addHelpText(
      'after',
      `
Load it in the current shell, or install it once:
  bash:  source <(diginfractl completion bash)     or  diginfractl completion bash > /etc/bash_completion.d/diginfractl
  zsh:   source <(diginfractl completion zsh)      or  diginfractl completion zsh > "\${fpath[1]}/_diginfractl"
  fish:  diginfractl completion fish | source      or  diginfractl completion fish > ~/.config/fish/completions/diginfractl.fish`,
    )
    .action(async (shell: string, _opts, cmd: Command) => {
      const { completionScript } = await import('../actions/completion.js');
      contextFrom(cmd).out(completionScript(shell));
    });
  program
    .command('__complete', { hidden: true })
    .description('candidates for the last of WORDS, one per line (what the completion scripts call)')
    .argument('[words...]', 'the command line after "diginfractl", the word being completed last')
    .allowUnknownOption()
    .action(async (words: string[], _opts, cmd: Command) => {
      const { completeWords } = await import('../actions/completion.js');
      const ctx = contextFrom(cmd);
      for (const c of await completeWords(ctx, cmd.parent!, words)) ctx.out(c);
    });
}
