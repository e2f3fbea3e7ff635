import { Option, type Command } from 'commander';
import { DiginfraError } from '../../errors.js';
import { collect, contextFrom } from '../run.js';
import { destOf } from './falcoctl-habits.js';

/** Flags every command that talks to a registry accepts (new Option objects for each command). */
export function registryOptions(): Option[] {
  return [
    new Option('--plain-http', 'talk HTTP instead of HTTPS to the registry (also: registry.plainHttp in the config)'),
    new Option('--ca-file <file>', 'PEM file of CA certificates to trust, in addition to the system ones (also: registry.caFiles)'),
    new Option('--insecure', 'do not verify the registry TLS certificate (testing only)'),
  ];
}

/** For commands that fetch artifacts: the keys for artifacts no index signature policy covers (docs/signatures.md). */
export function verifyKeyOption(): Option {
  return new Option('--verify-key <file>', 'require a cosign signature that this PEM public key verifies, for artifacts no index policy covers (repeat for several; replaces registry.cosignKeys)').argParser(collect);
}

/** The trusted root for keyless signatures (docs/signatures.md). */
export function trustedRootOption(): Option {
  return new Option('--trusted-root <file>', 'Sigstore trusted_root.json to verify keyless signatures with, instead of the public-good root (default: registry.trustedRoot)');
}

/** The opt-out of signature verification, warned about on every run. */
export function noVerifyOption(): Option {
  return new Option('--no-verify', "do not verify signatures (default: the config's verify, true); warned about on every run");
}

/** Overrides `verify: false` for one command; with it, commander leaves `verify` unset when neither flag is given. */
export function verifyOption(): Option {
  return new Option('--verify', 'verify signatures even when the config says verify: false').hideHelp();
}

export function addRegistryFlags(cmd: Command): Command {
  for (const option of registryOptions()) cmd.addOption(option);
  return cmd;
}

/** `diginfractl repo ...`: declares the subcommands; each action module loads only when it runs. */
export function registerRepoCommands(program: Command): void {
  // `registry` is falcoctl's name for this group (`registry push|pull|auth basic`): the same commands.
  const repo = program.command('repo').alias('registry').description('publish and fetch artifacts in OCI registries, manage registry credentials');

  addRegistryFlags(
    repo
      .command('push')
      .description('push files as a versioned artifact; with --platform, one file per platform under one image index')
      .argument('<ref>', 'REGISTRY/REPOSITORY[:TAG] (the tag defaults to the version)')
      .argument('<file...>', 'files to push: a plain file is packed into a tar.gz layer, a .tar.gz is pushed as is')
      .requiredOption('--type <type>', 'artifact type: rulesfile, plugin, or another lower-case word')
      .requiredOption('--version <version>', 'artifact version (strict semver, e.g. 1.2.3)')
      .option('--name <name>', 'artifact name in the config (default: last path component of the repository)')
      .option('--platform <os/arch>', 'platform of the file at the same position (repeat)', collect)
      .option('-d, --depends-on <name:version|alt:version>', 'dependency, with alternatives after "|" (repeat)', collect)
      .option('-r, --requires <name:version>', 'requirement such as engine_version:0.40.0 (repeat)', collect)
      .option('-t, --tag <tag>', 'another tag for the same artifact, pushed after the first (repeat)', collect)
      .option('--annotation <key=value>', 'manifest annotation (repeat)', collect)
      .option('--annotation-source <url>', 'source repository of the artifact (annotation org.opencontainers.image.source, as falcoctl sets it)')
      .option('--add-floating-tags', 'also tag MAJOR.MINOR, MAJOR and latest (each unless a newer version holds it)')
      .option('--mount-from <repository>', 'repository of the same registry to mount existing blobs from')
      .option('--sign-key <file>', 'sign the pushed digest with this PEM private key, as cosign sign --key does (unencrypted PEM)')
      .option('--sign', 'sign the pushed digest keylessly (Sigstore: a Fulcio certificate for the CI job\'s OIDC identity, logged in Rekor), before the tags move')
      .option('--identity-token <file>', 'with --sign: file holding the OIDC identity token (default: SIGSTORE_ID_TOKEN, else the CI\'s own)')
      .option('--fulcio-url <url>', `with --sign: the Fulcio to get the certificate from (default: https://fulcio.sigstore.dev)`)
      .option('--rekor-url <url>', `with --sign: the Rekor to log the signature in (default: https://rekor.sigstore.dev)`)
      .option('--signature-format <v3|v2>', 'with --sign: v3, a Sigstore bundle attached as a referrer; v2, also the cosign sha256-<hex>.sig tag (default: v3)')
      .option('-o, --output <format>', 'table or json', 'table'),
  ).action(async (ref: string, files: string[], opts, cmd: Command) => {
    const { runPush } = await import('../actions/repo-push.js');
    await runPush(contextFrom(cmd), ref, files, opts);
  });

  addRegistryFlags(
    repo
      .command('pull')
      .description('pull artifacts and extract their files into a directory (every reference is resolved, and its signatures verified under the policies that apply, before anything is written)')
      .argument('<ref...>', 'REGISTRY/REPOSITORY[:TAG|@DIGEST], NAME[:TAG] or INDEX::NAME[:TAG] (looked up in the indexes), or oci:DIR[:TAG|@DIGEST] (an OCI image layout, read offline)')
      .option('--dest <dir>', 'directory to extract into (default: the current directory)')
      .option('--dest-dir <dir>', "the same as --dest (falcoctl's name; its -o DIR is not taken: -o is the output format here)")
      .option('--platform <os/arch>', "platform to pull from a multi-platform artifact (default: this machine's)")
      .addOption(verifyKeyOption())
      .addOption(trustedRootOption())
      .addOption(noVerifyOption())
      .addOption(verifyOption())
      .option('-o, --output <format>', 'table or json (an array, one element per reference)', 'table'),
  ).action(async (refs: string[], opts, cmd: Command) => {
    const { runPull } = await import('../actions/repo-pull.js');
    await runPull(contextFrom(cmd), refs, { ...opts, dest: destOf(opts) });
  });

  declareLogin(repo.command('login'), 'check credentials against a registry and store them (docker config.json format, mode 0600)');

  repo
    .command('logout')
    .description('remove stored credentials for a registry')
    .argument('<registry>', 'registry host[:port]')
    .option('-o, --output <format>', 'table or json', 'table')
    .action(async (registry: string, opts, cmd: Command) => {
      const { runLogout } = await import('../actions/repo-login.js');
      await runLogout(contextFrom(cmd), registry, opts);
    });

  registerAuthCommands(repo);

  addRegistryFlags(
    repo
      .command('sign')
      .description('sign what a reference points at with a key, as cosign sign --key does (signatures already there are kept)')
      .argument('<ref>', 'REGISTRY/REPOSITORY[:TAG|@DIGEST]')
      .requiredOption('--key <file>', 'PEM private key (unencrypted)')
      .option('-o, --output <format>', 'table or json', 'table'),
  ).action(async (ref: string, opts, cmd: Command) => {
    const { runSign } = await import('../actions/repo-sign.js');
    await runSign(contextFrom(cmd), ref, opts);
  });

  addRegistryFlags(
    repo
      .command('copy')
      .description('copy an artifact unchanged (all platforms, same digests) to another repository or registry, or to and from an OCI layout directory (air-gapped transfer)')
      .argument('<src>', 'REGISTRY/REPOSITORY[:TAG|@DIGEST], or oci:DIR[:TAG|@DIGEST] (an OCI image layout)')
      .argument('<dst>', 'REGISTRY/REPOSITORY[:TAG], or oci:DIR[:TAG] (no tag: the source tag)')
      .option('--with-signatures', 'also copy its signatures (the cosign sha256-<hex>.sig tag, and the Sigstore bundles attached as referrers), before the tag')
      .option('-o, --output <format>', 'table or json', 'table'),
  ).action(async (src: string, dst: string, opts, cmd: Command) => {
    const { runCopy } = await import('../actions/repo-copy.js');
    await runCopy(contextFrom(cmd), src, dst, opts);
  });

  addRegistryFlags(
    repo
      .command('verify')
      .description('check that what a reference points at is signed as a policy requires, as cosign verify does: the flags\' policy, else the index policy that applies to it')
      .argument('<ref>', 'REGISTRY/REPOSITORY[:TAG|@DIGEST], NAME[:TAG] or INDEX::NAME[:TAG]')
      .addOption(verifyKeyOption())
      .option('--certificate-identity <identity>', 'keyless: the signing certificate\'s identity, exactly (e.g. https://github.com/ORG/REPO/.github/workflows/release.yml@refs/tags/v1.0.0)')
      .option('--certificate-identity-regexp <re2>', 'keyless: an RE2 regexp searched in the certificate\'s identity')
      .option('--certificate-oidc-issuer <url>', 'keyless: the OIDC issuer in the certificate, exactly (GitHub Actions: https://token.actions.githubusercontent.com)')
      .option('--certificate-oidc-issuer-regexp <re2>', 'keyless: an RE2 regexp searched in the OIDC issuer')
      .addOption(trustedRootOption())
      .option('-o, --output <format>', 'table or json', 'table'),
  ).action(async (ref: string, opts, cmd: Command) => {
    const { runVerify } = await import('../actions/repo-sign.js');
    await runVerify(contextFrom(cmd), ref, opts);
  });
}

/** `repo login` and its falcoctl name `registry auth basic`: check credentials, then store them. */
function declareLogin(cmd: Command, description: string): void {
  addRegistryFlags(
    cmd
      .description(description)
      .argument('<registry>', 'registry host[:port]')
      .requiredOption('-u, --username <user>', 'user name')
      .option('-p, --password <password>', 'password (prefer --password-stdin: this one lands in shell history)')
      .option('--password-stdin', 'read the password from standard input')
      .option('-o, --output <format>', 'table or json', 'table'),
  ).action(async (registry: string, opts, c: Command) => {
    const { runLogin } = await import('../actions/repo-login.js');
    await runLogin(contextFrom(c), registry, opts);
  });
}

/**
 * falcoctl's `registry auth basic|oauth|gcp`, hidden from help (docs/falcoctl.md). `basic` is
 * `repo login`; OAuth and Google credentials are configuration here, not a stored login.
 */
function registerAuthCommands(repo: Command): void {
  const auth = repo.command('auth', { hidden: true }).description("falcoctl's registry auth: basic is repo login; oauth and gcp are config keys");
  declareLogin(auth.command('basic'), 'the same as repo login');
  const configured = (what: string, key: string, example: string) => () => {
    throw new DiginfraError('USAGE', `${what} credentials are not stored by a command here: they are read from the config, key ${key}`, {
      hint: `add them to the config file (${example}), or set DIGINFRACTL_${key.toUpperCase().replace(/\./g, '_')}; see docs/configuration.md`,
    });
  };
  auth
    .command('oauth')
    .description('refused: OAuth2 client credentials go in the config (registry.auth.oauth)')
    .allowUnknownOption()
    .allowExcessArguments()
    .action(configured('OAuth2 client', 'registry.auth.oauth', 'registry.auth.oauth: [{registry, clientID, clientSecret, tokenURL}]'));
  auth
    .command('gcp')
    .alias('gke')
    .description('refused: Google application default credentials are turned on per registry in the config (registry.auth.gcp)')
    .allowUnknownOption()
    .allowExcessArguments()
    .action(configured('Google application default', 'registry.auth.gcp', 'registry.auth.gcp: [{registry: europe-docker.pkg.dev}]'));
}
