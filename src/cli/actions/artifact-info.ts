import semver from 'semver';
import { inspectArtifact, selectTag, checkArtifactType, type ArtifactSummary } from '../../artifact/index.js';
import { loadConfig } from '../../config/index.js';
import { formatReference, type OciReference } from '../../reference/index.js';
import { formatPlatform, restrictReads, type RegistryClient } from '../../registry/index.js';
import { DiginfraError, isDiginfraError, messageOf } from '../../errors.js';
import { isDigestTag, signatureSummary } from '../../signature/index.js';
import { openRegistry, type RegistryFlagOptions } from '../session.js';
import { refLocator, type LocatedRef } from './locate.js';
import { outputFormat, type CliContext } from '../run.js';
import { keyFilesOf, policyIndexes, trustFor } from '../verification.js';

interface InfoFlags extends RegistryFlagOptions {
  output?: string;
  type?: string;
  trustedRoot?: string;
}

/** The signature policies that apply to an artifact, and whether its digest verifies under them. */
interface PolicyInfo {
  /** Each policy in words, with where it comes from. */
  policies: { from: string; policy: string }[];
  /** Absent when no policy applies. */
  verified?: boolean;
  /** What verified (identity, issuer, where the signature is), or why not. */
  detail?: string;
  code?: string;
}

type PolicyCheck = (summary: ArtifactSummary) => Promise<PolicyInfo>;

/** The policy check of `artifact info`: the policies install would apply, verified on the digest shown; a refusal is shown, not thrown. */
function policyCheck(ctx: CliContext, loaded: Awaited<ReturnType<typeof loadConfig>>, client: RegistryClient, flags: InfoFlags): PolicyCheck {
  const indexes = policyIndexes(ctx, loaded);
  let trust: ReturnType<typeof trustFor> | undefined;
  return async (summary) => {
    const { describePolicy, describeClaims, fetchKeyPem, policiesFor, verifyUnder } = await import('../../signature/index.js');
    const subject = { registry: summary.ref.registry, repository: summary.ref.repository, name: summary.config.name, type: summary.type };
    const applied = policiesFor(subject, await indexes(), keyFilesOf(loaded.config, {}));
    const policies = applied.map((p) => ({ from: p.from, policy: describePolicy(p.policy) }));
    if (applied.length === 0) return { policies };
    try {
      const verified = await verifyUnder(client, summary.ref, applied, { trust: await (trust ??= trustFor(ctx, loaded.config, flags)), fetchKey: fetchKeyPem });
      return { policies, verified: true, detail: verified.map((v) => `${v.signer ? `signed by ${describeClaims(v.signer)}, ` : ''}${v.where}`).join('; ') };
    } catch (err) {
      return { policies, verified: false, detail: messageOf(err), ...(isDiginfraError(err) && { code: err.code }) };
    }
  };
}

/** Semver tags newest first, then the other tags in name order. */
export function sortTags(tags: string[]): string[] {
  const versions = tags.filter((t) => semver.valid(t)).sort(semver.rcompare);
  const others = tags.filter((t) => !semver.valid(t)).sort();
  return [...versions, ...others];
}

/**
 * `artifact info REF...`: one block (or JSON object) per reference; with several, every one is looked
 * up before anything is printed, so a bad reference prints nothing. `--type` restricts short names to
 * index entries of that type and refuses a reference whose artifact is of another type.
 */
export async function runArtifactInfo(ctx: CliContext, refTexts: string[], flags: InfoFlags): Promise<void> {
  const format = outputFormat(flags.output);
  if (flags.type !== undefined) checkArtifactType(flags.type);
  const loaded = await loadConfig(ctx.configPath === undefined ? {} : { path: ctx.configPath });
  for (const w of loaded.warnings) ctx.logger.warn(w);
  const locate = refLocator(ctx, loaded);
  const client = restrictReads(await openRegistry(ctx, flags, loaded.config), loaded.config.registry);
  const checkPolicy = policyCheck(ctx, loaded, client, flags);
  const infos: Info[] = [];
  try {
    for (const refText of refTexts) infos.push(await infoFor(ctx, client, await locate(refText, flags.type), refText, flags.type, checkPolicy));
  } finally {
    await client.close();
  }
  if (format === 'json') {
    // An array in the order given, whatever the number of references: one shape for scripts.
    ctx.out(JSON.stringify(infos, null, 2));
    return;
  }
  ctx.out(infos.map(describe).join('\n\n'));
}

type Info = Awaited<ReturnType<typeof infoFor>>;

async function infoFor(ctx: CliContext, client: RegistryClient, located: LocatedRef, refText: string, type: string | undefined, checkPolicy: PolicyCheck) {
  const { repo, tag, digest, entry, index } = located;
  // Signature, attestation and referrers-fallback tags are not versions: shown under SIGNATURES/REFERRERS.
  const tags = sortTags((await client.listTags(repo)).filter((t) => !isDigestTag(t)));
  const selected = digest ?? (await selectTag(client, repo, tag));
  const ref: OciReference = digest ? { ...repo, digest } : { ...repo, tag: selected };
  const summary = await inspectArtifact(client, ref);
  if (type !== undefined && summary.type !== type) {
    throw new DiginfraError('TYPE_NOT_ALLOWED', `${refText} is a ${summary.type}, not a ${type}`, { hint: `drop --type ${type}, or name an artifact of that type` });
  }
  // Signatures, SBOMs and other manifests attached to this one (OCI 1.1 referrers, or the tag fallback).
  const referrers = await client.referrers(repo, summary.ref.digest);
  // Best effort: a registry that will not say (a 403 on the signature tag, say) does not fail `info`.
  const signatures = await signatureSummary(client, repo, summary.ref.digest).catch((err: unknown) => {
    ctx.logger.warn(`cannot read the signatures of ${summary.ref.digest}: ${messageOf(err)}`);
    return undefined;
  });
  const signaturePolicy = await checkPolicy(summary);
  return {
    ...(entry && { index, entry }),
    reference: formatReference(summary.ref),
    tags,
    ...(tag !== undefined && { tag }),
    ...(!digest && { resolvedTag: selected }),
    digest: summary.ref.digest,
    mediaType: summary.mediaType,
    type: summary.type,
    name: summary.config.name,
    version: summary.config.version,
    platforms: summary.platforms.map(formatPlatform),
    dependencies: summary.config.dependencies ?? [],
    requirements: summary.config.requirements ?? [],
    annotations: summary.annotations,
    referrers: referrers.map((r) => ({ digest: r.digest, ...(r.artifactType !== undefined && { artifactType: r.artifactType }) })),
    signatures,
    signaturePolicy,
  };
}

function describe(info: Info): string {
  const rows: [string, string][] = [];
  if (info.entry) {
    rows.push(['NAME', `${info.entry.name} (index ${info.index})`], ['DESCRIPTION', info.entry.description]);
    if (info.entry.license) rows.push(['LICENSE', info.entry.license]);
    if (info.entry.home) rows.push(['HOME', info.entry.home]);
  }
  rows.push(
    ['REFERENCE', info.reference],
    ['TYPE', info.type],
    ['VERSION', info.version],
    ['DIGEST', info.digest],
    ['PLATFORMS', info.platforms.join(', ') || 'any (platform-independent)'],
    ['DEPENDENCIES', info.dependencies.map((d) => [d, ...(d.alternatives ?? [])].map((x) => `${x.name}:${x.version}`).join(' | ')).join(', ') || 'none'],
    ['REQUIREMENTS', info.requirements.map((r) => `${r.name}:${r.version}`).join(', ') || 'none'],
    ['TAGS', info.tags.join(', ')],
    ['REFERRERS', info.referrers.map((r) => `${r.artifactType ?? 'unknown type'} ${r.digest}`).join(', ') || 'none'],
    ['SIGNATURES', info.signatures ? describeSignatures(info.signatures) : 'unknown (could not be read)'],
    ['POLICY', info.signaturePolicy.policies.map((p) => `${p.policy} (${p.from})`).join('; ') || 'none (no index entry describes it, and no key is configured)'],
  );
  if (info.signaturePolicy.verified !== undefined) {
    rows.push(['VERIFIED', `${info.signaturePolicy.verified ? 'yes' : 'no'}: ${(info.signaturePolicy.detail ?? '').replace(/\s*\n\s*/g, ' ')}`]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

/** `2 cosign signatures (1 with a key pair, 1 keyless) at tag sha256-...sig`, or `none`. */
function describeSignatures(s: { tag: string; keyPair: number; keyless: number }): string {
  const n = s.keyPair + s.keyless;
  if (n === 0) return 'none';
  const kinds = [s.keyPair ? `${s.keyPair} with a key pair` : '', s.keyless ? `${s.keyless} keyless` : ''].filter(Boolean).join(', ');
  return `${n} cosign signature${n === 1 ? '' : 's'} (${kinds}) at tag ${s.tag}${s.keyPair ? '; check with repo verify --verify-key' : ''}`;
}
