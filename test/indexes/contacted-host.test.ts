/** TLS settings (registry.caFiles, insecureSkipTlsVerify) of a gs:// or s3:// index are those of the endpoint read, not of the bucket name. */
import { describe, expect, it } from 'vitest';
import { contactedHost } from '../../src/indexes/fetch.js';

describe('contactedHost', () => {
  it('names the endpoint a cloud index is read from', () => {
    expect(contactedHost('s3://bucket/index.yaml', { AWS_ENDPOINT_URL_S3: 'https://minio.internal:9000' })).toBe('minio.internal:9000');
    expect(contactedHost('s3://bucket/index.yaml', { AWS_REGION: 'eu-west-3' })).toBe('bucket.s3.eu-west-3.amazonaws.com');
    expect(contactedHost('s3://my.bucket/index.yaml', {})).toBe('s3.us-east-1.amazonaws.com');
    expect(contactedHost('gs://bucket/index.yaml', {})).toBe('storage.googleapis.com');
    expect(contactedHost('gs://bucket/index.yaml', { DIGINFRACTL_GCS_ENDPOINT: 'https://storage-psc.p.googleapis.com' })).toBe('storage-psc.p.googleapis.com');
    expect(contactedHost('gs://bucket/index.yaml', { STORAGE_EMULATOR_HOST: 'localhost:4443' })).toBe('localhost:4443');
    expect(contactedHost('https://host.example:8443/index.yaml', {})).toBe('host.example:8443');
  });
});
