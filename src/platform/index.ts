/** Public surface of platforms: the `OS/ARCH[/VARIANT]` grammar, this machine's platform, choosing from an image index. */
export { formatPlatform, parsePlatform, platformProblem, samePlatform, type Platform } from './platform.js';
export { hostPlatform, platformOrHost } from './host.js';
export { chooseFromIndex, platformsOf, type PlatformEntry } from './select.js';
