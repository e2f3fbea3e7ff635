/** The public surface of src/metrics/: what other folders may import (test/architecture.test.ts). */
export { createFollowMetrics } from './follow-metrics.js';
export type { RejectReason, FollowMetrics, CheckResult } from './follow-metrics.js';
export { parseListenAddr, startOpsServer } from './server.js';
export type { Probe, OpsServer } from './server.js';
