import semver from 'semver';
import { inspectArtifact } from '../../artifact/inspect.js';
import { loadConfig } from '../../config/load.js';
import { selectTag } from '../../install/plan.js';
import { formatReference, type OciReference } from '../../reference/reference.js';
import { createRegistryClient } from '../../registry/factory.js';
import { messageOf } from '../../errors.js';
import { formatPlatform } from '../../registry/media-types.js';
import { isDigestTag, signatureSummary } from '../../signature/cosign.js';
import { registryFlags, type RegistryFlagOptions } from '../session.js';
import { locateRef } from './locate.js';
import { outputFormat, type CliContext } from '../run.js';

interface InfoFlags extends RegistryFlagOptions {
  output?: string;
}

/** Semver tags newest first, then the other tags in name order. */
export function sortTags(tags: string[]): string[] {
  const versions = tags.filter((t) => semver.valid(t)).sort(semver.rcompare);
  const others = tags.filter((t) => !semver.valid(t)).sort();
  return [...versions, ...others];
}

export async function runArtifactInfo(ctx: CliContext, refText: string, flags: InfoFlags): Promise<void> {
  const format = outputFormat(flags.output);
  const loaded = await loadConfig(ctx.configPath === undefined ? {} : { path: ctx.configPath });
  const { config } = loaded;
  for (const w of loaded.warnings) ctx.logger.warn(w);
  const { repo, tag, digest, entry, index } = await locateRef(ctx, loaded, refText);
  const client = createRegistryClient(config.registry, registryFlags(flags));
  try {
    // Signature, attestation and referrers-fallback tags are not versions: shown under SIGNATURES/REFERRERS.
    const tags = sortTags((await client.listTags(repo)).filter((t) => !isDigestTag(t)));
    const selected = digest ?? (await selectTag(client, repo, tag));
    const ref: OciReference = digest ? { ...repo, digest } : { ...repo, tag: selected };
    const summary = await inspectArtifact(client, ref);
    // Signatures, SBOMs and other manifests attached to this one (OCI 1.1 referrers, or the tag fallback).
    const referrers = await client.referrers(repo, summary.ref.digest);
    // Best effort: a registry that will not say (a 403 on the signature tag, say) does not fail `info`.
    const signatures = await signatureSummary(client, repo, summary.ref.digest).catch((err: unknown) => {
      ctx.logger.warn(`cannot read the signatures of ${summary.ref.digest}: ${messageOf(err)}`);
      return undefined;
    });
    const info = {
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
    };
    if (format === 'json') {
      ctx.out(JSON.stringify(info, null, 2));
      return;
    }
    const rows: [string, string][] = [];
    if (entry) {
      rows.push(['NAME', `${entry.name} (index ${index})`], ['DESCRIPTION', entry.description]);
      if (entry.license) rows.push(['LICENSE', entry.license]);
      if (entry.home) rows.push(['HOME', entry.home]);
    }
    rows.push(
      ['REFERENCE', info.reference],
      ['TYPE', info.type],
      ['VERSION', info.version],
      ['DIGEST', info.digest],
      ['PLATFORMS', info.platforms.join(', ') || 'any (platform-independent)'],
      ['DEPENDENCIES', info.dependencies.map((d) => [d, ...(d.alternatives ?? [])].map((x) => `${x.name}:${x.version}`).join(' | ')).join(', ') || 'none'],
      ['REQUIREMENTS', info.requirements.map((r) => `${r.name}:${r.version}`).join(', ') || 'none'],
      ['TAGS', tags.join(', ')],
      ['REFERRERS', info.referrers.map((r) => `${r.artifactType ?? 'unknown type'} ${r.digest}`).join(', ') || 'none'],
      ['SIGNATURES', signatures ? describeSignatures(signatures) : 'unknown (could not be read)'],
    );
    const width = Math.max(...rows.map(([k]) => k.length));
    ctx.out(rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n'));
  } finally {
    await client.close();
  }
}

/** `2 cosign signatures (1 with a key pair, 1 keyless) at tag sha256-...sig`, or `none`. */
function describeSignatures(s: { tag: string; keyPair: number; keyless: number }): string {
  const n = s.keyPair + s.keyless;
  if (n === 0) return 'none';
  const kinds = [s.keyPair ? `${s.keyPair} with a key pair` : '', s.keyless ? `${s.keyless} keyless (not verifiable by diginfractl)` : ''].filter(Boolean).join(', ');
  return `${n} cosign signature${n === 1 ? '' : 's'} (${kinds}) at tag ${s.tag}${s.keyPair ? '; check with repo verify --verify-key' : ''}`;
}
