/** Publishes test content (rules files, any files) to a test registry with the project's own pusher. */
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { packLayer } from '../../src/artifact/archive.js';
import { pushArtifact, type PushOptions } from '../../src/artifact/push.js';
import { parseOciReference } from '../../src/reference/reference.js';
import { RegistryClient } from '../../src/registry/client.js';
import { tempDir } from './fs.js';

/** The real falco_rules.yaml (it declares a required_engine_version). */
export const RULES_FIXTURE = resolve(import.meta.dirname, '../fixtures/falco_rules.yaml');

/** A client for the plain-HTTP test registry that never retries; `onResponse` sees every request. */
export function pushClient(onResponse?: (i: { method: string; status: number | 'error' }) => void): RegistryClient {
  return new RegistryClient({ hostSettings: () => ({ plainHttp: true }), retry: { attempts: 1, baseDelayMs: 5 }, ...(onResponse && { onResponse }) });
}

/** Pushes an artifact at `ref` (a tag) and returns the digest the tag points at. */
export async function push(client: RegistryClient, ref: string, opts: PushOptions): Promise<string> {
  const res = await pushArtifact(client, parseOciReference(ref), opts);
  return res.ref.digest;
}

export type RulesOptions = Partial<PushOptions> & {
  /** The rules file's bytes; without them, RULES_FIXTURE is pushed. */
  content?: string | Buffer;
  /** Name of the file holding `content` (default falco_rules.yaml). */
  fileName?: string;
};

/**
 * Pushes a rules file at `ref` with `version`. RULES_FIXTURE goes through the pusher as `repo push` sends
 * it (its required_engine_version becomes a requirement). `content` is packed into its .tar.gz here, so
 * content `repo push` would refuse (not YAML) can be published too: a broken publisher is what a
 * follower must survive.
 */
export async function pushRules(client: RegistryClient, ref: string, version: string, opts: RulesOptions = {}): Promise<string> {
  const { content, fileName = 'falco_rules.yaml', ...rest } = opts;
  const file = content === undefined ? RULES_FIXTURE : await packed(fileName, content);
  return push(client, ref, { type: 'rulesfile', version, files: [file], ...rest });
}

/** `content` as the file `name` in a layer `name`.tar.gz of its own; returns the layer's path. */
async function packed(name: string, content: string | Buffer): Promise<string> {
  const dir = await tempDir('diginfractl-src-');
  const path = join(dir, name);
  await writeFile(path, content);
  const layer = `${path}.tar.gz`;
  await packLayer([path], layer);
  return layer;
}

/** Pushes several files (name -> content) as one rules artifact. */
export async function pushFiles(client: RegistryClient, ref: string, version: string, files: Record<string, string>, opts: Partial<PushOptions> = {}): Promise<string> {
  const dir = await tempDir('diginfractl-src-');
  const paths: string[] = [];
  for (const [name, content] of Object.entries(files)) {
    const p = join(dir, name);
    await writeFile(p, content);
    paths.push(p);
  }
  return push(client, ref, { type: 'rulesfile', version, files: paths, ...opts });
}
