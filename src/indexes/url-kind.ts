/**
 * What kind of location an index URL names, without loading anything: `artifact search` asks this on
 * its fast path, where fetch.ts (and node:fs/promises with it) never loads.
 */

/** True for plain paths and file:// URLs. */
export function isLocalIndex(url: string): boolean {
  return url.startsWith('file:') || !/^[a-z][a-z0-9+.-]*:\/\//i.test(url);
}
