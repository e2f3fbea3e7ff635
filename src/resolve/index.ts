/**
 * Public surface of resolution, all pure: what artifacts need (dependencies, requirements), which
 * version satisfies them, where a dependency lives, and the plan's checks.
 */
export { parseDependency, parseRequirement, type Dependency, type VersionedName } from './dependency.js';
export { dedupeRoots, labelOf, resolveDependencies, type DepNode, type DependencySource, type ResolvedNode } from './deps.js';
export { repositoryKey, siblingRepository } from './locate.js';
export { checkAllowedTypes, checkRequirements, engineSatisfies, filterByType, ENGINE_VERSION } from './requirements.js';
export { dependencyRange, highest, isFloatingTag, resolveFloatingTag, satisfiesDependency, versionTags } from './versions.js';
export { engineVersionOfDocument } from './engine-version.js';
