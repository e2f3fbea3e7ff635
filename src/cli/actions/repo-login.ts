import { DiginfraError } from '../../errors.js';
import { CredentialStore, hostSettingsFor, RegistryClient } from '../../registry/index.js';
import { loadCliConfig, registryFlags, type RegistryFlagOptions } from '../session.js';
import { outputFormat, printJson, type CliContext } from '../run.js';

interface LoginFlags extends RegistryFlagOptions {
  username: string;
  password?: string;
  passwordStdin?: boolean;
  output?: string;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

function checkRegistryName(registry: string, command: 'login' | 'logout'): string {
  // A URL's scheme or user info would become part of the saved key (`user:pass@host`), and echoing
  // the argument would print the password: say what to type instead, naming the host only.
  const trimmed = registry.replace(/\/+$/, '');
  const host = trimmed.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').replace(/^[^/]*@/, '');
  if (host !== trimmed || !host || host.includes('/')) {
    const example = `diginfractl repo ${command} ${host.split('/')[0] || 'HOST[:PORT]'}${command === 'login' ? ' -u USER --password-stdin' : ''}`;
    throw new DiginfraError('USAGE', `give the registry host alone (HOST[:PORT], e.g. ghcr.io or localhost:5000), without a scheme, user, password or path: ${example}`);
  }
  return host;
}

export async function runLogin(ctx: CliContext, registryText: string, flags: LoginFlags): Promise<void> {
  const format = outputFormat(flags.output);
  const registry = checkRegistryName(registryText, 'login');
  if (flags.password !== undefined && flags.passwordStdin) {
    throw new DiginfraError('USAGE', 'give either --password or --password-stdin, not both');
  }
  const password = flags.passwordStdin ? await readStdin() : flags.password;
  if (!password) throw new DiginfraError('USAGE', 'a password is required: pipe it to --password-stdin (or use -p)');
  if (flags.password !== undefined) ctx.logger.warn('--password on the command line is insecure; prefer --password-stdin');
  const config = await loadCliConfig(ctx);
  // A client without stored credentials: the check must use exactly the ones given.
  // Credentials belong to the registry named, so check them there, not at a configured mirror.
  const settings = hostSettingsFor(config.registry, registryFlags(flags));
  const client = new RegistryClient({
    hostSettings: (host) => {
      const { mirror: _mirror, ...own } = settings(host);
      return own;
    },
  });
  let checked: 'verified' | 'unverified';
  try {
    checked = await client.checkLogin(registry, { username: flags.username, password });
  } finally {
    await client.close();
  }
  const store = new CredentialStore();
  await store.save(registry, { username: flags.username, password });
  if (checked === 'unverified') ctx.logger.warn(`${registry} admits anonymous access, so the credentials could not be checked; saved them anyway`);
  if (format === 'json') {
    printJson(ctx, { registry, username: flags.username, verified: checked === 'verified', credentialsFile: store.path });
  } else if (checked === 'unverified') {
    ctx.out(`credentials for ${registry} saved (not verified: the registry needs none) in ${store.path}`);
  } else {
    ctx.out(`login succeeded: credentials for ${registry} saved in ${store.path}`);
  }
}

export async function runLogout(ctx: CliContext, registryText: string, flags: { output?: string } = {}): Promise<void> {
  const format = outputFormat(flags.output);
  const registry = checkRegistryName(registryText, 'logout');
  const store = new CredentialStore();
  const removed = await store.remove(registry);
  if (format === 'json') printJson(ctx, { registry, removed, credentialsFile: store.path });
  else if (removed) ctx.out(`removed credentials for ${registry} from ${store.path}`);
  else ctx.out(`no credentials stored for ${registry} in ${store.path}`);
}
