/**
 * Token scopes: `repository:NAME:ACTION[,ACTION]`. Merging scopes lets one token serve a whole push
 * (HEAD, POST, PATCH, PUT, and a mount that also needs pull on the source repository).
 * https://distribution.github.io/distribution/spec/auth/scope/
 */
export type Action = 'pull' | 'push' | 'delete' | '*';

export function repositoryScope(repository: string, actions: Action[]): string {
  return `repository:${repository}:${[...new Set(actions)].sort().join(',')}`;
}

/** Merges scopes on the same resource and sorts the result, so equal sets give equal cache keys. */
export function mergeScopes(scopes: string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  const order: string[] = [];
  for (const scope of scopes) {
    const last = scope.lastIndexOf(':');
    if (last < 0) continue;
    const resource = scope.slice(0, last);
    if (!byResource.has(resource)) {
      byResource.set(resource, new Set());
      order.push(resource);
    }
    for (const a of scope.slice(last + 1).split(',')) if (a) byResource.get(resource)!.add(a);
  }
  return order.sort().map((r) => `${r}:${[...byResource.get(r)!].sort().join(',')}`);
}
