import { ANNOTATION_SOURCE, checkArtifactType, pushArtifact } from '../../artifact/index.js';
import { parsePlatform } from '../../platform/index.js';
import { parseDependency, parseRequirement } from '../../resolve/index.js';
import { DiginfraError } from '../../errors.js';
import { formatReference, parseOciReference } from '../../reference/index.js';
import { openRegistry, type RegistryFlagOptions } from '../session.js';
import { outputFormat, type CliContext } from '../run.js';
import { checkExtraTags, pushExtraTags } from './extra-tags.js';

interface PushFlags extends RegistryFlagOptions {
  type: string;
  version: string;
  name?: string;
  platform?: string[];
  dependsOn?: string[];
  requires?: string[];
  annotation?: string[];
  annotationSource?: string;
  addFloatingTags?: boolean;
  mountFrom?: string;
  signKey?: string;
  /** -t/--tag (repeatable): more tags for the same digest. */
  tag?: string[];
  sign?: boolean;
  identityToken?: string;
  fulcioUrl?: string;
  rekorUrl?: string;
  signatureFormat?: string;
  output?: string;
}

/** `--signature-format`: v3 (a bundle referrer) or v2 (also the `.sig` tag). */
function signatureFormat(value: string | undefined): 'v2' | 'v3' {
  const v = value ?? 'v3';
  if (v !== 'v2' && v !== 'v3') throw new DiginfraError('USAGE', `--signature-format "${v}" is not one of v3, v2`);
  return v;
}

function parseAnnotations(items: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new DiginfraError('USAGE', `--annotation "${item}" must be KEY=VALUE`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

export async function runPush(ctx: CliContext, refText: string, files: string[], flags: PushFlags): Promise<void> {
  const format = outputFormat(flags.output);
  const ref = parseOciReference(refText);
  const extraTags = checkExtraTags(ref, flags.tag);
  // Read the signing key before pushing anything: a bad key must not leave an unsigned release behind.
  const cosign = flags.signKey !== undefined ? await import('../../signature/cosign.js') : undefined;
  const signKey = flags.signKey !== undefined ? cosign!.loadPrivateKey(flags.signKey) : undefined;
  // Keyless: the identity token is found before anything is pushed, for the same reason.
  if (flags.sign !== true && (flags.identityToken ?? flags.fulcioUrl ?? flags.rekorUrl ?? flags.signatureFormat) !== undefined) {
    throw new DiginfraError('USAGE', '--identity-token, --fulcio-url, --rekor-url and --signature-format go with --sign');
  }
  const keyless = flags.sign === true ? await import('../../signature/keyless-sign.js') : undefined;
  const keylessOpts = keyless && {
    identityToken: await keyless.resolveIdentityToken(flags.identityToken),
    format: signatureFormat(flags.signatureFormat),
    ...(flags.fulcioUrl !== undefined && { fulcioUrl: flags.fulcioUrl }),
    ...(flags.rekorUrl !== undefined && { rekorUrl: flags.rekorUrl }),
  };
  const client = await openRegistry(ctx, flags);
  let signature: string | undefined;
  let signed: { referrer: string; signatureTag?: string } | undefined;
  try {
    const result = await pushArtifact(client, ref, {
      type: checkArtifactType(flags.type),
      version: flags.version,
      files,
      ...(flags.name !== undefined && { name: flags.name }),
      ...(flags.platform && { platforms: flags.platform.map(parsePlatform) }),
      dependencies: (flags.dependsOn ?? []).map(parseDependency),
      requirements: (flags.requires ?? []).map(parseRequirement),
      // falcoctl's --annotation-source: the source repository, as org.opencontainers.image.source.
      annotations: { ...(flags.annotationSource !== undefined && { [ANNOTATION_SOURCE]: flags.annotationSource }), ...parseAnnotations(flags.annotation) },
      addFloatingTags: flags.addFloatingTags === true,
      ...(flags.mountFrom !== undefined && { mountFrom: flags.mountFrom }),
      onProgress: (e) => ctx.logger.debug({ step: e.step }, e.detail),
      onWarning: (m) => ctx.logger.warn(m),
      // Signed before the tags move, so nobody following them ever sees this version unsigned.
      ...((signKey || keylessOpts) && {
        beforeTags: async (pushed) => {
          if (signKey) signature = await cosign!.signDigest(client, pushed, pushed.digest, signKey);
          if (keylessOpts) signed = await keyless!.signKeyless(client, pushed, pushed.digest, keylessOpts);
        },
      }),
    });
    result.tags.push(...(await pushExtraTags(client, result.ref, extraTags, result.tags)));
    if (format === 'json') {
      ctx.out(
        JSON.stringify(
          {
            reference: formatReference(result.ref),
            digest: result.ref.digest,
            mediaType: result.mediaType,
            tags: result.tags,
            ...(signature && { signature }),
            ...(signed && { bundle: signed.referrer, ...(signed.signatureTag !== undefined && { keylessSignature: signed.signatureTag }) }),
          },
          null,
          2,
        ),
      );
    } else {
      ctx.out(`pushed ${result.ref.registry}/${result.ref.repository}:${result.tags[0]}@${result.ref.digest}`);
      if (result.tags.length > 1) ctx.out(`tags: ${result.tags.join(', ')}`);
      if (signature) ctx.out(`signed: ${result.ref.registry}/${result.ref.repository}:${signature}`);
      if (signed) ctx.out(`signed keylessly: bundle ${result.ref.registry}/${result.ref.repository}@${signed.referrer}${signed.signatureTag !== undefined ? `, ${result.ref.registry}/${result.ref.repository}:${signed.signatureTag}` : ''}`);
    }
  } finally {
    await client.close();
  }
}
