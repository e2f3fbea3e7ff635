/**
 * Registry answers turned into DiginfraErrors that name what was asked for: an OCI error body's first
 * entry, a status mapped to a code (404 NOT_FOUND, 401/403 AUTH_REQUIRED, 429 RATE_LIMITED), and
 * bodies that should be JSON but are not.
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes
 */
import { DiginfraError } from '../errors.js';
import { formatReference, type OciReference } from '../reference/index.js';
import type { Credential } from './auth/session.js';
import { parseRetryAfter, readBodyLimited, type HttpResponse } from './transport.js';

/** Largest error body we read; a registry's error JSON is a few hundred bytes. */
const MAX_ERROR_BODY = 64 * 1024;

interface OciErrorBody {
  errors?: { code?: string; message?: string; detail?: unknown }[];
}

/** A body read whole, refused with REGISTRY_ERROR past `limit` bytes. */
export function readLimited(res: HttpResponse, limit: number): Promise<Buffer> {
  return readBodyLimited(res, limit, () => new DiginfraError('REGISTRY_ERROR', `response larger than ${limit} bytes`));
}

/** `CODE: message` of an OCI error body, else the start of the text; '' when there is nothing to read. */
export async function readErrorBody(res: HttpResponse): Promise<string> {
  try {
    const text = (await readLimited(res, MAX_ERROR_BODY)).toString('utf8');
    const parsed = JSON.parse(text) as OciErrorBody;
    const first = parsed.errors?.[0];
    if (first) return [first.code, first.message].filter(Boolean).join(': ');
    return text.slice(0, 200);
  } catch {
    return '';
  }
}

/** Parses a registry's JSON answer; anything else (an HTML error page from a proxy) is named. */
export function parseJson<T>(bytes: Buffer, registry: string, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    throw new DiginfraError('REGISTRY_ERROR', `${registry} answered ${what} with something other than JSON`, {
      hint: 'is a proxy or login page in the way? check the registry address and --plain-http',
    });
  }
}

/**
 * AUTH_REQUIRED with a hint that fits where the credentials came from: `credential` is the one that
 * was refused (its origin names the config entry to fix), true for "some credentials were refused",
 * false or undefined for "none were sent".
 */
export function authError(registry: string, credential: Credential | boolean | undefined, message: string): DiginfraError {
  const origin = typeof credential === 'object' ? credential.origin : undefined;
  return new DiginfraError('AUTH_REQUIRED', message, {
    hint: origin
      ? `the credentials for ${registry} come from ${origin}: correct them there`
      : credential
        ? `the credentials for ${registry} were rejected: run \`diginfractl repo login ${registry}\` again`
        : `run \`diginfractl repo login ${registry}\``,
  });
}

/** Maps a non-success answer to an error that names the thing asked for. */
export async function statusError(res: HttpResponse, ref: OciReference, what: string): Promise<DiginfraError> {
  const detail = await readErrorBody(res);
  const name = ref.tag || ref.digest ? formatReference(ref) : `${ref.registry}/${ref.repository}`;
  const suffix = detail ? ` (${detail})` : '';
  switch (res.statusCode) {
    case 404:
      return new DiginfraError('NOT_FOUND', `${what} not found: ${name}${suffix}`, {
        hint: /manifest/.test(what) && ref.tag ? `list the tags with \`diginfractl artifact info ${ref.registry}/${ref.repository}\`` : undefined,
      });
    case 401:
    case 403:
      return authError(ref.registry, res.statusCode === 403, `${ref.registry} denied ${what} for ${name} (${res.statusCode})${suffix}`);
    case 429: {
      const wait = parseRetryAfter(res.headers['retry-after']);
      return new DiginfraError('RATE_LIMITED', `${ref.registry} is rate limiting requests${wait ? `; it asks to wait ${Math.ceil(wait / 1000)} s` : ''}`, {
        hint: 'try again later, log in for a higher limit, or use a mirror (registry.mirrors)',
        ...(wait !== undefined && { retryAfterMs: wait }),
      });
    }
    default:
      return new DiginfraError('REGISTRY_ERROR', `${what} for ${name}: ${ref.registry} answered ${res.statusCode}${suffix}`);
  }
}
