/**
 * A policy's public key given as an https URL (`key: https://example.com/cosign.pub`), fetched when a
 * keyed policy needs it: through the proxy variables, with the system's CAs, refused past 64 KiB (a
 * PEM key is a few hundred bytes). Only https URLs reach here: policy validation refuses plain http.
 */
import { DiginfraError, messageOf } from '../errors.js';

const TIMEOUT_MS = 10_000;
const MAX_KEY_BYTES = 64 * 1024;

/** The PEM text at `url`; throws NETWORK naming the URL when it cannot be read. */
export async function fetchKeyPem(url: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  // The HTTP code loads only for a policy with a key URL.
  const [{ request }, { createDispatcher, readBodyLimited }] = await Promise.all([import('../registry/undici.js'), import('../registry/transport.js')]);
  const dispatcher = createDispatcher({ connectTimeoutMs: TIMEOUT_MS, readTimeoutMs: TIMEOUT_MS, env });
  const tooLarge = () => new DiginfraError('NETWORK', `the policy's key ${url} is larger than ${MAX_KEY_BYTES / 1024} KiB; a PEM public key is a few hundred bytes`);
  try {
    const res = await request(url, { method: 'GET', dispatcher, signal: AbortSignal.timeout(TIMEOUT_MS) });
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => undefined);
      throw new DiginfraError('NETWORK', `the policy's key ${url} answered ${res.statusCode}`, { hint: 'the index entry names a key URL that does not serve the key; tell the index maintainer' });
    }
    return (await readBodyLimited(res, MAX_KEY_BYTES, tooLarge)).toString('utf8');
  } catch (err) {
    if (err instanceof DiginfraError) throw err;
    throw new DiginfraError('NETWORK', `cannot fetch the policy's key ${url}: ${messageOf(err)}`, { cause: err });
  } finally {
    void dispatcher.destroy().catch(() => undefined);
  }
}
