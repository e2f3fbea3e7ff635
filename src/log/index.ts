/** The public surface of src/log/: what other folders may import (test/architecture.test.ts). */
export { createLogger } from './logger.js';
export type { Logger } from './logger.js';
