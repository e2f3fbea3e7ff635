/**
 * falcoctl's flags that map onto ours (docs/falcoctl.md), turned into our options before an action
 * runs, so the actions know one spelling of each thing. Small and dependency-free: every command
 * declaration loads it.
 */
import { DiginfraError } from '../../errors.js';
import type { CliContext } from '../run.js';

/** `artifact manifest|config -o json`: the stored bytes are JSON, so json is the one format there is. */
export function onlyJson(output: string | undefined): void {
  if (output !== undefined && output !== 'json') throw new DiginfraError('USAGE', `-o "${output}" is not json, the only format of this command (it prints the stored JSON bytes)`);
}

/** `--dest` or falcoctl's `--dest-dir` (not both); the current directory by default. */
export function destOf(opts: { dest?: string; destDir?: string }): string {
  if (opts.dest !== undefined && opts.destDir !== undefined && opts.dest !== opts.destDir) {
    throw new DiginfraError('USAGE', 'give --dest or --dest-dir, not both');
  }
  return opts.dest ?? opts.destDir ?? '.';
}

/** falcoctl's `--assets-dir DIR` is `--dir asset=DIR`. */
export function assetsDirAsDir<T extends { assetsDir?: string; dir?: string[] }>(opts: T): Omit<T, 'assetsDir'> {
  const { assetsDir, ...rest } = opts;
  if (assetsDir === undefined) return rest;
  if (rest.dir?.some((d) => d.startsWith('asset='))) throw new DiginfraError('USAGE', 'give --assets-dir or --dir asset=DIR, not both');
  return { ...rest, dir: [...(rest.dir ?? []), `asset=${assetsDir}`] };
}

/** A Go duration as falcoctl's --timeout takes it: `30s`, `2m`, `1h30m`. */
const GO_DURATION = /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/;

interface FollowHabitFlags {
  assetsDir?: string;
  dir?: string[];
  falcoVersions?: string;
  engineVersionsUrl?: string;
  tmpDir?: string;
  timeout?: string;
}

/**
 * `artifact follow`'s falcoctl flags: `--falco-versions` is `--engine-versions-url`, `--assets-dir`
 * is `--dir asset=DIR`; `--tmp-dir` and `--timeout` have nothing to set here and say so.
 */
export function followHabits<T extends FollowHabitFlags>(ctx: CliContext, opts: T): Omit<T, 'assetsDir' | 'falcoVersions' | 'tmpDir' | 'timeout'> {
  const { falcoVersions, tmpDir, timeout, ...rest } = assetsDirAsDir(opts) as FollowHabitFlags;
  if (falcoVersions !== undefined) {
    if (rest.engineVersionsUrl !== undefined && rest.engineVersionsUrl !== falcoVersions) throw new DiginfraError('USAGE', 'give --engine-versions-url or --falco-versions, not both');
    rest.engineVersionsUrl = falcoVersions;
  }
  if (tmpDir !== undefined) ctx.logger.warn(`--tmp-dir ${tmpDir} is not used: files are staged beside their destination and renamed into place`);
  if (timeout !== undefined) {
    if (!GO_DURATION.test(timeout)) throw new DiginfraError('USAGE', `--timeout "${timeout}" is not a duration like 30s or 2m`);
    ctx.logger.warn(`--timeout ${timeout} is not used: the engine versions URL is read at each check that needs it, and a check it fails is retried at the next one`);
  }
  return rest as Omit<T, 'assetsDir' | 'falcoVersions' | 'tmpDir' | 'timeout'>;
}
