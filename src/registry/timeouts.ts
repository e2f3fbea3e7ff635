/**
 * The registry clients' idle-read timeout and retry budget (`registry.timeouts`), per role. Its own
 * module: `config show` prints them without loading the client.
 */
import { parseDuration, type RegistryConfig } from '../config/index.js';

/** Idle-read timeout and retry budget as the transport takes them. */
export interface RegistryTimeouts {
  readTimeoutMs: number;
  attempts: number;
}

/** One-off commands (install, pull, push...): a minute of silence, four tries. */
export const COMMAND_TIMEOUTS: Readonly<RegistryTimeouts> = { readTimeoutMs: 60_000, attempts: 4 };
/**
 * The follow agent: it checks again on its own schedule, so a stalled registry should cost a check
 * little time (20 s of silence, two tries: a stalled blob is given up after about 41 s, not 4 min).
 */
export const AGENT_TIMEOUTS: Readonly<RegistryTimeouts> = { readTimeoutMs: 20_000, attempts: 2 };

/**
 * The effective `registry.timeouts`: what the config sets, else the defaults of `role` ('agent' for
 * `artifact follow`, 'command' for the rest).
 */
export function registryTimeouts(registry: Pick<RegistryConfig, 'timeouts'>, role: 'command' | 'agent' = 'command'): RegistryTimeouts {
  const defaults = role === 'agent' ? AGENT_TIMEOUTS : COMMAND_TIMEOUTS;
  const read = registry.timeouts?.read !== undefined ? parseDuration(registry.timeouts.read) : undefined;
  const attempts = registry.timeouts?.attempts;
  return {
    readTimeoutMs: read ?? defaults.readTimeoutMs,
    attempts: attempts !== undefined ? Math.max(1, Math.floor(attempts)) : defaults.attempts,
  };
}
