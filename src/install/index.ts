/** The public surface of src/install/: what other folders may import (test/architecture.test.ts). */
export { acquireDirLocks } from './dir-lock.js';
export { installArtifacts } from './install.js';
export type { InstallResult } from './install.js';
export { lockfilePath, LOCKFILE_NAME } from './lockfile-path.js';
export { findRequested, readLockfile } from './lockfile.js';
export type { LockEntry } from './lockfile.js';
export { withOciLayouts } from './oci-source.js';
export type { PlannedArtifact } from './plan.js';
export { recoverInterruptedChanges } from './recover.js';
export { RESERVED } from './stage.js';
export type { BlobEvent } from './stage.js';
