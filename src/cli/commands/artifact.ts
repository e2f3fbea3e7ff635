import type { Command } from 'commander';
import { collect } from '../run.js';
import { addRegistryFlags, noVerifyOption, trustedRootOption, verifyKeyOption, verifyOption } from './repo.js';
import { assetsDirAsDir, followHabits, onlyJson } from './falcoctl-habits.js';

/** `diginfractl artifact ...`: declares the subcommands; each action module loads only when it runs. */
export function registerArtifactCommands(program: Command): void {
  const group = program.command('artifact').description('artifact commands');
  group
    .command('search')
    .description('search the configured indexes; every keyword must match the name, a keyword or the description')
    .argument('[keyword...]', 'keywords (none: list everything)')
    .option('--type <type>', 'only artifacts of this type (rulesfile, plugin, ...)')
    .option('--index <name>', 'only this index (repeat for several)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--min-score <score>', "falcoctl's fuzzy match, 0 < score <= 1: a name this similar to a keyword also matches (0.65 in falcoctl; default: off)")
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (keywords: string[], opts, cmd: Command) => {
      const { contextFrom } = await import('../run.js');
      const { runArtifactSearch } = await import('../actions/artifact-search.js');
      await runArtifactSearch(contextFrom(cmd), keywords, opts);
    });
  addRegistryFlags(group.command('info'))
    .description('show artifacts: index entry, reference, tags, and for one tag its digest, version, platforms, dependencies, requirements, signatures, and the signature policy that applies and whether the digest verifies under it')
    .addOption(trustedRootOption())
    .argument('<ref...>', 'NAME[:TAG], INDEX::NAME[:TAG], or REGISTRY/REPOSITORY[:TAG|@DIGEST]')
    .option('--type <type>', 'only artifacts of this type: short names resolve among index entries of this type, and another type is an error')
    .option('-o, --output <format>', 'table or json (an array, one element per reference)', 'table')
    .action(async (refs: string[], opts, cmd: Command) => {
      const { contextFrom } = await import('../run.js');
      const { runArtifactInfo } = await import('../actions/artifact-info.js');
      await runArtifactInfo(contextFrom(cmd), refs, opts);
    });
  addRegistryFlags(group.command('manifest'))
    .description('print the manifest (or image index) a reference points at, byte for byte as stored; piped to sha256sum it gives the digest')
    .argument('<ref>', 'NAME[:TAG], INDEX::NAME[:TAG], or REGISTRY/REPOSITORY[:TAG|@DIGEST]')
    .option('--platform <os/arch>', "for an image index, print this platform's manifest instead")
    .option('-o, --output <format>', 'json, the only format: the bytes as stored are JSON', 'json')
    .action(async (ref: string, opts, cmd: Command) => {
      onlyJson(opts.output);
      const { contextFrom } = await import('../run.js');
      const { runArtifactManifest } = await import('../actions/artifact-raw.js');
      await runArtifactManifest(contextFrom(cmd), ref, opts);
    });
  addRegistryFlags(group.command('config'))
    .description("print an artifact's config (name, version, dependencies, requirements), byte for byte as stored")
    .argument('<ref>', 'NAME[:TAG], INDEX::NAME[:TAG], or REGISTRY/REPOSITORY[:TAG|@DIGEST]')
    .option('--platform <os/arch>', "for an image index, the platform whose config to print (default: this machine's)")
    .option('-o, --output <format>', 'json, the only format: the bytes as stored are JSON', 'json')
    .action(async (ref: string, opts, cmd: Command) => {
      onlyJson(opts.output);
      const { contextFrom } = await import('../run.js');
      const { runArtifactConfig } = await import('../actions/artifact-raw.js');
      await runArtifactConfig(contextFrom(cmd), ref, opts);
    });
  addRegistryFlags(group.command('install'))
    .description('install rules files and plugins (and their dependencies) into the engine directories; no REF: install.refs from the config')
    .argument('[ref...]', 'NAME[:TAG] (looked up in the indexes), INDEX::NAME[:TAG], or REGISTRY/REPOSITORY[:TAG|@DIGEST]')
    .option('--type <type>', 'install only artifacts of this type; others are skipped with a warning')
    .option('--allowed-types <types>', 'comma-separated types that may be installed, dependencies included; any other refuses the install')
    .option('--platform <os/arch>', "platform of the plugins to install (default: install.platform, else this machine's)")
    .option('--rulesfiles-dir <dir>', 'where rules files go (default: install.rulesfilesDir, /etc/diginfra)')
    .option('--plugins-dir <dir>', 'where plugins go (default: install.pluginsDir, /usr/share/diginfra/plugins)')
    .option('--resolve-deps', 'also install the dependencies of what is installed (default: install.resolveDeps, true)')
    .option('--no-resolve-deps', 'install only what is named')
    .option('--engine-version <version>', 'engine version to check requirements against (default: install.engineVersion)')
    .option('--lockfile <file>', 'lock file to write (default: install.lockfile, else diginfractl.lock in the rules files dir)')
    .option('--dir <type=dir>', 'directory for artifacts of another type, e.g. asset=/etc/diginfra/assets (repeat; added to install.dirs)', collect)
    .option('--assets-dir <dir>', "where assets go: falcoctl's flag, the same as --dir asset=DIR")
    .option('--frozen', 'install exactly the digests recorded in the lock file; fail if a ref is missing from it')
    .option('--lock-timeout <seconds>', 'how long to wait for another install into the same directories', '60')
    .addOption(verifyKeyOption())
    .addOption(trustedRootOption())
    .addOption(noVerifyOption())
    .addOption(verifyOption())
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (refs: string[], opts, cmd: Command) => {
      const { contextFrom } = await import('../run.js');
      const { runArtifactInstall } = await import('../actions/artifact-install.js');
      await runArtifactInstall(contextFrom(cmd), refs, assetsDirAsDir(opts));
    });
  addRegistryFlags(group.command('follow'))
    .description('keep rules files (and plugins) current: check each ref on a schedule, hot-swap new versions safely; no REF: follow.refs from the config')
    .argument('[ref...]', 'NAME[:TAG] (looked up in the indexes), INDEX::NAME[:TAG], or REGISTRY/REPOSITORY[:TAG|@DIGEST]; a tag like 1 follows the newest 1.x')
    .option('--every <duration>', 'check interval, e.g. 6h, 30m, 10s (default: follow.every, 6h)')
    .option('--cron <expr>', 'check at the times of a cron expression (UTC) instead of --every (default: follow.cron)')
    .option('--jitter <fraction>', 'random spread of each interval, 0..1 (default: follow.jitter, 0.1)')
    .option('--rulesfiles-dir <dir>', 'where rules files go (default: follow.rulesfilesDir, /etc/diginfra)')
    .option('--plugins-dir <dir>', 'where plugins go (default: follow.pluginsDir, /usr/share/diginfra/plugins)')
    .option('--state-dir <dir>', 'where follow keeps its state and the previous versions (default: follow.stateDir, /var/lib/diginfractl)')
    .option('--dir <type=dir>', 'directory for artifacts of another type, e.g. asset=/etc/diginfra/assets (repeat; added to follow.dirs; the type must also be allowed)', collect)
    .option('--assets-dir <dir>', "where assets go: falcoctl's flag, the same as --dir asset=DIR")
    .option('--allowed-types <types>', 'comma-separated types to install (default: follow.allowedTypes, rulesfile); add plugin to follow plugins')
    .option('--engine-version <version>', 'engine version to check requirements against (default: follow.engineVersion)')
    .option('--engine-versions-url <url>', 'URL answering {"engine_version": "0.40.0"}, read at each check that needs it (default: follow.engineVersionsUrl)')
    .option('--falco-versions <url>', "falcoctl's name for --engine-versions-url")
    .option('--tmp-dir <dir>', "falcoctl's staging dir: accepted and not used (files are staged beside their destination)")
    .option('--timeout <duration>', "falcoctl's wait for the versions URL at start-up: accepted and not used (the URL is read at each check, which retries at the next one)")
    .option('--validate-cmd <cmd>', 'command run with the staged rules file as last argument; non-zero exit rejects it (default: follow.validateCmd)')
    .option('--metrics-addr <host:port>', 'serve /metrics, /healthz and /readyz here, e.g. 0.0.0.0:9376 (default: follow.metricsAddr; off)')
    .addOption(verifyKeyOption())
    .addOption(trustedRootOption())
    .addOption(noVerifyOption())
    .addOption(verifyOption())
    .option('--once', 'check every ref once and exit: 0 when all are current, 1 when any failed or was rejected')
    .option('-o, --output <format>', 'with --once: table or json', 'table')
    .action(async (refs: string[], opts, cmd: Command) => {
      const { contextFrom } = await import('../run.js');
      const { runArtifactFollow } = await import('../actions/artifact-follow.js');
      const ctx = contextFrom(cmd);
      await runArtifactFollow(ctx, refs, followHabits(ctx, opts));
    });
  group
    .command('list')
    .description('list what is installed on this node (lock files of artifact install, state of artifact follow), whether its files are in place, and what follow last refused')
    .option('--lockfile <file>', 'lock file to read (repeat; default: install.lockfile, else diginfractl.lock in install.rulesfilesDir, and in follow.rulesfilesDir)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--state-dir <dir>', 'state dir of artifact follow (default: follow.stateDir, /var/lib/diginfractl)')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (opts, cmd: Command) => {
      const { contextFrom } = await import('../run.js');
      const { runArtifactList } = await import('../actions/artifact-list.js');
      await runArtifactList(contextFrom(cmd), opts);
    });
  group
    .command('rollback')
    .description('put back the version artifact follow replaced last (from its state dir); the rolled-back version is not installed again')
    .argument('<ref>', 'the ref as followed')
    .option('--state-dir <dir>', 'state dir of artifact follow (default: follow.stateDir, /var/lib/diginfractl)')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (ref: string, opts, cmd: Command) => {
      const { contextFrom } = await import('../run.js');
      const { runArtifactRollback } = await import('../actions/artifact-rollback.js');
      await runArtifactRollback(contextFrom(cmd), ref, opts);
    });
  void group;
}
