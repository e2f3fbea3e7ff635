/**
 * What the kubelet does with a container's `env` before the process starts: values from Secrets
 * (secretKeyRef) and the downward API (spec.nodeName), and `$(NAME)` references to variables defined
 * earlier in the list expanded (`$$` is a literal `$`; a reference to an undefined name stays as it is).
 * https://kubernetes.io/docs/tasks/inject-data-application/define-interdependent-environment-variables/
 */
import type { Container } from './support.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- env entries are untyped YAML */
export type Secrets = Record<string, Record<string, string>>;

/** `$(NAME)` of a defined variable -> its value; `$$` -> `$`; anything else as written. */
export function expandReferences(text: string, defined: Readonly<Record<string, string>>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => {
    if (name === undefined) return '$';
    return Object.hasOwn(defined, name) ? defined[name]! : whole;
  });
}

/** The container's environment as its process sees it. */
export function containerEnv(c: Container, opts: { secrets?: Secrets; nodeName?: string } = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of (c.env ?? []) as any[]) {
    if (e.value !== undefined) env[e.name] = expandReferences(e.value, env);
    else if (e.valueFrom?.secretKeyRef) {
      const { name, key } = e.valueFrom.secretKeyRef;
      const value = opts.secrets?.[name]?.[key];
      if (value === undefined) throw new Error(`Secret ${name} has no key ${key}: the kubelet would not start ${c.name}`);
      env[e.name] = value;
    } else if (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') env[e.name] = opts.nodeName ?? 'node-1';
    else throw new Error(`${c.name}: env ${e.name} has a source this emulation does not know`);
  }
  return env;
}
