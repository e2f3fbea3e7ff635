import type { Command } from 'commander';
import { contextFrom } from '../run.js';

/** `diginfractl index ...`: declares the subcommands; each action module loads only when it runs. */
export function registerIndexCommands(program: Command): void {
  const group = program.command('index').description('manage the indexes that map artifact names to registry repositories');

  group
    .command('add')
    .description('fetch and validate an index, then add it to the config (https://, http://, gs://, s3://, file:// or a path)')
    .argument('<name>', 'index name, used in "index remove|update" and in NAME::ARTIFACT references')
    .argument('<url>', 'https:// (or http://, warned) URL, gs://BUCKET/OBJECT (Google Cloud Storage), s3://BUCKET/KEY (Amazon S3), file:// URL or local path of the index file')
    .argument('[backend]', "falcoctl's backend (https, http, gcs, s3, file): optional, and must agree with the URL, whose scheme decides")
    .option('--username <user>', 'user for HTTP basic auth of a private index (with --password-stdin)')
    .option('--password-stdin', 'read the basic-auth password from standard input')
    .option('--force', 'replace an index of the same name')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (name: string, url: string, backend: string | undefined, opts, cmd: Command) => {
      const { runIndexAdd } = await import('../actions/index-add.js');
      await runIndexAdd(contextFrom(cmd), name, url, { ...opts, ...(backend !== undefined && { backend }) });
    });

  group
    .command('remove')
    .description('remove indexes from the config, with their cached copies and credentials')
    .argument('<name...>', 'index names')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (names: string[], opts: { output?: string }, cmd: Command) => {
      const { runIndexRemove } = await import('../actions/index-remove.js');
      await runIndexRemove(contextFrom(cmd), names, opts);
    });

  group
    .command('list')
    .description('list the configured indexes')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (opts: { output?: string }, cmd: Command) => {
      const { runIndexList } = await import('../actions/index-list.js');
      await runIndexList(contextFrom(cmd), opts);
    });

  group
    .command('update')
    .description('refresh the cached copies of indexes (all when none is named); unchanged ones cost one conditional request')
    .argument('[name...]', 'index names')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (names: string[], opts: { output?: string }, cmd: Command) => {
      const { runIndexUpdate } = await import('../actions/index-update.js');
      await runIndexUpdate(contextFrom(cmd), names, opts);
    });
}
