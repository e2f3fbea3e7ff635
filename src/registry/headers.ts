/** Reading response headers: undici gives a string or, for a repeated header, an array. */
import { DiginfraError } from '../errors.js';
import type { HttpResponse } from './transport.js';

/** The first value of header `name` (lower case), if any. */
export function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Header `name`, or REGISTRY_ERROR naming `what` when the registry left it out. */
export function requireHeader(res: HttpResponse, name: string, what: string): string {
  const v = header(res, name);
  if (!v) throw new DiginfraError('REGISTRY_ERROR', `${what}: registry sent no ${name} header`);
  return v;
}
