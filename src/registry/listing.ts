/**
 * Lists that registries page with `Link: <url>; rel="next"`: a repository's tags and the registry's
 * catalog. https://github.com/opencontainers/distribution-spec/blob/main/spec.md#listing-tags
 */
import type { OciReference } from '../reference/index.js';
import type { AuthSession } from './auth/session.js';
import { repositoryScope } from './auth/scope.js';
import { parseJson, readLimited, statusError } from './errors.js';
import { header } from './headers.js';
import type { HttpResponse } from './transport.js';

/** Largest page of a list we read. */
const MAX_PAGE_BYTES = 16 * 1024 * 1024;
/** A registry that keeps sending `next` is stopped here. */
const MAX_PAGES = 10_000;

/** All tags of a repository, following `Link` pagination. */
export function listTags(session: AuthSession, ref: OciReference, pageSize: number): Promise<string[]> {
  const repo = { registry: ref.registry, repository: ref.repository };
  return collectPages(session, repo, [repositoryScope(ref.repository, ['pull'])], `/v2/${ref.repository}/tags/list?n=${pageSize}`, {
    what: 'tags',
    body: 'the tag list',
    items: (body: { tags?: string[] | null }) => body.tags ?? [],
  });
}

/** Repositories of a registry (`/v2/_catalog`); many registries disable it. */
export function listCatalog(session: AuthSession, registry: string): Promise<string[]> {
  return collectPages(session, { registry, repository: '_catalog' }, ['registry:catalog:*'], '/v2/_catalog?n=1000', {
    what: 'catalog',
    body: 'the catalog',
    items: (body: { repositories?: string[] }) => body.repositories ?? [],
  });
}

/** The items of every page from `path` on; `what` and `body` name the list and its JSON in errors. */
async function collectPages<T>(
  session: AuthSession,
  subject: OciReference,
  scopes: string[],
  path: string,
  list: { what: string; body: string; items: (body: T) => string[] },
): Promise<string[]> {
  const out: string[] = [];
  let url: string | undefined = session.url(subject.registry, path);
  for (let page = 0; url && page < MAX_PAGES; page++) {
    const res = await session.send(subject.registry, scopes, { method: 'GET', url });
    if (res.statusCode !== 200) throw await statusError(res, subject, list.what);
    const next = nextLink(res, url);
    out.push(...list.items(parseJson<T>(await readLimited(res, MAX_PAGE_BYTES), subject.registry, list.body)));
    url = next;
  }
  return out;
}

/** `<url>; rel="next"` from a Link header, resolved against the request URL. */
function nextLink(res: HttpResponse, base: string): string | undefined {
  const link = header(res, 'link');
  const m = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
  return m ? new URL(m[1]!, base).toString() : undefined;
}
