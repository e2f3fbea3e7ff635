/**
 * Turns a raw value (typed, from YAML or a flag; or a string, from an environment variable) into the
 * typed value of one key, collecting problems as `<subject> must ...` sentences.
 */
import type { BasicAuthConfig, GcpAuthConfig, IndexConfig, OauthAuthConfig } from './types.js';
import type { KeyDef } from './keys.js';
import { checkHost, checkHttpUrl, checkIndexName, checkIndexUrl } from './checks.js';
import { didYouMean } from './suggest.js';
import { maskUrlsInText } from './mask.js';

/** Value of `undefined` means "unset" (an optional key given as null or ""). */
export type Coerced = { ok: true; value: unknown } | { ok: false };

/** `install.resolveDeps must be true or false`, `install.refs[1]: "x" is not ...`; passwords in URLs masked. */
export function problem(subject: string, phrase: string): string {
  return maskUrlsInText(/^(must|is|has)\b/.test(phrase) ? `${subject} ${phrase}` : `${subject}: ${phrase}`);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value as a message shows it; with `secret`, only its kind (it may be a password put in the wrong place). */
function describe(v: unknown, secret = false): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (secret) return `a ${typeof v}`;
  if (typeof v === 'string') return `"${v}"`;
  return `${typeof v} ${String(v)}`;
}

function checkEach(def: KeyDef, values: string[], subject: string, problems: string[]): boolean {
  let ok = true;
  values.forEach((v, i) => {
    const p = def.check?.(v);
    if (p) {
      problems.push(problem(`${subject}[${i}]`, p));
      ok = false;
    }
  });
  return ok;
}

function checkOne(def: KeyDef, value: string, subject: string, problems: string[]): boolean {
  const p = def.check?.(value);
  if (p) problems.push(problem(subject, p));
  return !p;
}

function checkMap(def: KeyDef, map: Record<string, string | string[]>, subject: string, problems: string[]): boolean {
  let ok = true;
  for (const [k, v] of Object.entries(map)) {
    const pk = def.checkKey?.(k);
    if (pk) {
      problems.push(problem(`${subject} key "${k}"`, pk));
      ok = false;
    }
    // listValues: each of several values (a list, or words of a string) is checked on its own.
    const values = !def.listValues ? [v as string] : Array.isArray(v) ? v : v.split(/\s+/).filter(Boolean);
    if (def.listValues && values.length === 0) values.push('');
    for (const one of values) {
      const pv = def.check?.(one);
      if (pv) {
        problems.push(problem(`${subject}.${k}`, pv));
        ok = false;
      }
    }
  }
  return ok;
}

interface FieldSpec {
  required: boolean;
  kind: 'string' | 'strings';
  check?: (v: string) => string | undefined;
  /** Never echo the value in a message. */
  secret?: boolean;
}

/** A list of small objects (indexes, registry.auth.*), each field checked; unknown fields rejected. */
function objectList<T>(raw: unknown, subject: string, fields: Record<string, FieldSpec>, problems: string[]): T[] | undefined {
  // A list that holds secrets never echoes what it got instead: that may be the secret itself.
  const secret = Object.values(fields).some((f) => f.secret);
  if (!Array.isArray(raw)) {
    problems.push(problem(subject, `must be a list of maps with ${Object.keys(fields).filter((f) => fields[f]!.required).join(', ')}, not ${describe(raw, secret)}`));
    return undefined;
  }
  const out: T[] = [];
  let ok = true;
  raw.forEach((item, i) => {
    const at = `${subject}[${i}]`;
    if (!isPlainObject(item)) {
      problems.push(problem(at, `must be a map, not ${describe(item, secret)}`));
      ok = false;
      return;
    }
    const obj: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(item)) {
      const spec = fields[k];
      if (!spec) {
        problems.push(`${at}: unknown key "${k}"${didYouMean(k, Object.keys(fields))}`);
        ok = false;
        continue;
      }
      if (v === null || v === undefined || v === '') continue;
      if (spec.kind === 'string') {
        if (typeof v !== 'string') {
          problems.push(problem(`${at}.${k}`, `must be a string, not ${spec.secret ? typeof v : describe(v, secret)}`));
          ok = false;
          continue;
        }
        const p = spec.check?.(v);
        if (p) {
          problems.push(problem(`${at}.${k}`, p));
          ok = false;
          continue;
        }
        obj[k] = v;
      } else {
        if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) {
          problems.push(problem(`${at}.${k}`, 'must be a list of strings'));
          ok = false;
          continue;
        }
        obj[k] = v;
      }
    }
    for (const [k, spec] of Object.entries(fields)) {
      if (spec.required && obj[k] === undefined && !(k in item && item[k] !== null && item[k] !== '')) {
        problems.push(`${at}: missing "${k}"`);
        ok = false;
      }
    }
    out.push(obj as T);
  });
  return ok ? out : undefined;
}

const INDEX_FIELDS: Record<string, FieldSpec> = {
  name: { required: true, kind: 'string', check: checkIndexName },
  url: { required: true, kind: 'string', check: checkIndexUrl },
  added: { required: false, kind: 'string' },
  backend: {
    required: false,
    kind: 'string',
    check: (v) => (['https', 'http', 'file'].includes(v) ? undefined : `"${v}" is not one of https, http, file`),
  },
};
const BASIC_FIELDS: Record<string, FieldSpec> = {
  registry: { required: true, kind: 'string', check: checkHost },
  user: { required: true, kind: 'string' },
  password: { required: true, kind: 'string', secret: true },
};
const OAUTH_FIELDS: Record<string, FieldSpec> = {
  registry: { required: true, kind: 'string', check: checkHost },
  clientID: { required: true, kind: 'string' },
  clientSecret: { required: true, kind: 'string', secret: true },
  tokenURL: { required: true, kind: 'string', check: checkHttpUrl },
  scopes: { required: false, kind: 'strings' },
};
const GCP_FIELDS: Record<string, FieldSpec> = {
  registry: { required: true, kind: 'string', check: checkHost },
};

function uniqueIndexNames(list: IndexConfig[], subject: string, problems: string[]): boolean {
  const seen = new Map<string, number>();
  let ok = true;
  list.forEach((ix, i) => {
    const prev = seen.get(ix.name);
    if (prev !== undefined) {
      problems.push(`${subject}[${i}]: name "${ix.name}" is already used by ${subject}[${prev}]; index names must be unique`);
      ok = false;
    } else seen.set(ix.name, i);
  });
  return ok;
}

/**
 * Where a NUL byte hides in `raw` (`""` for the value itself, `[2]`, `.url`, `[0].url`), or undefined.
 * No path, URL, host or command holds one, and Node refuses it deep inside a filesystem call.
 */
function nulAt(raw: unknown): string | undefined {
  if (typeof raw === 'string') return raw.includes('\0') ? '' : undefined;
  if (Array.isArray(raw)) {
    for (let i = 0; i < raw.length; i++) {
      const at = nulAt(raw[i]);
      if (at !== undefined) return `[${i}]${at}`;
    }
    return undefined;
  }
  if (isPlainObject(raw)) {
    for (const [k, v] of Object.entries(raw)) {
      if (k.includes('\0')) return '';
      const at = nulAt(v);
      if (at !== undefined) return `.${k}${at}`;
    }
  }
  return undefined;
}

/** A typed value (YAML, flags). */
export function coerceValue(def: KeyDef, raw: unknown, subject: string, problems: string[]): Coerced {
  const fail = (phrase: string): Coerced => {
    problems.push(problem(subject, phrase));
    return { ok: false };
  };
  const nul = nulAt(raw);
  if (nul !== undefined) {
    problems.push(problem(`${subject}${nul}`, 'must not contain a NUL byte (\\0)'));
    return { ok: false };
  }
  switch (def.kind) {
    case 'string': {
      if (typeof raw !== 'string') return fail(`must be a string, not ${describe(raw)}${typeof raw === 'number' ? '; put it in quotes' : ''}`);
      if (raw === '' && def.optional) return { ok: true, value: undefined };
      return checkOne(def, raw, subject, problems) ? { ok: true, value: raw } : { ok: false };
    }
    case 'strings': {
      if (!Array.isArray(raw) || !raw.every((s) => typeof s === 'string')) return fail(`must be a list of strings, not ${describe(raw)}`);
      return checkEach(def, raw, subject, problems) ? { ok: true, value: [...raw] } : { ok: false };
    }
    case 'bool': {
      if (typeof raw === 'boolean') return { ok: true, value: raw };
      if (raw === 'true' || raw === 'false') return { ok: true, value: raw === 'true' };
      return fail('must be true or false');
    }
    case 'number': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
      if (!Number.isFinite(n)) return fail(`must be a number, not ${describe(raw)}`);
      if (def.range && (n < def.range[0] || n > def.range[1])) return fail(`must be between ${def.range[0]} and ${def.range[1]}, not ${n}`);
      return { ok: true, value: n };
    }
    case 'map': {
      const valueOk = (v: unknown) => typeof v === 'string' || (def.listValues === true && Array.isArray(v) && v.every((x) => typeof x === 'string'));
      if (!isPlainObject(raw) || !Object.values(raw).every(valueOk)) {
        return fail(`must be a map of ${def.listValues ? 'strings or lists of strings' : 'strings'} (key: value), not ${describe(raw)}`);
      }
      const copy = Object.fromEntries(Object.entries(raw as Record<string, string | string[]>).map(([k, v]) => [k, Array.isArray(v) ? [...v] : v]));
      return checkMap(def, copy, subject, problems) ? { ok: true, value: copy } : { ok: false };
    }
    case 'indexes': {
      const list = objectList<IndexConfig>(raw, subject, INDEX_FIELDS, problems);
      if (!list || !uniqueIndexNames(list, subject, problems)) return { ok: false };
      return { ok: true, value: list };
    }
    case 'basicAuth': {
      const list = objectList<BasicAuthConfig>(raw, subject, BASIC_FIELDS, problems);
      return list ? { ok: true, value: list } : { ok: false };
    }
    case 'oauthAuth': {
      const list = objectList<OauthAuthConfig>(raw, subject, OAUTH_FIELDS, problems);
      return list ? { ok: true, value: list } : { ok: false };
    }
    case 'gcpAuth': {
      const list = objectList<GcpAuthConfig>(raw, subject, GCP_FIELDS, problems);
      return list ? { ok: true, value: list } : { ok: false };
    }
  }
}

function splitList(text: string, sep: string): string[] {
  return text
    .split(sep)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/**
 * A string from an environment variable: lists comma-separated, booleans true/false, maps
 * `key=value,key=value`, indexes `name=url,name=url` (or falcoctl's `name,url;name,url`), credentials
 * `registry,user,password;...`.
 */
export function coerceString(def: KeyDef, text: string, subject: string, problems: string[]): Coerced {
  const fail = (phrase: string): Coerced => {
    problems.push(problem(subject, phrase));
    return { ok: false };
  };
  switch (def.kind) {
    case 'string':
    case 'number':
      return coerceValue(def, text, subject, problems);
    case 'bool': {
      const t = text.trim().toLowerCase();
      if (t === 'true' || t === '1') return { ok: true, value: true };
      if (t === 'false' || t === '0') return { ok: true, value: false };
      return fail(`must be true or false, not "${text}"`);
    }
    case 'strings':
      return coerceValue(def, splitList(text, ','), subject, problems);
    case 'map': {
      const map: Record<string, string> = {};
      for (const part of splitList(text, ',')) {
        const eq = part.indexOf('=');
        if (eq <= 0) return fail(`"${part}" must be key=value (entries separated by ",")`);
        map[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
      }
      return coerceValue(def, map, subject, problems);
    }
    case 'indexes': {
      const list: { name: string; url: string }[] = [];
      const falcoctlStyle = !text.includes('=') && (text.includes(';') || /^[^,]+,[^,]+$/.test(text.trim()));
      if (!falcoctlStyle) {
        for (const part of splitList(text, ',')) {
          const eq = part.indexOf('=');
          if (eq <= 0) return fail(`"${part}" must be name=url (entries separated by ",")`);
          list.push({ name: part.slice(0, eq).trim(), url: part.slice(eq + 1).trim() });
        }
      } else {
        for (const part of splitList(text, ';')) {
          const [name, url, ...rest] = part.split(',').map((s) => s.trim());
          if (!name || !url || rest.length > 0) return fail(`"${part}" must be name,url (entries separated by ";")`);
          list.push({ name, url });
        }
      }
      return coerceValue(def, list, subject, problems);
    }
    case 'basicAuth':
    case 'oauthAuth':
    case 'gcpAuth': {
      const names = def.kind === 'basicAuth' ? ['registry', 'user', 'password'] : def.kind === 'oauthAuth' ? ['registry', 'clientID', 'clientSecret', 'tokenURL'] : ['registry'];
      const sep = def.kind === 'gcpAuth' && !text.includes(';') ? ',' : ';';
      const list: Record<string, string>[] = [];
      for (const part of splitList(text, sep)) {
        const values = def.kind === 'gcpAuth' ? [part] : part.split(',').map((s) => s.trim());
        // Never echo the entry: it holds a secret.
        if (values.length !== names.length) return fail(`entries must be ${names.join(',')} separated by ";"`);
        list.push(Object.fromEntries(names.map((n, i) => [n, values[i]!])));
      }
      return coerceValue(def, list, subject, problems);
    }
  }
}

