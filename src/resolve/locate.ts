/**
 * Where a dependency lives. A dependency names an artifact (`k8saudit`), not a repository; it is found
 * (1) by that name in the configured indexes, in their order, else (2) beside the artifact that needs
 * it: same registry, and the requirer's repository with its last path component replaced by the
 * dependency name (`ghcr.io/acme/rules/k8saudit-rules` needs `k8saudit` ->
 * `ghcr.io/acme/rules/k8saudit`). Pure.
 */
import type { OciReference } from '../reference/index.js';

/** `<dirname(requirer repository)>/<name>` in the requirer's registry, without tag or digest. */
export function siblingRepository(requirer: Pick<OciReference, 'registry' | 'repository'>, name: string): OciReference {
  const slash = requirer.repository.lastIndexOf('/');
  const repository = slash < 0 ? name : `${requirer.repository.slice(0, slash)}/${name}`;
  return { registry: requirer.registry, repository };
}

/** `registry/repository` without tag or digest: the identity of a repository. */
export function repositoryKey(ref: Pick<OciReference, 'registry' | 'repository'>): string {
  return `${ref.registry}/${ref.repository}`;
}
