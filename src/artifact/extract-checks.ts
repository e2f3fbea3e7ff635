/**
 * The checks extractLayer runs on each tar entry from its header alone, before anything of it is
 * created (extract-layer.ts has the policy), and the errors it reports.
 */
import type { ReadEntry } from 'tar/read-entry';
import { DiginfraError } from '../errors.js';

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);

/** An entry name safe to print: quoted, control characters escaped, long names shortened. */
export function shown(path: string): string {
  const q = JSON.stringify(path);
  return q.length > 200 ? `${q.slice(0, 180)}…"` : q;
}

export function unsafe(message: string): DiginfraError {
  return new DiginfraError('UNSAFE_ARCHIVE', message, { hint: 'the layer was refused and nothing was installed; ask the publisher to fix the artifact' });
}

export function invalid(message: string, cause?: unknown): DiginfraError {
  return new DiginfraError('ARTIFACT_INVALID', message, {
    ...(cause !== undefined && { cause }),
    hint: 'the layer is damaged or not a tar.gz; nothing was installed (if it was downloaded, try again: a truncated download fails its digest check too)',
  });
}

/**
 * Control characters (C0, DEL, C1): a newline in a file name prints as a line of its own wherever the
 * name is shown (`artifact install` lists every file), so a layer could spoof output; no rules file or
 * plugin needs one.
 */
const CONTROL_CHAR_RE = /[\u0001-\u001f\u007f-\u009f]/;

/** Entry name: its normalized relative path, or UNSAFE_ARCHIVE for anything that could leave the target or spoof output. */
export function safeRelative(path: string): string {
  if (path.includes('\0')) throw unsafe(`entry ${shown(path)} has a NUL byte in its name`);
  if (CONTROL_CHAR_RE.test(path)) throw unsafe(`entry ${shown(path)} has a control character in its name`);
  if (path.startsWith('/') || path.startsWith('\\') || /^[a-zA-Z]:/.test(path)) throw unsafe(`entry ${shown(path)} has an absolute path`);
  const parts = path.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw unsafe(`entry ${shown(path)} leaves the target directory with ".."`);
  return parts.join('/');
}

/** Links: refused whatever their target. */
export function refuseLink(entry: ReadEntry): void {
  if (entry.type === 'SymbolicLink' || entry.type === 'Link') {
    throw unsafe(`entry ${shown(entry.path)} is a ${entry.type === 'Link' ? 'hard link' : 'symbolic link'} to ${shown(entry.linkpath ?? '')}; links are not allowed in layers`);
  }
}

/** Entry type: a directory or a regular file; anything else is refused. */
export function entryKind(entry: ReadEntry): 'dir' | 'file' {
  if (entry.type === 'Directory') return 'dir';
  if (!FILE_TYPES.has(entry.type)) throw unsafe(`entry ${shown(entry.path)} is a ${entry.type} entry; only files and directories are allowed`);
  return 'file';
}
