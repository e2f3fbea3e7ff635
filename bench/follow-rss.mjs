#!/usr/bin/env node
/**
 * Idle memory of `artifact follow` with 20 refs: pushes 20 rules artifacts to a local registry, starts
 * the agent (checks every --every, default 30s, jitter 0.1, metrics on), waits until every ref is
 * installed, then samples its RSS (from /proc) every 5 s for --duration (default 5m) and prints the
 * last and the highest value against the target of 80 MB.
 *
 *   npm run build && node bench/follow-rss.mjs [--duration 5m] [--refs 20] [--every 30s] [--check]
 *
 * --check exits 1 when the highest RSS is not under 80 MB.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { arg, cleanupOnSignal, durationMs, metric, rssOf, rssParts, setup, startFollow } from './follow-common.mjs';

const DURATION = durationMs(arg('duration', '5m'));
const REFS = Number(arg('refs', '20'));
const EVERY = arg('every', '30s');
const CHECK = process.argv.includes('--check');
// --restart: measure an agent started on a state dir where every ref is already installed (the steady
// state of a node, and every pod restart): it downloads nothing.
const RESTART = process.argv.includes('--restart');
// --node-args "...": flags for the agent's node, to compare: a V8 option given here stands over the
// agent's own settings (src/cli/process-tuning.ts), e.g. "--no-expose-gc" or "--turbofan --maglev".
const NODE_ARGS = (arg('node-args', '') ?? '').split(' ').filter(Boolean);
const TARGET = 80 * 1024 * 1024;
const mb = (b) => `${(b / 1024 / 1024).toFixed(1)} MB`;

const ctx = await setup(REFS);
let agent;
cleanupOnSignal(async () => {
  await agent?.stop();
  await ctx.reg.stop();
});
try {
  agent = await startFollow(ctx, ['--every', EVERY, '--jitter', '0.1'], { nodeArgs: NODE_ARGS });
  await agent.waitReady();
  if (RESTART) {
    await agent.stop();
    agent = await startFollow(ctx, ['--every', EVERY, '--jitter', '0.1'], { nodeArgs: NODE_ARGS });
    await agent.waitReady();
  }
  process.stdout.write(`follow${RESTART ? ' (restarted on an installed state dir)' : ''}: ${REFS} refs installed; idling ${DURATION / 1000} s (checks every ${EVERY} +-10%)\n`);
  let peak = 0;
  let last = 0;
  const start = Date.now();
  while (Date.now() - start < DURATION) {
    await sleep(Math.min(5_000, DURATION));
    last = await rssOf(agent.child.pid);
    peak = Math.max(peak, last);
    const m = await agent.metrics();
    process.stdout.write(`  t=${Math.round((Date.now() - start) / 1000)}s rss=${mb(last)} heap total=${mb(metric(m, 'nodejs_heap_size_total_bytes'))} used=${mb(metric(m, 'nodejs_heap_size_used_bytes'))} external=${mb(metric(m, 'nodejs_external_memory_bytes'))}\n`);
  }
  const parts = await rssParts(agent.child.pid).catch(() => undefined);
  const text = await agent.metrics();
  const checks = metric(text, 'diginfractl_follow_checks_total');
  process.stdout.write(`\nidle RSS after ${DURATION / 1000} s with ${REFS} refs: ${mb(last)} (peak ${mb(peak)}), target < ${mb(TARGET)}: ${peak < TARGET ? 'OK' : 'OVER'}\n`);
  if (parts) process.stdout.write(`RSS split: ${mb(parts.anon)} anonymous (V8 heap, malloc), ${mb(parts.file)} file pages (mostly the node binary's code, shared and reclaimable)\n`);
  process.stdout.write(`checks done meanwhile: ${checks}; heap used ${mb(metric(text, 'nodejs_heap_size_used_bytes'))}\n`);
  if (CHECK && peak >= TARGET) process.exitCode = 1;
} finally {
  await agent?.stop();
  await ctx.reg.stop();
}
