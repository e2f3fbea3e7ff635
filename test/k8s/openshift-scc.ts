/**
 * OpenShift's SecurityContextConstraints (security.openshift.io/v1), checked the way kubernetes-models
 * checks the core kinds: `new SecurityContextConstraints(obj).validate()` throws on a missing required
 * field or a wrong type, and validate() reads every field the API declares, so support.ts's
 * unknownFields() finds any other key. Fields and required ones: the SCC CustomResourceDefinition of
 * OpenShift's API (openshift/api, security/v1).
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- the object is untyped YAML */

type Check = (v: unknown) => boolean;
const bool: Check = (v) => typeof v === 'boolean';
const int: Check = (v) => Number.isInteger(v);
const str: Check = (v) => typeof v === 'string';
const strings: Check = (v) => Array.isArray(v) && v.every(str);
const nullable = (c: Check): Check => (v) => v === null || c(v);

/** Strategy objects: `type` plus the fields each strategy may carry. */
const STRATEGIES: Record<string, { fields: Record<string, Check>; types: string[] }> = {
  runAsUser: { fields: { type: str, uid: int, uidRangeMin: int, uidRangeMax: int }, types: ['MustRunAs', 'MustRunAsRange', 'MustRunAsNonRoot', 'RunAsAny'] },
  seLinuxContext: { fields: { type: str, seLinuxOptions: (v) => typeof v === 'object' && v !== null }, types: ['MustRunAs', 'RunAsAny'] },
  fsGroup: { fields: { type: str, ranges: Array.isArray }, types: ['MustRunAs', 'RunAsAny'] },
  supplementalGroups: { fields: { type: str, ranges: Array.isArray }, types: ['MustRunAs', 'RunAsAny'] },
};

const FIELDS: Record<string, Check> = {
  allowHostDirVolumePlugin: bool,
  allowHostIPC: bool,
  allowHostNetwork: bool,
  allowHostPID: bool,
  allowHostPorts: bool,
  allowPrivilegeEscalation: nullable(bool),
  allowPrivilegedContainer: bool,
  allowedCapabilities: nullable(strings),
  allowedFlexVolumes: nullable(Array.isArray),
  allowedUnsafeSysctls: nullable(strings),
  defaultAddCapabilities: nullable(strings),
  defaultAllowPrivilegeEscalation: nullable(bool),
  forbiddenSysctls: nullable(strings),
  groups: nullable(strings),
  priority: nullable(int),
  readOnlyRootFilesystem: bool,
  requiredDropCapabilities: nullable(strings),
  seccompProfiles: nullable(strings),
  users: nullable(strings),
  volumes: nullable(strings),
};

const REQUIRED = [
  'allowHostDirVolumePlugin', 'allowHostIPC', 'allowHostNetwork', 'allowHostPID', 'allowHostPorts', 'allowPrivilegedContainer',
  'allowedCapabilities', 'defaultAddCapabilities', 'priority', 'readOnlyRootFilesystem', 'requiredDropCapabilities', 'volumes',
];

/** Volume types an SCC names (the fields of a VolumeSource, plus `*` and `none`). */
const VOLUME_TYPES = new Set([
  '*', 'none', 'awsElasticBlockStore', 'azureDisk', 'azureFile', 'cephFS', 'cinder', 'configMap', 'csi', 'downwardAPI', 'emptyDir',
  'ephemeral', 'fc', 'flexVolume', 'flocker', 'gcePersistentDisk', 'gitRepo', 'glusterfs', 'hostPath', 'image', 'iscsi', 'nfs',
  'persistentVolumeClaim', 'photonPersistentDisk', 'portworxVolume', 'projected', 'quobyte', 'rbd', 'scaleIO', 'secret', 'storageOS',
  'vsphere',
]);

const METADATA_KEYS = new Set(['name', 'labels', 'annotations']);

export class SecurityContextConstraints {
  [key: string]: any;

  constructor(data: any) {
    Object.assign(this, data);
  }

  validate(): void {
    const problems: string[] = [];
    if (this.apiVersion !== 'security.openshift.io/v1') problems.push(`apiVersion ${String(this.apiVersion)}`);
    if (this.kind !== 'SecurityContextConstraints') problems.push(`kind ${String(this.kind)}`);
    const meta = this.metadata;
    if (!meta || typeof meta.name !== 'string' || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(meta.name) || meta.name.length > 253) {
      problems.push('metadata.name must be a DNS subdomain');
    }
    for (const key of Object.keys(meta ?? {})) if (!METADATA_KEYS.has(key)) problems.push(`metadata.${key} is not expected here`);
    for (const field of REQUIRED) if (!(field in this)) problems.push(`${field} is required`);
    for (const [field, check] of Object.entries(FIELDS)) {
      const value = this[field];
      if (value !== undefined && !check(value)) problems.push(`${field} has the wrong type: ${JSON.stringify(value)}`);
    }
    for (const [field, { fields, types }] of Object.entries(STRATEGIES)) {
      const value = this[field];
      if (value === undefined || value === null) continue;
      for (const [key, check] of Object.entries(fields)) {
        if (value[key] !== undefined && !check(value[key])) problems.push(`${field}.${key} has the wrong type`);
      }
      if (!types.includes(value.type)) problems.push(`${field}.type ${String(value.type)} is not one of ${types.join(', ')}`);
    }
    for (const v of this.volumes ?? []) if (!VOLUME_TYPES.has(v)) problems.push(`volumes: ${v} is not a volume type`);
    if (problems.length > 0) throw new Error(problems.join('; '));
  }
}
