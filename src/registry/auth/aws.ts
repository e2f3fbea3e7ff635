/**
 * AWS credentials and Signature Version 4, for `s3://` indexes (falcoctl's s3 backend). Written by
 * hand rather than with the AWS SDK, which would be most of the install for one GET.
 *
 * Credentials, in the AWS SDKs' order (the first that is configured is used; none: anonymous):
 * 1. `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`);
 * 2. a web identity token (EKS IAM roles for service accounts): `AWS_ROLE_ARN` and
 *    `AWS_WEB_IDENTITY_TOKEN_FILE`, exchanged with STS AssumeRoleWithWebIdentity (an unsigned call);
 * 3. a container credentials endpoint (EKS Pod Identity, ECS): `AWS_CONTAINER_CREDENTIALS_FULL_URI`
 *    (with `AWS_CONTAINER_AUTHORIZATION_TOKEN` or `_FILE`) or `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`;
 * 4. the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default ~/.aws/credentials), profile
 *    `AWS_PROFILE` or `default`;
 * 5. the EC2 instance metadata service, IMDSv2 (`AWS_EC2_METADATA_SERVICE_ENDPOINT`, default
 *    http://169.254.169.254; `AWS_EC2_METADATA_DISABLED=true` skips it).
 * Temporary credentials are renewed before they expire. No message holds a secret or a token.
 */
import { createHash, createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DiginfraError, messageOf } from '../../errors.js';
import { hostOf, sendSmall } from '../transport.js';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** Where they came from, for messages. */
  source: string;
  /** Epoch ms; absent for long-lived keys. */
  expiresAt?: number;
}

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ (and `/` in a path). */
function uriEncode(text: string, keepSlash: boolean): string {
  return Array.from(Buffer.from(text, 'utf8'))
    .map((b) => {
      const c = String.fromCharCode(b);
      if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === '/')) return c;
      return `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
}

/** An S3 object key as a URL path, encoded the way SigV4 signs it (`/` kept). */
export function s3PathEncode(key: string): string {
  return uriEncode(key, true);
}

export interface SignRequest {
  method: string;
  url: URL;
  /** Header names as given; `host` is taken from the URL. */
  headers: Record<string, string>;
  region: string;
  service: string;
  credentials: Pick<AwsCredentials, 'accessKeyId' | 'secretAccessKey' | 'sessionToken'>;
  /** `YYYYMMDDTHHMMSSZ`; default now. */
  amzDate?: string;
  /** Hex SHA-256 of the body; default the empty body's. */
  payloadHash?: string;
  /** The canonical URI as received (a verifier's view); default: the URL's path, encoded as S3 wants it. */
  canonicalPath?: string;
}

/** The headers to send: the given ones plus x-amz-date, x-amz-content-sha256, the session token and Authorization. */
export function signV4(req: SignRequest): Record<string, string> {
  const amzDate = req.amzDate ?? new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const date = amzDate.slice(0, 8);
  const payloadHash = req.payloadHash ?? EMPTY_SHA256;
  const headers: Record<string, string> = { ...req.headers, host: req.url.host, 'x-amz-date': amzDate, 'x-amz-content-sha256': payloadHash };
  if (req.credentials.sessionToken) headers['x-amz-security-token'] = req.credentials.sessionToken;
  const canonical = Object.entries(headers)
    .map(([k, v]) => [k.toLowerCase(), v.trim().replace(/\s+/g, ' ')] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const signedHeaders = canonical.map(([k]) => k).join(';');
  const query = [...req.url.searchParams.entries()]
    .map(([k, v]) => [uriEncode(k, false), uriEncode(v, false)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  // S3 signs the path as sent (each segment encoded once).
  const path = req.canonicalPath ?? uriEncode(decodeURIComponent(req.url.pathname), true);
  const canonicalRequest = [req.method, path, query, ...canonical.map(([k, v]) => `${k}:${v}`), '', signedHeaders, payloadHash].join('\n');
  const scope = `${date}/${req.region}/${req.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${req.credentials.secretAccessKey}`, date), req.region), req.service), 'aws4_request');
  const signature = createHmac('sha256', key).update(stringToSign).digest('hex');
  const { host: _host, ...out } = headers;
  return { ...out, authorization: `AWS4-HMAC-SHA256 Credential=${req.credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}` };
}

export interface AwsOptions {
  env?: NodeJS.ProcessEnv;
  now?: () => number;
}

/** Finds credentials by the chain above; undefined when none is configured (anonymous access). */
export class AwsCredentialSource {
  readonly #env: NodeJS.ProcessEnv;
  readonly #now: () => number;
  #cached: AwsCredentials | undefined;

  constructor(options: AwsOptions = {}) {
    this.#env = options.env ?? process.env;
    this.#now = options.now ?? Date.now;
  }

  async get(what: string): Promise<AwsCredentials | undefined> {
    const c = this.#cached;
    if (c && (c.expiresAt === undefined || this.#now() < c.expiresAt - 5 * 60_000)) return c;
    this.#cached = await this.#resolve(what);
    return this.#cached;
  }

  async #resolve(what: string): Promise<AwsCredentials | undefined> {
    const env = this.#env;
    if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) {
      return { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN && { sessionToken: env.AWS_SESSION_TOKEN }), source: 'AWS_ACCESS_KEY_ID' };
    }
    if (env.AWS_ROLE_ARN && env.AWS_WEB_IDENTITY_TOKEN_FILE) return this.#webIdentity(env.AWS_ROLE_ARN, env.AWS_WEB_IDENTITY_TOKEN_FILE, what);
    if (env.AWS_CONTAINER_CREDENTIALS_FULL_URI || env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) return this.#container(what);
    const file = await this.#sharedFile(what);
    if (file) return file;
    if ((env.AWS_EC2_METADATA_DISABLED ?? '').toLowerCase() === 'true') return undefined;
    return this.#imds(what);
  }

  async #webIdentity(roleArn: string, tokenFile: string, what: string): Promise<AwsCredentials> {
    let token: string;
    try {
      token = (await readFile(tokenFile, 'utf8')).trim();
    } catch (err) {
      throw new DiginfraError('AUTH_REQUIRED', `cannot read the web identity token ${tokenFile} (AWS_WEB_IDENTITY_TOKEN_FILE) for ${what}: ${messageOf(err)}`, { cause: err });
    }
    const region = regionOf(this.#env);
    const endpoint = (this.#env.AWS_ENDPOINT_URL_STS || this.#env.AWS_ENDPOINT_URL || `https://sts.${region}.amazonaws.com`).replace(/\/+$/, '');
    const form = new URLSearchParams({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: roleArn, RoleSessionName: this.#env.AWS_ROLE_SESSION_NAME || 'diginfractl', WebIdentityToken: token });
    const reply = await send({ method: 'POST', url: `${endpoint}/`, headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/xml' }, body: form.toString() }, this.#env, false);
    const tag = (name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(reply.body)?.[1];
    if (reply.status !== 200) {
      const code = tag('Code');
      throw new DiginfraError('AUTH_REQUIRED', `STS ${hostOf(endpoint)} refused AssumeRoleWithWebIdentity for ${roleArn} (HTTP ${reply.status}${code ? `, ${code}` : ''}) for ${what}`, {
        hint: "check the role's trust policy for this cluster's OIDC provider and service account",
      });
    }
    const accessKeyId = tag('AccessKeyId');
    const secretAccessKey = tag('SecretAccessKey');
    const sessionToken = tag('SessionToken');
    const expiration = tag('Expiration');
    if (!accessKeyId || !secretAccessKey || !sessionToken) throw new DiginfraError('AUTH_REQUIRED', `STS ${hostOf(endpoint)} sent no credentials for ${roleArn}`);
    return { accessKeyId, secretAccessKey, sessionToken, source: `web identity (${roleArn})`, ...(expiration && { expiresAt: Date.parse(expiration) }) };
  }

  async #container(what: string): Promise<AwsCredentials> {
    const env = this.#env;
    const url = env.AWS_CONTAINER_CREDENTIALS_FULL_URI || `http://169.254.170.2${env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI}`;
    let auth = env.AWS_CONTAINER_AUTHORIZATION_TOKEN;
    if (!auth && env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE) {
      try {
        auth = (await readFile(env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, 'utf8')).trim();
      } catch (err) {
        throw new DiginfraError('AUTH_REQUIRED', `cannot read ${env.AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE} (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE) for ${what}: ${messageOf(err)}`, { cause: err });
      }
    }
    const reply = await send({ method: 'GET', url, headers: { accept: 'application/json', ...(auth && { authorization: auth }) } }, this.#env, true);
    if (reply.status !== 200) throw new DiginfraError('AUTH_REQUIRED', `the container credentials endpoint ${hostOf(url)} answered HTTP ${reply.status} for ${what}`, { hint: 'check the pod identity association of this service account' });
    return parseJsonCredentials(reply.body, `container credentials (${hostOf(url)})`, what);
  }

  async #sharedFile(what: string): Promise<AwsCredentials | undefined> {
    const path = this.#env.AWS_SHARED_CREDENTIALS_FILE || join(this.#env.HOME || homedir(), '.aws', 'credentials');
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      return undefined;
    }
    const profile = this.#env.AWS_PROFILE || 'default';
    let section: string | undefined;
    const values: Record<string, string> = {};
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      const head = /^\[\s*(?:profile\s+)?([^\]]+?)\s*\]$/.exec(line);
      if (head) {
        section = head[1];
        continue;
      }
      const kv = /^([A-Za-z0-9_]+)\s*=\s*(.*)$/.exec(line);
      if (kv && section === profile) values[kv[1]!.toLowerCase()] = kv[2]!.trim();
    }
    if (!values.aws_access_key_id || !values.aws_secret_access_key) {
      if (this.#env.AWS_PROFILE) throw new DiginfraError('AUTH_REQUIRED', `${path} has no keys for profile ${profile} (AWS_PROFILE), needed for ${what}`);
      return undefined;
    }
    return { accessKeyId: values.aws_access_key_id, secretAccessKey: values.aws_secret_access_key, ...(values.aws_session_token && { sessionToken: values.aws_session_token }), source: `${path} [${profile}]` };
  }

  /** IMDSv2: a session token (PUT), the role name, its credentials. No answer at all: not on EC2. */
  async #imds(what: string): Promise<AwsCredentials | undefined> {
    const base = (this.#env.AWS_EC2_METADATA_SERVICE_ENDPOINT || 'http://169.254.169.254').replace(/\/+$/, '');
    let token: { status: number; body: string };
    try {
      token = await send({ method: 'PUT', url: `${base}/latest/api/token`, headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '21600' } }, this.#env, true, 1_000);
    } catch {
      return undefined;
    }
    if (token.status !== 200) return undefined;
    const headers = { 'x-aws-ec2-metadata-token': token.body.trim() };
    const roles = await send({ method: 'GET', url: `${base}/latest/meta-data/iam/security-credentials/`, headers }, this.#env, true);
    const role = roles.status === 200 ? roles.body.split('\n')[0]?.trim() : undefined;
    if (!role) return undefined; // an instance without a role
    const creds = await send({ method: 'GET', url: `${base}/latest/meta-data/iam/security-credentials/${encodeURIComponent(role)}`, headers }, this.#env, true);
    if (creds.status !== 200) throw new DiginfraError('AUTH_REQUIRED', `the instance metadata service gave no credentials for role ${role} (HTTP ${creds.status}) for ${what}`);
    return parseJsonCredentials(creds.body, `the instance role ${role}`, what);
  }
}

export function regionOf(env: NodeJS.ProcessEnv): string {
  return env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1';
}

function parseJsonCredentials(body: string, source: string, what: string): AwsCredentials {
  let o: { AccessKeyId?: unknown; SecretAccessKey?: unknown; Token?: unknown; Expiration?: unknown } | undefined;
  try {
    o = JSON.parse(body) as typeof o;
  } catch {
    o = undefined;
  }
  if (typeof o?.AccessKeyId !== 'string' || typeof o.SecretAccessKey !== 'string') throw new DiginfraError('AUTH_REQUIRED', `${source} sent no credentials for ${what}`);
  return {
    accessKeyId: o.AccessKeyId,
    secretAccessKey: o.SecretAccessKey,
    ...(typeof o.Token === 'string' && { sessionToken: o.Token }),
    source,
    ...(typeof o.Expiration === 'string' && { expiresAt: Date.parse(o.Expiration) }),
  };
}


/** One request; link-local endpoints never through a proxy. */
function send(
  req: { method: 'GET' | 'POST' | 'PUT'; url: string; headers: Record<string, string>; body?: string },
  env: NodeJS.ProcessEnv,
  direct: boolean,
  connectTimeoutMs = 3_000,
): Promise<{ status: number; body: string }> {
  return sendSmall(`aws:${hostOf(req.url)}`, req, {
    hostSettings: () => ({ insecureSkipTlsVerify: false }),
    retry: { attempts: direct ? 1 : 2, maxRetryAfterMs: 5_000 },
    readTimeoutMs: direct ? 5_000 : 30_000,
    connectTimeoutMs,
    env: direct ? {} : env,
  });
}

let shared: AwsCredentialSource | undefined;
export function sharedAwsSource(options: AwsOptions = {}): AwsCredentialSource {
  shared ??= new AwsCredentialSource(options);
  return shared;
}
