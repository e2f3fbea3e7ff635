/**
 * A local Sigstore for the tests: a Fulcio-like CA (with a CT log that embeds SCTs in the
 * certificates it issues) and a Rekor-like log, each with its own keys, from @sigstore/mock, plus a
 * trusted_root.json naming them. Signing here is done without diginfractl's code, in the two
 * formats cosign writes to registries:
 *
 *  - v2: a layer of the `sha256-<hex>.sig` manifest, the simple-signing payload as its blob, the
 *    signature, certificate, chain and Rekor bundle (SET) as annotations;
 *  - v3: a Sigstore bundle (v0.3, DSSE in-toto statement, predicate https://sigstore.dev/cosign/sign/v1)
 *    pushed as a referrer of the artifact.
 *
 * Options make bad signatures on purpose: another identity or issuer, a certificate that expired
 * before the log saw the signature, a log that is not trusted, a payload naming another digest.
 */
import { createHash, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { initializeCA, type CA } from '@sigstore/mock/dist/fulcio/ca.js';
import { initializeCTLog } from '@sigstore/mock/dist/fulcio/ctlog.js';
import { fulcioHandler } from '@sigstore/mock/dist/fulcio/handler.js';
import { rekorHandler } from '@sigstore/mock/dist/rekor/handler.js';
import { initializeTLog } from '@sigstore/mock/dist/rekor/tlog.js';
import type { OciReference } from '../../src/reference/reference.js';
import { sha256Digest, type RegistryClient } from '../../src/registry/index.js';
import { attachBundle } from '../../src/signature/keyless-sign.js';

export const GITHUB_ISSUER = 'https://token.actions.githubusercontent.com';
const BUNDLE_V03 = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/** Far enough back that every key of the stand-in is valid whenever a test signs. */
const VALID_FROM = '2000-01-01T00:00:00Z';

export interface SignOptions {
  /** The certificate's SAN (a URI, as Fulcio issues for workflows). */
  identity: string;
  issuer?: string;
  /** Deprecated-form GitHub workflow claims (1.3.6.1.4.1.57264.1.2-6), as Fulcio still issues them. */
  workflow?: { trigger?: string; sha?: string; name?: string; repository?: string; ref?: string };
  /** Sign a payload naming this digest instead of the artifact's. */
  payloadDigest?: string;
  /** Log the signature this many ms after the certificate was issued (the CA issues 10-minute certificates). */
  logDelayMs?: number;
  /** Log it in a log the trusted root does not name. */
  untrustedLog?: boolean;
}

/** What the Rekor stand-in answers for one entry. */
interface LogEntry {
  body: string;
  integratedTime: number;
  logIndex: number;
  logID: string;
  verification: { signedEntryTimestamp: string; inclusionProof: { treeSize: number; rootHash: string; checkpoint: string } };
}

const WORKFLOW_OIDS = { trigger: '1.3.6.1.4.1.57264.1.2', sha: '1.3.6.1.4.1.57264.1.3', name: '1.3.6.1.4.1.57264.1.4', repository: '1.3.6.1.4.1.57264.1.5', ref: '1.3.6.1.4.1.57264.1.6' };

function pem(der: Buffer, label: string): string {
  return `-----BEGIN ${label}-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

function logUrl(n: number): string {
  return `https://rekor-${n}.standin.test`;
}

const blob = (bytes: Buffer) => ({ digest: sha256Digest(bytes), size: bytes.length, open: () => Readable.from([bytes]) });

export class SigstoreStandin {
  readonly trustedRootFile: string;
  readonly #ca: CA;
  readonly #tlogKeys: { publicKey: KeyObject; privateKey: KeyObject };
  readonly #untrustedKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });

  private constructor(ca: CA, tlogKeys: { publicKey: KeyObject; privateKey: KeyObject }, trustedRootFile: string) {
    this.#ca = ca;
    this.#tlogKeys = tlogKeys;
    this.trustedRootFile = trustedRootFile;
  }

  /** A CA, a CT log and a transparency log, and their trusted_root.json written in `dir`. */
  static async start(dir: string): Promise<SigstoreStandin> {
    const ctKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ctLog = await initializeCTLog(ctKeys);
    const ca = await initializeCA(generateKeyPairSync('ec', { namedCurve: 'P-256' }), ctLog);
    const tlogKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const tlogSpki = tlogKeys.publicKey.export({ type: 'spki', format: 'der' });
    const root = {
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: [
        {
          baseUrl: logUrl(1),
          hashAlgorithm: 'SHA2_256',
          publicKey: { rawBytes: tlogSpki.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start: VALID_FROM } },
          logId: { keyId: createHash('sha256').update(tlogSpki).digest('base64') },
        },
      ],
      certificateAuthorities: [
        {
          subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
          uri: 'https://fulcio.standin.test',
          certChain: { certificates: [{ rawBytes: Buffer.from(ca.rootCertificate.buffer, ca.rootCertificate.byteOffset, ca.rootCertificate.byteLength).toString('base64') }] },
          validFor: { start: VALID_FROM },
        },
      ],
      ctlogs: [
        {
          baseUrl: 'https://ctfe.standin.test',
          hashAlgorithm: 'SHA2_256',
          publicKey: { rawBytes: ctLog.publicKey.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: { start: VALID_FROM } },
          logId: { keyId: Buffer.from(ctLog.logID.buffer, ctLog.logID.byteOffset, ctLog.logID.byteLength).toString('base64') },
        },
      ],
      timestampAuthorities: [],
    };
    const file = join(dir, 'trusted_root.json');
    await writeFile(file, JSON.stringify(root, null, 2));
    return new SigstoreStandin(ca, tlogKeys, file);
  }

  /** A Fulcio-like certificate for a fresh key: the key pair and the certificate (DER). */
  async #certificate(opts: SignOptions): Promise<{ privateKey: KeyObject; der: Buffer }> {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const issuer = opts.issuer ?? GITHUB_ISSUER;
    const extensions = [
      { oid: '1.3.6.1.4.1.57264.1.1', value: issuer, legacy: true },
      { oid: '1.3.6.1.4.1.57264.1.8', value: issuer },
      ...Object.entries(opts.workflow ?? {}).map(([k, v]) => ({ oid: WORKFLOW_OIDS[k as keyof typeof WORKFLOW_OIDS], value: v, legacy: true })),
    ];
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    const der = await this.#ca.issueCertificate({ publicKey: spki, subjectAltName: opts.identity, extensions });
    return { privateKey, der: Buffer.from(der.buffer, der.byteOffset, der.byteLength) };
  }

  /** Signs `message` with a fresh certificate's key and logs the entry `body` builds from the signature and certificate. */
  async #signAndLog(message: Buffer, opts: SignOptions, body: (signature: string, certificate: string) => object): Promise<{ signature: string; der: Buffer; entry: LogEntry }> {
    const { privateKey, der } = await this.#certificate(opts);
    const signature = sign('sha256', message, privateKey).toString('base64');
    const entry = (await this.#log(body(signature, Buffer.from(pem(der, 'CERTIFICATE')).toString('base64')), opts)) as LogEntry;
    return { signature, der, entry };
  }

  /** Logs `body` in the trusted log (or another one), at now + `delayMs`. */
  async #log(body: object, opts: SignOptions): Promise<unknown> {
    const keys = opts.untrustedLog ? this.#untrustedKeys : this.#tlogKeys;
    const log = await initializeTLog(logUrl(opts.untrustedLog ? 2 : 1), keys, new Date(Date.now() + (opts.logDelayMs ?? 1000)));
    const entries = await log.log(body);
    return Object.values(entries)[0];
  }

  /**
   * The stand-in's Fulcio and Rekor as HTTP services on loopback (@sigstore/mock's handlers), for a
   * signer that talks to them (`repo push --sign --fulcio-url --rekor-url`). The certificate's SAN is
   * the token's `sub`, its issuer extension the token's `iss`.
   */
  async serve(): Promise<{ fulcioUrl: string; rekorUrl: string; requests: string[]; close(): Promise<void> }> {
    const rekor = rekorHandler(await initializeTLog(logUrl(1), this.#tlogKeys));
    // Rekor stores a proposed entry in its canonical form; the mock logs it as sent.
    const routes = new Map([fulcioHandler(this.#ca), { path: rekor.path, fn: (body: string) => rekor.fn(JSON.stringify(canonicalEntry(JSON.parse(body)))) }].map((h) => [h.path, h.fn]));
    const requests: string[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', () => res.destroy());
      req.on('end', () => {
        const path = new URL(req.url ?? '/', 'http://x').pathname;
        requests.push(`${req.method} ${path}`);
        const fn = routes.get(path);
        if (fn === undefined || req.method !== 'POST') {
          res.writeHead(404).end();
          return;
        }
        fn(Buffer.concat(chunks).toString('utf8')).then(
          (r) => res.writeHead(r.statusCode, { 'content-type': r.contentType ?? 'text/plain' }).end(r.response),
          (err: unknown) => res.writeHead(500).end(String(err)),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return { fulcioUrl: url, rekorUrl: url, requests, close: () => new Promise((resolve) => server.close(() => resolve())) };
  }

  /** Signs `digest` of `repo` in cosign v2's format: a layer added to its `sha256-<hex>.sig` manifest. */
  async signV2(client: RegistryClient, repo: OciReference, digest: string, opts: SignOptions): Promise<void> {
    const payload = Buffer.from(
      JSON.stringify({
        critical: { identity: { 'docker-reference': `${repo.registry}/${repo.repository}` }, image: { 'docker-manifest-digest': opts.payloadDigest ?? digest }, type: 'cosign container image signature' },
        optional: null,
      }),
    );
    const { signature, der, entry } = await this.#signAndLog(payload, opts, (sig, cert) => ({
      apiVersion: '0.0.1',
      kind: 'hashedrekord',
      spec: { data: { hash: { algorithm: 'sha256', value: createHash('sha256').update(payload).digest('hex') } }, signature: { content: sig, publicKey: { content: cert } } },
    }));
    const annotations = {
      'dev.cosignproject.cosign/signature': signature,
      'dev.sigstore.cosign/certificate': pem(der, 'CERTIFICATE'),
      'dev.sigstore.cosign/chain': pem(Buffer.from(this.#ca.rootCertificate.buffer, this.#ca.rootCertificate.byteOffset, this.#ca.rootCertificate.byteLength), 'CERTIFICATE'),
      'dev.sigstore.cosign/bundle': JSON.stringify({
        SignedEntryTimestamp: entry.verification.signedEntryTimestamp,
        Payload: { body: entry.body, integratedTime: entry.integratedTime, logIndex: entry.logIndex, logID: entry.logID },
      }),
    };
    await addV2Layer(client, repo, digest, payload, annotations);
  }

  /** Signs `digest` of `repo` as cosign v3 does: a DSSE Sigstore bundle attached as a referrer. */
  async signV3(client: RegistryClient, repo: OciReference, digest: string, opts: SignOptions): Promise<void> {
    const [algorithm, hex] = (opts.payloadDigest ?? digest).split(':');
    const statement = Buffer.from(
      JSON.stringify({
        _type: 'https://in-toto.io/Statement/v1',
        subject: [{ name: `${repo.registry}/${repo.repository}`, digest: { [algorithm!]: hex } }],
        predicateType: 'https://sigstore.dev/cosign/sign/v1',
        predicate: {},
      }),
    );
    const payloadType = 'application/vnd.in-toto+json';
    // DSSE signs its pre-authentication encoding, not the payload alone.
    const pae = Buffer.concat([Buffer.from(`DSSEv1 ${payloadType.length} ${payloadType} ${statement.length} `), statement]);
    const { signature: sig, der, entry } = await this.#signAndLog(pae, opts, (signature, cert) => ({
      apiVersion: '0.0.1',
      kind: 'dsse',
      spec: { payloadHash: { algorithm: 'sha256', value: createHash('sha256').update(statement).digest('hex') }, signatures: [{ signature, verifier: cert }] },
    }));
    const proof = entry.verification.inclusionProof;
    const bundle = {
      mediaType: BUNDLE_V03,
      verificationMaterial: {
        certificate: { rawBytes: der.toString('base64') },
        tlogEntries: [
          {
            logIndex: String(entry.logIndex),
            logId: { keyId: Buffer.from(entry.logID, 'hex').toString('base64') },
            kindVersion: { kind: 'dsse', version: '0.0.1' },
            integratedTime: String(entry.integratedTime),
            inclusionPromise: { signedEntryTimestamp: entry.verification.signedEntryTimestamp },
            inclusionProof: {
              logIndex: '0',
              rootHash: Buffer.from(proof.rootHash, 'hex').toString('base64'),
              treeSize: String(proof.treeSize),
              hashes: [],
              checkpoint: { envelope: proof.checkpoint },
            },
            canonicalizedBody: entry.body,
          },
        ],
        timestampVerificationData: { rfc3161Timestamps: [] },
      },
      dsseEnvelope: { payload: statement.toString('base64'), payloadType, signatures: [{ sig, keyid: '' }] },
    };
    await attachBundle(client, repo, digest, Buffer.from(JSON.stringify(bundle)));
  }
}

/** Adds a layer to the `sha256-<hex>.sig` manifest of `digest`, as cosign does (config lists the layers). */
export async function addV2Layer(client: RegistryClient, repo: OciReference, digest: string, payload: Buffer, annotations: Record<string, string>): Promise<void> {
  const at: OciReference = { registry: repo.registry, repository: repo.repository, tag: `${digest.replace(':', '-')}.sig` };
  let layers: object[] = [];
  try {
    layers = ((await client.fetchManifest(at, [OCI_MANIFEST])).json as { layers: object[] }).layers;
  } catch {
    // no signature yet
  }
  await client.pushBlob(at, blob(payload));
  layers = [...layers, { mediaType: SIMPLE_SIGNING, digest: sha256Digest(payload), size: payload.length, annotations }];
  await writeV2Manifest(client, at, layers as { digest: string }[]);
}

/** Writes the `.sig` manifest with exactly these layers (tests rewrite it to tamper with a layer). */
export async function writeV2Manifest(client: RegistryClient, at: OciReference, layers: readonly { digest: string; [field: string]: unknown }[]): Promise<void> {
  const config = Buffer.from(JSON.stringify({ architecture: '', config: {}, created: '0001-01-01T00:00:00Z', history: [{ created: '0001-01-01T00:00:00Z' }], os: '', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } }));
  await client.pushBlob(at, blob(config));
  const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Digest(config), size: config.length }, layers };
  await client.pushManifest(at, Buffer.from(JSON.stringify(manifest)), OCI_MANIFEST);
}

/** Attaches a bundle to `digest` as cosign v3 does (the layout test/signature/keyless-sign.test.ts checks against cosign's spec). */
export { attachBundle };

/** The public key of a PEM private key, in PEM (for keyed policies). */
export function publicPem(privateKey: KeyObject): string {
  return createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
}

/** An OIDC identity token as a CI job gets one (unsigned: the Fulcio stand-in only reads its claims). */
export function identityToken(claims: { sub: string; iss?: string; [claim: string]: unknown }): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ iss: GITHUB_ISSUER, aud: 'sigstore', iat: now, exp: now + 600, ...claims })}.${Buffer.from('unsigned').toString('base64url')}`;
}

/**
 * What Rekor logs for a proposed `dsse` entry (its types/dsse/v0.0.1 canonicalization): the hashes of
 * the envelope and payload, and each signature with its verifier, not the envelope itself. Other
 * kinds (hashedrekord) are logged as proposed.
 */
function canonicalEntry(proposed: { kind?: string; apiVersion?: string; spec?: { proposedContent?: { envelope: string; verifiers: string[] } } }): object {
  const content = proposed.spec?.proposedContent;
  if (proposed.kind !== 'dsse' || content === undefined) return proposed;
  const envelope = JSON.parse(content.envelope) as { payload: string; signatures: { sig: string }[] };
  const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
  return {
    apiVersion: proposed.apiVersion,
    kind: 'dsse',
    spec: {
      envelopeHash: { algorithm: 'sha256', value: sha256(content.envelope) },
      payloadHash: { algorithm: 'sha256', value: sha256(Buffer.from(envelope.payload, 'base64')) },
      signatures: envelope.signatures.map((sig, i) => ({ signature: sig.sig, verifier: content.verifiers[i] ?? content.verifiers[0] })),
    },
  };
}
