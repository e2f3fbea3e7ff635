/** `diginfractl index add NAME URL`: fetch and validate the index, then save it to the config. */
import { DiginfraError } from '../../errors.js';
import { checkIndexName, checkIndexUrl, loadConfigFile, updateConfigFile } from '../../config/index.js';
import { isGcsIndex, isLocalIndex, isS3Index, normalizeIndexUrl, discardIndex, downloadIndex, storeIndex, tlsForIndex, readCachedIndex, updateIndexCredentials, type IndexCredentials } from '../../indexes/index.js';
import { isAllowed } from '../../registry/index.js';
import { outputFormat, printJson, type CliContext } from '../run.js';
import { loadIndexContext, warnPlainHttp, type IndexCliContext } from './index-common.js';

export interface IndexAddOptions {
  username?: string;
  passwordStdin?: boolean;
  force?: boolean;
  /** falcoctl's third argument: checked against the URL, not stored (the URL's scheme decides). */
  backend?: string;
  output?: string;
}

/** URL schemes of falcoctl's index backends (`http` serves https:// URLs too, as in falcoctl). */
const BACKENDS: Record<string, (url: string) => boolean> = {
  https: (u) => /^https:\/\//i.test(u),
  http: (u) => /^https?:\/\//i.test(u),
  gcs: (u) => /^gs:\/\//i.test(u),
  s3: (u) => /^s3:\/\//i.test(u),
  file: (u) => isLocalIndex(u),
};

function checkBackend(backend: string, url: string): void {
  const matches = Object.hasOwn(BACKENDS, backend) ? BACKENDS[backend] : undefined;
  if (!matches) throw new DiginfraError('USAGE', `index backend "${backend}" is not one of ${Object.keys(BACKENDS).join(', ')}`);
  if (!matches(url)) {
    throw new DiginfraError('USAGE', `index backend "${backend}" does not match ${url}: the URL's scheme decides the backend`, { hint: 'drop BACKEND, or give the URL of that backend' });
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function runIndexAdd(ctx: CliContext, name: string, rawUrl: string, opts: IndexAddOptions, stdin: () => Promise<string> = readStdin): Promise<void> {
  const format = outputFormat(opts.output);
  const badName = checkIndexName(name);
  if (badName) throw new DiginfraError('USAGE', `index name ${badName}`);
  const badUrl = checkIndexUrl(rawUrl);
  if (badUrl) throw new DiginfraError('USAGE', `index URL ${badUrl.startsWith('must') ? badUrl : `"${rawUrl}": ${badUrl.replace(`"${rawUrl}" `, '')}`}`);
  const url = normalizeIndexUrl(rawUrl);
  if (opts.backend !== undefined) checkBackend(opts.backend.toLowerCase(), url);

  let credentials: IndexCredentials | undefined;
  if (opts.passwordStdin && !opts.username) throw new DiginfraError('USAGE', '--password-stdin needs --username');
  if (opts.username !== undefined) {
    if (!opts.passwordStdin) throw new DiginfraError('USAGE', '--username needs --password-stdin (the password is read from standard input, never from the command line)');
    if (isLocalIndex(url) || isGcsIndex(url) || isS3Index(url)) {
      throw new DiginfraError('USAGE', `credentials only apply to http:// and https:// indexes${isGcsIndex(url) ? ' (gs:// uses Google application default credentials)' : isS3Index(url) ? ' (s3:// uses the AWS credential chain)' : ''}`);
    }
    const password = (await stdin()).replace(/\r?\n$/, '');
    if (password === '') throw new DiginfraError('USAGE', '--password-stdin: nothing on standard input', { hint: 'pipe the password in: echo "$PASSWORD" | diginfractl index add ...' });
    credentials = { username: opts.username, password };
  }

  const ictx = await loadIndexContext(ctx);
  const file = await loadConfigFile(ictx.path);
  const existing = file.config.indexes.find((ix) => ix.name === name);
  if (existing && !opts.force) {
    throw new DiginfraError('INDEX_EXISTS', `index "${name}" already exists (${existing.url})`, {
      hint: `add --force to replace it, or run "diginfractl index remove ${name}" first`,
    });
  }
  if (process.env.DIGINFRACTL_INDEXES) ctx.logger.warn(`DIGINFRACTL_INDEXES is set and overrides the indexes of ${ictx.path}`);
  warnPlainHttp(ctx, name, url);

  // Fetch and validate first: a bad index leaves the config, credentials and cache as they were.
  const entry = { name, url, added: new Date().toISOString() };
  const downloaded = await downloadIndex(entry, {
    cacheDir: ictx.cacheDir,
    ...(credentials !== undefined && { credentials }),
    ...tlsForIndex(ictx.config.registry, url),
  });

  try {
    // Credentials of a replaced index never carry over to its new URL.
    if (credentials !== undefined || existing) await updateIndexCredentials(ictx.credentialsPath, { [name]: credentials });
    await updateConfigFile(ictx.path, (cfg) => {
      const at = cfg.indexes.findIndex((ix) => ix.name === name);
      if (at >= 0) cfg.indexes[at] = entry;
      else cfg.indexes.push(entry);
      return cfg;
    });
  } catch (err) {
    await discardIndex(downloaded);
    throw err;
  }
  await storeIndex(ictx.cacheDir, entry, downloaded);
  await warnOutsideAllowed(ctx, ictx, name);
  if (format === 'json') printJson(ctx, { name, url, replaced: existing !== undefined, entries: downloaded.count });
  else ctx.out(`index "${name}" ${existing ? 'replaced' : 'added'}: ${downloaded.count} ${downloaded.count === 1 ? 'entry' : 'entries'} from ${url}`);
}

/** Entries whose artifacts registry.allowed refuses: added anyway (the list may change), with a warning naming them. */
async function warnOutsideAllowed(ctx: CliContext, ictx: IndexCliContext, name: string): Promise<void> {
  const allowed = ictx.config.registry.allowed;
  if (allowed.length === 0) return;
  const outside = ((await readCachedIndex(ictx.cacheDir, name))?.entries ?? []).filter((e) => !isAllowed(allowed, e.registry, e.repository));
  if (outside.length === 0) return;
  const shown = outside.slice(0, 5).map((e) => `${e.name} (${e.registry}/${e.repository})`).join(', ');
  ctx.logger.warn(`index "${name}": ${outside.length} ${outside.length === 1 ? 'entry is' : 'entries are'} outside registry.allowed (${allowed.join(', ')}) and cannot be installed: ${shown}${outside.length > 5 ? ', ...' : ''}`);
}
