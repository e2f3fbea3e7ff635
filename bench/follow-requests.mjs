#!/usr/bin/env node
/**
 * Registry requests per check when nothing changed: pushes --refs (default 20) rules artifacts, half
 * followed by a fixed tag (`:stable`), half by a floating tag (`:1`, published with the floating tags
 * as `repo push --add-floating-tags` does), lets `artifact follow` install them, then counts, from its
 * own /metrics, the registry requests, checks and downloaded bytes over --rounds (default 5) more
 * rounds of checks (--every 1s, no jitter). Target: exactly 1 request (a manifest HEAD) per ref per
 * check, fixed or floating, and 0 blob bytes.
 *
 *   npm run build && node bench/follow-requests.mjs [--refs 20] [--rounds 5] [--check]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { arg, cleanupOnSignal, metric, setup, startFollow } from './follow-common.mjs';

const REFS = Number(arg('refs', '20'));
const ROUNDS = Number(arg('rounds', '5'));
const CHECK = process.argv.includes('--check');

const ctx = await setup(REFS, { floating: true });
const floatingRefs = ctx.refs.filter((r) => r.endsWith(':1')).length;
let agent;
cleanupOnSignal(async () => {
  await agent?.stop();
  await ctx.reg.stop();
});
try {
  agent = await startFollow(ctx, ['--every', '1s', '--jitter', '0']);
  await agent.waitReady();
  await sleep(500);
  const before = await agent.metrics();
  await sleep(ROUNDS * 1000);
  const after = await agent.metrics();
  const d = (name, labels) => metric(after, name, labels) - metric(before, name, labels);
  const checks = d('diginfractl_follow_checks_total');
  const unchanged = d('diginfractl_follow_checks_total', { result: 'unchanged' });
  const requests = d('diginfractl_registry_requests_total');
  const heads = d('diginfractl_registry_requests_total', { method: 'HEAD' });
  const gets = d('diginfractl_registry_requests_total', { method: 'GET' });
  const bytes = d('diginfractl_download_bytes_total');
  const perCheck = checks > 0 ? requests / checks : NaN;
  process.stdout.write(`${REFS} refs (${REFS - floatingRefs} fixed tags, ${floatingRefs} floating), ${checks} checks (${unchanged} unchanged) in ${ROUNDS} s\n`);
  process.stdout.write(`registry requests: ${requests} (HEAD ${heads}, GET ${gets}) = ${perCheck.toFixed(3)} per ref per check (target 1)\n`);
  process.stdout.write(`blob bytes downloaded: ${bytes} (target 0)\n`);
  const ok = checks > 0 && requests === checks && heads === checks && bytes === 0 && unchanged === checks;
  process.stdout.write(ok ? 'OK\n' : 'NOT MET\n');
  if (CHECK && !ok) process.exitCode = 1;
} finally {
  await agent?.stop();
  await ctx.reg.stop();
}
