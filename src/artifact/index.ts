/** The public surface of src/artifact/: what other folders may import (test/architecture.test.ts). */
export { copyArtifact } from './copy.js';
export type { Place } from './copy.js';
export { PLUGIN, RULESFILE, samePlatform, checkArtifactType, ANNOTATION_SOURCE } from './format.js';
export type { Dependency, VersionedName } from './format.js';
export { inspectArtifact } from './inspect.js';
export type { ArtifactSummary } from './inspect.js';
export { OciLayout, layoutSource, parseLayoutRef } from './oci-layout.js';
export { resolveArtifact, extractArtifact } from './pull.js';
export type { ResolvedArtifact } from './pull.js';
export { pushArtifact } from './push.js';
export { stageLayers, uniqueLayers, stagingDirIn } from './stage-layers.js';
export type { StagedLayers } from './stage-layers.js';
export { selectTag } from './tags.js';
