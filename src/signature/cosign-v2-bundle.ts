/**
 * cosign v2 keyless signatures, as a Sigstore bundle sigstore-js can verify. cosign v2 keeps
 * everything a bundle holds in the annotations of the signature layer (specs/SIGNATURE_SPEC.md of
 * sigstore/cosign):
 *
 *  - `dev.cosignproject.cosign/signature`: the base64 signature of the layer's payload (the
 *    simple-signing JSON, which is the signed message);
 *  - `dev.sigstore.cosign/certificate`: the Fulcio leaf certificate (PEM); `.../chain` its
 *    intermediates and root, which verification takes from the trusted root instead;
 *  - `dev.sigstore.cosign/bundle`: Rekor's answer, `{SignedEntryTimestamp, Payload: {body,
 *    integratedTime, logIndex, logID}}`: the signed entry timestamp (an inclusion promise) over the
 *    logged entry.
 *
 * That is a v0.1 bundle (certificate, inclusion promise, message signature). Only the shape changes
 * here; every check is sigstore-js's.
 */
import { createHash } from 'node:crypto';
import { SIGNATURE_ANNOTATION, type SignatureLayer } from './cosign.js';

export const CERTIFICATE_ANNOTATION = 'dev.sigstore.cosign/certificate';
export const CHAIN_ANNOTATION = 'dev.sigstore.cosign/chain';
export const REKOR_BUNDLE_ANNOTATION = 'dev.sigstore.cosign/bundle';
const BUNDLE_V01 = 'application/vnd.dev.sigstore.bundle+json;version=0.1';

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The DER bytes of the first certificate of a PEM text, or undefined when there is none. */
function firstCertificateDer(pem: string): Buffer | undefined {
  const match = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(pem);
  if (match === null) return undefined;
  const der = Buffer.from(match[1]!.replace(/\s+/g, ''), 'base64');
  return der.length > 0 ? der : undefined;
}

/** The transparency-log entry of the Rekor bundle annotation, in the bundle's JSON shape, or why not. */
function tlogEntry(annotation: string | undefined): { entry?: Record<string, unknown>; why?: string } {
  if (annotation === undefined) return {};
  let rekor: unknown;
  try {
    rekor = JSON.parse(annotation);
  } catch {
    return { why: `its ${REKOR_BUNDLE_ANNOTATION} annotation is not JSON` };
  }
  const set = isMap(rekor) ? rekor.SignedEntryTimestamp : undefined;
  const payload = isMap(rekor) ? rekor.Payload : undefined;
  if (typeof set !== 'string' || !isMap(payload)) return { why: `its ${REKOR_BUNDLE_ANNOTATION} annotation has no SignedEntryTimestamp and Payload` };
  const { body, integratedTime, logIndex, logID } = payload;
  if (typeof body !== 'string' || typeof integratedTime !== 'number' || typeof logIndex !== 'number' || typeof logID !== 'string' || !/^[0-9a-f]{64}$/.test(logID)) {
    return { why: `its ${REKOR_BUNDLE_ANNOTATION} annotation's Payload lacks body, integratedTime, logIndex or logID` };
  }
  // The entry's kind and version are the logged body's own (hashedrekord 0.0.1 for cosign sign).
  let logged: unknown;
  try {
    logged = JSON.parse(Buffer.from(body, 'base64').toString('utf8'));
  } catch {
    return { why: 'its Rekor entry body is not JSON' };
  }
  if (!isMap(logged) || typeof logged.kind !== 'string' || typeof logged.apiVersion !== 'string') return { why: 'its Rekor entry body names no kind and apiVersion' };
  return {
    entry: {
      logIndex: String(logIndex),
      logId: { keyId: Buffer.from(logID, 'hex').toString('base64') },
      kindVersion: { kind: logged.kind, version: logged.apiVersion },
      integratedTime: String(integratedTime),
      inclusionPromise: { signedEntryTimestamp: set },
      canonicalizedBody: body,
    },
  };
}

/**
 * A keyless cosign v2 layer and its payload to a serialized Sigstore bundle (its payload is the
 * signed message), or why the layer is not one: no certificate means a key-pair signature.
 */
export function bundleFromCosignV2Layer(layer: SignatureLayer, payload: Buffer): { bundle: Record<string, unknown> } | { why: string; keyPair?: true } {
  const annotations = layer.annotations ?? {};
  const signature = annotations[SIGNATURE_ANNOTATION];
  if (signature === undefined || signature === '') return { why: `it has no ${SIGNATURE_ANNOTATION} annotation` };
  const pem = annotations[CERTIFICATE_ANNOTATION];
  if (pem === undefined || pem === '') return { why: 'it was made with a key pair, not a Fulcio certificate', keyPair: true };
  const der = firstCertificateDer(pem);
  if (der === undefined) return { why: `its ${CERTIFICATE_ANNOTATION} annotation holds no PEM certificate` };
  const { entry, why } = tlogEntry(annotations[REKOR_BUNDLE_ANNOTATION]);
  if (why !== undefined) return { why };
  return {
    bundle: {
      mediaType: BUNDLE_V01,
      verificationMaterial: {
        x509CertificateChain: { certificates: [{ rawBytes: der.toString('base64') }] },
        tlogEntries: entry === undefined ? [] : [entry],
        timestampVerificationData: { rfc3161Timestamps: [] },
      },
      messageSignature: {
        messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(payload).digest('base64') },
        signature,
      },
    },
  };
}
