/** The public surface of src/reference/: what other folders may import (test/architecture.test.ts). */
export { parseArtifactRef, formatArtifactRef, formatReference, MAX_PORT, isRegistryHostSyntax, unusablePort, parseOciReference, withTag, withDigest, referenceSelector, apiHost, registryKey, isRepositoryPath } from './reference.js';
export type { OciReference, ArtifactRef, IndexedName } from './reference.js';
