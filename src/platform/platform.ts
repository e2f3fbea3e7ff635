/**
 * A platform as the OCI image index names it (`os`, `architecture`, `variant`), and its one text form,
 * `OS/ARCH[/VARIANT]` (`linux/amd64`, `linux/arm/v7`), used by `--platform`, `install.platform` and
 * `repo push --platform` alike. Pure.
 * https://github.com/opencontainers/image-spec/blob/main/image-index.md#image-index-property-descriptions
 */
import { DiginfraError } from '../errors.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** Each part of `OS/ARCH[/VARIANT]`: lower-case letters, digits and `_` (as in `mips64_le`). */
const PART_RE = /^[a-z0-9_]+$/;

/** What is wrong with `text` as a platform, as a phrase ("... must be ..."), or undefined when it is one. */
export function platformProblem(text: string): string | undefined {
  const parts = text.split('/');
  if (parts.length >= 2 && parts.length <= 3 && parts.every((p) => PART_RE.test(p))) return undefined;
  return `"${text}" must be OS/ARCH such as linux/amd64 or linux/arm64`;
}

/** `linux/amd64` -> Platform; USAGE when it is not `OS/ARCH[/VARIANT]`. */
export function parsePlatform(text: string): Platform {
  const problem = platformProblem(text);
  if (problem !== undefined) throw new DiginfraError('USAGE', `platform ${problem}`);
  const [os, architecture, variant] = text.split('/') as [string, string, string?];
  return { os, architecture, ...(variant !== undefined && { variant }) };
}

/** Platform -> `linux/amd64` or `linux/arm/v7`. */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** Same os and architecture; the variant counts only when both name one (`linux/arm` matches `linux/arm/v7`). */
export function samePlatform(a: Platform, b: Platform): boolean {
  return a.os === b.os && a.architecture === b.architecture && (!a.variant || !b.variant || a.variant === b.variant);
}
