/**
 * The part of undici this tool uses (Agent, EnvHttpProxyAgent and the `request` API), loaded from
 * undici's own modules rather than its index. The index also loads fetch, WebSocket, EventSource,
 * the cache and mock agents, and with them Node's http2, web streams, console and perf_hooks: several
 * MB of memory for good in the long-running `follow` agent, and start-up time for every command
 * (docs/benchmarks.md). undici has no `exports` map, so the paths resolve, but they are not its
 * documented API: undici's version is pinned to a minor release in package.json, and
 * test/registry/undici-internals.test.ts fails if they move.
 *
 * undici's index also installs its API functions (request, connect...) on `Dispatcher.prototype`.
 * This module does not touch undici's prototypes: it calls each function with the dispatcher as
 * `this`, which is all those methods are.
 */
import type * as Undici from 'undici';
import type { Dispatcher } from 'undici';
import AgentImpl from 'undici/lib/dispatcher/agent.js';
import EnvHttpProxyAgentImpl from 'undici/lib/dispatcher/env-http-proxy-agent.js';
import PoolImpl from 'undici/lib/dispatcher/pool.js';
import apiConnect from 'undici/lib/api/api-connect.js';
import apiRequest from 'undici/lib/api/api-request.js';

export type { Dispatcher };

export const Agent = AgentImpl as typeof Undici.Agent;
export const EnvHttpProxyAgent = EnvHttpProxyAgentImpl as typeof Undici.EnvHttpProxyAgent;

/**
 * The connection pool to a proxy. undici's ProxyAgent opens an HTTPS tunnel with
 * `this[kClient].connect()`, a method only undici's index gives dispatchers: this pool has its own.
 */
class ProxyPool extends (PoolImpl as new (origin: string | URL, opts: object) => Dispatcher) {
  override connect(opts: Dispatcher.ConnectOptions): Promise<Dispatcher.ConnectData>;
  override connect(opts: Dispatcher.ConnectOptions, callback: (err: Error | null, data: Dispatcher.ConnectData) => void): void;
  override connect(opts: Dispatcher.ConnectOptions, callback?: (err: Error | null, data: Dispatcher.ConnectData) => void): Promise<Dispatcher.ConnectData> | void {
    return apiConnect.call(this, opts, callback);
  }
}

/** An EnvHttpProxyAgent (undici's, see above) whose proxies can tunnel: `clientFactory` gives them a {@link ProxyPool}. */
export function envHttpProxyAgent(opts: Undici.EnvHttpProxyAgent.Options): Dispatcher {
  return new EnvHttpProxyAgent({ ...opts, clientFactory: (origin: URL, options: object) => new ProxyPool(origin, options) } as Undici.EnvHttpProxyAgent.Options);
}

/** Options of {@link request}: undici's, with the dispatcher required (no global dispatcher here). */
export type RequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & {
  dispatcher: Dispatcher;
  method?: Dispatcher.HttpMethod;
};

/** undici's `request(url, opts)` for an absolute URL, sent through `opts.dispatcher`. */
export function request(url: string | URL, opts: RequestOptions): Promise<Dispatcher.ResponseData> {
  const { dispatcher, method, ...rest } = opts;
  const u = typeof url === 'string' ? new URL(url) : url;
  return apiRequest.call(dispatcher, { ...rest, origin: u.origin, path: `${u.pathname}${u.search}`, method: method ?? (rest.body != null ? 'PUT' : 'GET') });
}
