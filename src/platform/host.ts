/**
 * This machine's platform, and the one a command uses: the one asked for, else this machine's.
 */
import { parsePlatform, type Platform } from './platform.js';

/** Node's `process.arch` in OCI's words (Node's x64 is amd64); others are spelled alike. */
const OCI_ARCH: Readonly<Record<string, string>> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

/** This machine's platform, in OCI's words; `os` and `arch` are Node's names, passed in by tests. */
export function hostPlatform(os: string = process.platform, arch: string = process.arch): Platform {
  return { os: os === 'win32' ? 'windows' : os, architecture: OCI_ARCH[arch] ?? arch };
}

/** `--platform` or `install.platform` when given (not empty), else this machine's platform. */
export function platformOrHost(text: string | undefined): Platform {
  return text ? parsePlatform(text) : hostPlatform();
}
