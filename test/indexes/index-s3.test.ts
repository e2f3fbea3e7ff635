/**
 * s3://BUCKET/KEY indexes (falcoctl's s3 backend), through the built CLI, against stand-ins on
 * loopback: an S3 endpoint (AWS_ENDPOINT_URL_S3) that checks each request's SigV4 signature with the
 * secret it knows (the signer itself is checked against AWS's published example in
 * test/registry/aws-sigv4.test.ts), STS for web identity (IRSA), and the EC2 metadata service (IMDSv2).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signV4 } from '../../src/registry/auth/aws.js';
import { cliEnv, runCli } from '../helpers/cli.js';
import { deadPort } from '../helpers/net.js';
import { GOOD_INDEX, serve, type Served } from './server.js';

/** Access key -> secret the S3 stand-in accepts (long-lived keys and the temporary ones STS and IMDS hand out). */
const SECRETS: Record<string, string> = { AKIASTATIC: 'static-secret', ASIATEMPWEB: 'web-secret', ASIATEMPPOD: 'pod-secret', ASIATEMPIMDS: 'imds-secret', AKIAPROFILE: 'profile-secret' };
const ETAG = '"9b2cf535f27731c974343645a3985328"';
/** Object keys the stand-in serves (in any bucket). */
const KEYS = new Set(['diginfra/index.yaml', "diginfra/index (v1)!'*.yaml"]);
let aws: Served;
/** What the stand-in saw: the access key each S3 request was signed with (`anonymous` for none). */
const signedWith: string[] = [];

function handler(req: IncomingMessage, res: ServerResponse): void {
  let body = '';
  req.on('data', (d: Buffer) => (body += d.toString()));
  req.on('end', () => {
    const url = new URL(req.url ?? '/', 'http://x');
    // STS AssumeRoleWithWebIdentity: unsigned, the token is the proof.
    if (req.method === 'POST' && url.pathname === '/') {
      const form = new URLSearchParams(body);
      if (form.get('Action') !== 'AssumeRoleWithWebIdentity' || form.get('WebIdentityToken') !== 'eyJ.projected.token' || form.get('RoleArn') !== 'arn:aws:iam::123456789012:role/diginfractl') {
        res.writeHead(403, { 'content-type': 'text/xml' }).end('<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/xml' }).end(
        `<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIATEMPWEB</AccessKeyId><SecretAccessKey>web-secret</SecretAccessKey><SessionToken>web-session</SessionToken><Expiration>${new Date(Date.now() + 3600_000).toISOString()}</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`,
      );
      return;
    }
    // EKS Pod Identity's agent: the pod's token in Authorization.
    if (req.method === 'GET' && url.pathname === '/v1/credentials') {
      if (req.headers.authorization !== 'pod-identity-token') {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ AccessKeyId: 'ASIATEMPPOD', SecretAccessKey: 'pod-secret', Token: 'pod-session', Expiration: new Date(Date.now() + 3600_000).toISOString() }));
      return;
    }
    // IMDSv2: a session token first, then the role and its credentials, each with that token.
    if (req.method === 'PUT' && url.pathname === '/latest/api/token') {
      res.writeHead(200).end('imds-session-token');
      return;
    }
    if (url.pathname.startsWith('/latest/meta-data/iam/security-credentials/')) {
      if (req.headers['x-aws-ec2-metadata-token'] !== 'imds-session-token') {
        res.writeHead(401).end();
        return;
      }
      const role = url.pathname.slice('/latest/meta-data/iam/security-credentials/'.length);
      if (role === '') res.writeHead(200).end('node-role\n');
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ Code: 'Success', AccessKeyId: 'ASIATEMPIMDS', SecretAccessKey: 'imds-secret', Token: 'imds-session', Expiration: new Date(Date.now() + 3600_000).toISOString() }));
      return;
    }
    // S3, path style: /BUCKET/KEY.
    const m = /^\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (req.method !== 'GET' || !m || !KEYS.has(decodeURIComponent(m[2]!))) {
      res.writeHead(404, { 'content-type': 'application/xml' }).end('<Error><Code>NoSuchKey</Code></Error>');
      return;
    }
    const auth = req.headers.authorization;
    if (auth === undefined) {
      signedWith.push('anonymous');
      if (m[1] !== 'public-bucket') {
        res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>AccessDenied</Code></Error>');
        return;
      }
    } else {
      // Recompute the signature with the secret of the key it names, over what was received.
      const key = /Credential=([^/]+)\//.exec(auth)?.[1] ?? '';
      const region = /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(auth)?.[1] ?? '';
      const token = req.headers['x-amz-security-token'] as string | undefined;
      // S3 signs the path exactly as it arrived: a client that signs one encoding and sends another fails.
      const expected = SECRETS[key] && signV4({
        method: 'GET',
        url: new URL(`http://${req.headers.host}${req.url}`),
        canonicalPath: (req.url ?? '/').split('?')[0]!,
        headers: {},
        region,
        service: 's3',
        credentials: { accessKeyId: key, secretAccessKey: SECRETS[key]!, ...(token !== undefined && { sessionToken: token }) },
        amzDate: req.headers['x-amz-date'] as string,
      }).authorization;
      if (region !== 'eu-west-3') {
        // Signed for another region: S3 names the bucket's.
        res.writeHead(400, { 'content-type': 'application/xml', 'x-amz-bucket-region': 'eu-west-3' }).end('<Error><Code>AuthorizationHeaderMalformed</Code></Error>');
        return;
      }
      if (auth !== expected) {
        res.writeHead(403, { 'content-type': 'application/xml' }).end('<Error><Code>SignatureDoesNotMatch</Code></Error>');
        return;
      }
      signedWith.push(key);
    }
    if (req.headers['if-none-match'] === ETAG) {
      res.writeHead(304, { etag: ETAG }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'binary/octet-stream', etag: ETAG }).end(GOOD_INDEX);
  });
}

beforeAll(async () => {
  aws = await serve(handler);
});
afterAll(async () => {
  await aws?.close();
});

/** A sandbox with no AWS settings of this machine's, the S3 stand-in, and IMDS off unless given. */
async function env(extra: NodeJS.ProcessEnv = {}) {
  const e = await cliEnv();
  for (const k of Object.keys(e)) if (k.startsWith('AWS_')) delete e[k];
  return Object.assign(e, { AWS_ENDPOINT_URL_S3: aws.base, AWS_REGION: 'eu-west-3', AWS_EC2_METADATA_SERVICE_ENDPOINT: `http://127.0.0.1:${await deadPort()}` }, extra);
}

const add = (e: NodeJS.ProcessEnv, name: string, bucket = 'private-bucket') => runCli(['index', 'add', name, `s3://${bucket}/diginfra/index.yaml`], { env: e });

describe('s3:// indexes', () => {
  it('signed with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; an update costs one 304; the secret is never printed', async () => {
    const e = await env({ AWS_ACCESS_KEY_ID: 'AKIASTATIC', AWS_SECRET_ACCESS_KEY: 'static-secret' });
    const r = await add(e, 'corp');
    expect(r.code, r.stderr).toBe(0);
    expect(signedWith.at(-1)).toBe('AKIASTATIC');
    const search = await runCli(['artifact', 'search', 'audit', '--index', 'corp'], { env: e });
    expect(search.stdout).toContain('k8saudit-rules');
    const before = aws.requests.length;
    const update = await runCli(['index', 'update', 'corp'], { env: e });
    expect(update.code, update.stderr).toBe(0);
    const seen = aws.requests.slice(before);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['if-none-match']).toBe(ETAG);
    expect(r.stderr + update.stderr).not.toContain('static-secret');
  });

  it('EKS IAM roles for service accounts (the projected token exchanged with STS) and EKS Pod Identity: the object signed with the session', async () => {
    const tokenFile = join(await mkdtemp(join(tmpdir(), 'irsa-')), 'token');
    await writeFile(tokenFile, 'eyJ.projected.token\n');
    const e = await env({ AWS_ROLE_ARN: 'arn:aws:iam::123456789012:role/diginfractl', AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile, AWS_ENDPOINT_URL_STS: aws.base });
    const r = await add(e, 'irsa');
    expect(r.code, r.stderr).toBe(0);
    expect(signedWith.at(-1)).toBe('ASIATEMPWEB');
    expect(aws.requests.at(-1)!.headers['x-amz-security-token']).toBe('web-session');

    // EKS Pod Identity: the agent's endpoint, with the pod's token read from its file.
    const podToken = join(await mkdtemp(join(tmpdir(), 'pod-identity-')), 'token');
    await writeFile(podToken, 'pod-identity-token');
    const pod = await add(await env({ AWS_CONTAINER_CREDENTIALS_FULL_URI: `${aws.base}/v1/credentials`, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: podToken }), 'pod');
    expect(pod.code, pod.stderr).toBe(0);
    expect(signedWith.at(-1)).toBe('ASIATEMPPOD');
    expect(aws.requests.at(-1)!.headers['x-amz-security-token']).toBe('pod-session');
  });

  it('a profile of the shared credentials file; then the EC2 instance role (IMDSv2) when nothing else is set', async () => {
    const home = await mkdtemp(join(tmpdir(), 'aws-home-'));
    const file = join(home, 'credentials');
    await writeFile(file, '[default]\naws_access_key_id = AKIANOTUSED\naws_secret_access_key = x\n\n[profile diginfra]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = profile-secret\n');
    const r = await add(await env({ AWS_SHARED_CREDENTIALS_FILE: file, AWS_PROFILE: 'diginfra' }), 'profile');
    expect(r.code, r.stderr).toBe(0);
    expect(signedWith.at(-1)).toBe('AKIAPROFILE');

    const onEc2 = await add(await env({ AWS_EC2_METADATA_SERVICE_ENDPOINT: aws.base }), 'ec2');
    expect(onEc2.code, onEc2.stderr).toBe(0);
    expect(signedWith.at(-1)).toBe('ASIATEMPIMDS');
  });

  it('with no AWS credentials: a public bucket read anonymously, a private one refused with what to do', async () => {
    const e = await env();
    const pub = await add(e, 'public', 'public-bucket');
    expect(pub.code, pub.stderr).toBe(0);
    expect(signedWith.at(-1)).toBe('anonymous');
    const priv = await add(e, 'private');
    expect(priv.code).toBe(1);
    expect(priv.stderr).toContain('answered 403 Forbidden');
    expect(priv.stderr).toContain('no AWS credentials were found, so the bucket was read anonymously');
    // Keys that may not read it: the hint names the permission and the region.
    const wrong = await add(await env({ AWS_ACCESS_KEY_ID: 'AKIASTATIC', AWS_SECRET_ACCESS_KEY: 'not-the-secret' }), 'wrong');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('allow s3:GetObject on arn:aws:s3:::private-bucket/diginfra/index.yaml (and check AWS_REGION is the bucket\'s, eu-west-3 now)');
    expect(wrong.stderr).not.toContain('not-the-secret');
  });

  it("a key with characters URL encoders disagree on ( (, ), !, ', *, space ): sent as signed", async () => {
    const e = await env({ AWS_ACCESS_KEY_ID: 'AKIASTATIC', AWS_SECRET_ACCESS_KEY: 'static-secret' });
    const r = await runCli(['index', 'add', 'odd', "s3://private-bucket/diginfra/index (v1)!'*.yaml"], { env: e });
    expect(r.code, r.stderr).toBe(0);
    expect(aws.requests.at(-1)!.path).toBe('/private-bucket/diginfra/index%20%28v1%29%21%27%2A.yaml');
  });

  it('a bucket in another region than AWS_REGION: S3 names it, and the request is signed again for it', async () => {
    const e = await env({ AWS_ACCESS_KEY_ID: 'AKIASTATIC', AWS_SECRET_ACCESS_KEY: 'static-secret', AWS_REGION: 'us-east-1' });
    const before = aws.requests.length;
    const r = await add(e, 'elsewhere');
    expect(r.code, r.stderr).toBe(0);
    const tries = aws.requests.slice(before).map((q) => /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(String(q.headers.authorization))?.[1]);
    expect(tries).toEqual(['us-east-1', 'eu-west-3']);
  });

  it('checks the URL and refuses basic credentials for it', async () => {
    const e = await env();
    const noKey = await runCli(['index', 'add', 'x', 's3://bucket-only'], { env: e });
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain('index URL "s3://bucket-only": must be s3://BUCKET/KEY');
    // A "bucket" that would put another host in the signed request's URL is not one.
    for (const url of ['s3://x@3627734734?/index.yaml', 's3://attacker.example#/index.yaml', 's3://a:b@evil/index.yaml']) {
      const bad = await runCli(['index', 'add', 'x', url], { env: { ...e, AWS_ACCESS_KEY_ID: 'AKIASTATIC', AWS_SECRET_ACCESS_KEY: 'static-secret' } });
      expect(bad.code, url).toBe(2);
      expect(bad.stderr, url).toContain('BUCKET a valid bucket name');
    }
    const creds = await runCli(['index', 'add', 'x', 's3://private-bucket/diginfra/index.yaml', '--username', 'u', '--password-stdin'], { env: e, input: 'p\n' });
    expect(creds.code).toBe(2);
    expect(creds.stderr).toContain('s3:// uses the AWS credential chain');
  });
});
