/**
 * The follow folder's public surface: the agent (`artifact follow`), its rollback and state
 * (`artifact rollback`), and the inventory of what install and follow placed (`artifact list`).
 */
export { watchConfigFile, type ConfigWatcher } from './config-watch.js';
export { Follower, type FollowerDeps } from './follower.js';
export { readInventory, type Inventory, type InventoryItem } from './inventory.js';
export { normalizeRef, normalizeRefs } from './refs.js';
export type { SignatureDeps } from './reconcile.js';
export { rollbackRef, type RollbackResult } from './rollback.js';
export { checkFlagConflicts, effectiveFollow, type EffectiveFollow, type FollowFlags } from './settings.js';
export { Abandoned } from './scheduler.js';
export { StateStore } from './state.js';
export { isFailure, type CheckOutcome, type FollowSettings } from './types.js';
export { sameDependentFiles, watchDependentFiles, type DependencyHandlers, type DependentFiles } from './watch-dependencies.js';
