/**
 * The part of undici this tool uses (Agent, EnvHttpProxyAgent and the `request` API), loaded from
 * undici's own modules rather than its index. The index also loads fetch, WebSocket, EventSource,
 * the cache and mock agents, and with them Node's http2, web streams, console and perf_hooks: several
 * MB of memory for good in the long-running `follow` agent, and start-up time for every command
 * (docs/benchmarks.md). This mirrors what undici's index does for these exports
 * (`Object.assign(Dispatcher.prototype, api)`); undici has no `exports` map, so the paths resolve,
 * but they are not its documented API: undici's version is pinned to a minor release in
 * package.json, and test/registry/undici-internals.test.ts fails if they move.
 */
import type * as Undici from 'undici';
import type { Dispatcher } from 'undici';
import AgentImpl from 'undici/lib/dispatcher/agent.js';
import DispatcherImpl from 'undici/lib/dispatcher/dispatcher.js';
import EnvHttpProxyAgentImpl from 'undici/lib/dispatcher/env-http-proxy-agent.js';
import api from 'undici/lib/api/index.js';

export type { Dispatcher };

// What undici's index does so that every dispatcher has .request(), .stream() and the others.
Object.assign((DispatcherImpl as { prototype: object }).prototype, api);

export const Agent = AgentImpl as typeof Undici.Agent;
export const EnvHttpProxyAgent = EnvHttpProxyAgentImpl as typeof Undici.EnvHttpProxyAgent;

/** Options of {@link request}: undici's, with the dispatcher required (no global dispatcher here). */
export type RequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & {
  dispatcher: Dispatcher;
  method?: Dispatcher.HttpMethod;
};

/** undici's `request(url, opts)` for an absolute URL, sent through `opts.dispatcher`. */
export function request(url: string | URL, opts: RequestOptions): Promise<Dispatcher.ResponseData> {
  const { dispatcher, method, ...rest } = opts;
  const u = typeof url === 'string' ? new URL(url) : url;
  return dispatcher.request({ ...rest, origin: u.origin, path: `${u.pathname}${u.search}`, method: method ?? (rest.body != null ? 'PUT' : 'GET') });
}
