/** Public surface of the config: read, validate, layer, save, and where things live. */
export { loadConfig, loadConfigFile, readConfigFile, type LoadConfigOptions, type LoadedConfig } from './load.js';
export { validateConfig, checkConfig, type CheckedConfig } from './validate.js';
export { applyEnv, applyFlags, fileSources } from './layers.js';
export { saveConfig, updateConfigFile } from './save.js';
export { maskConfig, maskUrl, MASK } from './mask.js';
export { parseDuration } from './checks.js';
export { KEYS, envName, type KeyDef } from './keys.js';
export {
  resolveConfigPath,
  cacheRoot,
  indexCredentialsPath,
  userConfigPath,
  xdgCacheHome,
  xdgConfigHome,
  SYSTEM_CONFIG_PATH,
  type Env,
} from './paths.js';
export * from './types.js';
export { writeFileAtomic } from './atomic-write.js';
export { checkIndexName, checkIndexUrl } from './checks.js';
export { applySectionFlags } from './layers.js';
export { sigstoreCacheDir } from './paths.js';
export { closest } from './suggest.js';
