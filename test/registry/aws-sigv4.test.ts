/**
 * Signature Version 4 against AWS's own published example (Amazon S3 API reference, "Signature
 * Calculations for the Authorization Header", GET Object with a Range header): the signature is theirs,
 * not computed here.
 */
import { describe, expect, it } from 'vitest';
import { signV4 } from '../../src/registry/auth/aws.js';

describe('signV4', () => {
  it("matches AWS's example: GET /test.txt on examplebucket with Range bytes=0-9", () => {
    const headers = signV4({
      method: 'GET',
      url: new URL('https://examplebucket.s3.amazonaws.com/test.txt'),
      headers: { Range: 'bytes=0-9' },
      region: 'us-east-1',
      service: 's3',
      credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' },
      amzDate: '20130524T000000Z',
    });
    expect(headers.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
    expect(headers['x-amz-date']).toBe('20130524T000000Z');
    expect(headers['x-amz-content-sha256']).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(headers.host).toBeUndefined();
  });

  it('signs the session token of temporary credentials, and a different key gives a different signature', () => {
    const base = { method: 'GET', url: new URL('https://b.s3.eu-west-1.amazonaws.com/diginfra/index.yaml'), headers: {}, region: 'eu-west-1', service: 's3', amzDate: '20261129T120000Z' };
    const a = signV4({ ...base, credentials: { accessKeyId: 'AKIA1', secretAccessKey: 's1', sessionToken: 'tok' } });
    expect(a['x-amz-security-token']).toBe('tok');
    expect(a.authorization).toContain('SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,');
    const b = signV4({ ...base, credentials: { accessKeyId: 'AKIA1', secretAccessKey: 's2', sessionToken: 'tok' } });
    expect(b.authorization).not.toBe(a.authorization);
  });
});
