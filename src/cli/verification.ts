/**
 * Signature verification as the commands that fetch artifacts set it up (`artifact install`, `repo
 * pull`, `artifact info`): on unless `--no-verify` or `verify: false` (then a warning, every run), the
 * index policies that apply, the configured keys for artifacts no index policy covers (`--verify-key`,
 * else registry.cosignKeys), and the trust root (`--trusted-root`, else registry.trustedRoot, else the
 * Sigstore public-good root through TUF, cached under the cache dir). docs/signatures.md.
 */
import { resolve } from 'node:path';
import { type LoadedConfig, indexCredentialsPath, sigstoreCacheDir, type DiginfraConfig } from '../config/index.js';
import { DiginfraError, messageOf } from '../errors.js';
import type { LoadedIndex } from '../indexes/index.js';
import type { KeyFiles, TrustRoot, Verification } from '../signature/index.js';
import type { CliContext } from './run.js';

/** The flags of a command that verifies. */
export interface VerifyFlagOptions {
  /** `--no-verify` (false) or `--verify` (true); unset: the config's `verify`. */
  verify?: boolean;
  verifyKey?: string[];
  trustedRoot?: string;
}

/** What `--no-verify` prints on every run: opting out is never silent. */
export const UNVERIFIED_WARNING = 'signature verification is off (--no-verify, or verify: false in the config): artifacts are taken without checking who signed them';

/**
 * The configured indexes for signature policies: their cached copies only (what `index add`, `index
 * update` or a name's first use fetched), so a pull by reference never waits on the network for them.
 * Loaded once, or again after `ttlMs` (the follow agent). One that cannot be read is skipped with a warning.
 */
export function policyIndexes(ctx: CliContext, loaded: Pick<LoadedConfig, 'config' | 'path'>, ttlMs?: number): () => Promise<readonly LoadedIndex[]> {
  let memo: Promise<LoadedIndex[]> | undefined;
  let at = 0;
  return async () => {
    const { loadIndexes } = await import('../indexes/load.js');
    if (memo === undefined || (ttlMs !== undefined && Date.now() - at > ttlMs)) {
      at = Date.now();
      memo = loadIndexes(loaded.config, undefined, {
        cachedOnly: true,
        credentialsPath: indexCredentialsPath(loaded.path),
        onError: (name, err) => ctx.logger.warn(`index "${name}" skipped: ${messageOf(err)}; its signature policies do not apply`),
      });
    }
    return memo;
  };
}

/** Whether the command verifies: the flag, else the config. `--no-verify` with `--verify-key` is a contradiction. */
export function verifyEnabled(config: DiginfraConfig, flags: VerifyFlagOptions): boolean {
  if (flags.verify === false && (flags.verifyKey?.length ?? 0) > 0) {
    throw new DiginfraError('USAGE', '--no-verify and --verify-key contradict each other; give one of them');
  }
  return flags.verify ?? config.verify;
}

/** The configured keys (`--verify-key` replaces registry.cosignKeys), or undefined when none is set. */
export function keyFilesOf(config: DiginfraConfig, flags: VerifyFlagOptions): KeyFiles | undefined {
  if (flags.verifyKey !== undefined && flags.verifyKey.length > 0) return { paths: flags.verifyKey.map((p) => resolve(p)), from: 'the keys given with --verify-key' };
  if (config.registry.cosignKeys.length > 0) return { paths: config.registry.cosignKeys.map((p) => resolve(p)), from: 'the keys of registry.cosignKeys' };
  return undefined;
}

/** The trusted_root.json to use instead of TUF's, if any (`--trusted-root`, else registry.trustedRoot). */
export function trustedRootOf(config: DiginfraConfig, flags: Pick<VerifyFlagOptions, 'trustedRoot'>): string | undefined {
  const file = flags.trustedRoot ?? config.registry.trustedRoot;
  return file === undefined ? undefined : resolve(file);
}

/** The trust root loader for these settings: loaded on first need, its fallback warning logged. */
export async function trustFor(ctx: CliContext, config: DiginfraConfig, flags: Pick<VerifyFlagOptions, 'trustedRoot'>, ttlMs?: number): Promise<() => Promise<TrustRoot>> {
  const { trustLoader } = await import('../signature/trust.js');
  const trustedRootFile = trustedRootOf(config, flags);
  return trustLoader(
    { cacheDir: sigstoreCacheDir(config), ...(trustedRootFile !== undefined && { trustedRootFile }), ...(ttlMs !== undefined && { ttlMs }) },
    (warning) => ctx.logger.warn(warning),
  );
}

/**
 * The verification a command runs, or undefined when it is turned off (after warning so). Key files
 * are read now: a bad one fails before anything is fetched.
 */
export async function verificationFor(ctx: CliContext, config: DiginfraConfig, flags: VerifyFlagOptions, indexes: () => Promise<readonly LoadedIndex[]>): Promise<Verification | undefined> {
  if (!verifyEnabled(config, flags)) {
    ctx.logger.warn(UNVERIFIED_WARNING);
    return undefined;
  }
  const keys = keyFilesOf(config, flags);
  const [{ createVerification }, { fetchKeyPem }, { loadPublicKeys }] = await Promise.all([
    import('../signature/verification.js'),
    import('../signature/key-url.js'),
    import('../signature/cosign.js'),
  ]);
  if (keys !== undefined) loadPublicKeys(keys.paths);
  return createVerification({ indexes, ...(keys !== undefined && { keys }), trust: await trustFor(ctx, config, flags), fetchKey: fetchKeyPem });
}
