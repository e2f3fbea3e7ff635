/**
 * Credentials of private indexes: a JSON file beside the config (`index-credentials.json`, mode 0600),
 * kept out of the config so the config can be shared, printed and committed. Never logged.
 */
import { readFile } from 'node:fs/promises';
import { DiginfraError, messageOf } from '../errors.js';
import { writeFileAtomic } from '../config/index.js';
import type { IndexCredentials } from './types.js';

interface CredentialsFile {
  indexes: Record<string, IndexCredentials>;
}

/** All stored index credentials, by index name; a missing file is none. */
export async function readIndexCredentials(path: string): Promise<Record<string, IndexCredentials>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new DiginfraError('IO', `index credentials ${path}: cannot read: ${messageOf(err)}`, { cause: err });
  }
  try {
    const parsed = JSON.parse(text) as Partial<CredentialsFile>;
    const out: Record<string, IndexCredentials> = {};
    for (const [name, c] of Object.entries(parsed.indexes ?? {})) {
      if (c && typeof c.username === 'string' && typeof c.password === 'string') out[name] = { username: c.username, password: c.password };
    }
    return out;
  } catch {
    // Do not echo the content: it holds passwords.
    throw new DiginfraError('CONFIG_INVALID', `index credentials ${path}: not valid JSON`, {
      hint: `remove ${path} and add the private indexes again with --username and --password-stdin`,
    });
  }
}

/** Sets (or, with `undefined`, removes) the credentials of some indexes; rewrites the file atomically, 0600. */
export async function updateIndexCredentials(path: string, changes: Record<string, IndexCredentials | undefined>): Promise<void> {
  const all = await readIndexCredentials(path);
  let changed = false;
  for (const [name, c] of Object.entries(changes)) {
    if (c === undefined) {
      if (name in all) {
        delete all[name];
        changed = true;
      }
    } else {
      all[name] = c;
      changed = true;
    }
  }
  if (!changed) return;
  const body: CredentialsFile = { indexes: all };
  await writeFileAtomic(path, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
}
