/**
 * Admission: may a new version of a followed ref replace the live one? The checks run in this order,
 * all but the last before any layer is downloaded:
 *
 *   type (follow has a directory for it, and it is allowed) -> signature (the policies that apply)
 *   -> requirements (the engine version) -> dependencies (what is installed on this node)
 *   -> validation, once the files are staged (rules files: a YAML list, then --validate-cmd)
 *
 * Each check gives a verdict. A refusal carries its reason (the `reason` label of
 * diginfractl_follow_rejected_total: type_not_allowed, signature, requirements, dependencies,
 * invalid_yaml, not_a_list, validate_cmd) and what to remember, so that the refused digest is looked
 * at again only when what refused it may have changed (worthAnotherLook).
 *
 * The checks are pure over what they are given. Reading the engine version, what is installed and
 * the signatures comes in as AdmissionIo; only validation runs something (the YAML check's child
 * process, --validate-cmd), on the staged files.
 */
import { join } from 'node:path';
import { PLUGIN, RULESFILE, type Dependency, type VersionedName } from '../artifact/index.js';
import { isDiginfraError } from '../errors.js';
import type { RejectReason } from '../metrics/index.js';
import { checkRequirements, engineSatisfies, ENGINE_VERSION } from '../resolve/index.js';
import { describeUnmet, unmetDependencies, type InstalledView } from './dependencies.js';
import type { Rejection } from './state.js';
import type { Staged } from './swap.js';
import type { FollowSettings } from './types.js';

// Loaded for a rules file only: the YAML check and --validate-cmd spawn processes.
const lazyValidate = () => import('./validate.js');

/** A new version of a followed ref, as its config layer describes it. */
export interface Candidate {
  /** The followed ref, for messages. */
  ref: string;
  /** `name version`, for messages. */
  label: string;
  type: string;
  requirements: readonly VersionedName[];
  dependencies: readonly Dependency[];
}

/** The settings admission reads. */
export type AdmissionPolicy = Pick<FollowSettings, 'dirs' | 'allowedTypes' | 'installLockfiles' | 'validateCmd' | 'verification' | 'verifyKeys' | 'verifyKeyFingerprints'> &
  Partial<Pick<FollowSettings, 'engineVersion' | 'engineVersionsUrl'>>;

/** What a refusal keeps, so that worthAnotherLook can tell whether what refused it has changed. */
export type Remembered = Pick<Rejection, 'requirements' | 'engineVersion' | 'dependencies' | 'installed' | 'signatures'>;

export interface Refusal {
  admitted: false;
  reason: RejectReason;
  message: string;
  remember?: Remembered;
}

/** Something to log whatever the verdict: a requirement that cannot be checked, dependencies nothing can tell about. */
export interface Warning {
  message: string;
  fields?: Record<string, unknown>;
}

export type Verdict = ({ admitted: true } | Refusal) & { warnings?: Warning[] };

/** The new digest's signatures (read when signatures are verified). */
export interface SignatureIo {
  /** What its signatures are now (`.sig` manifest, bundle referrers; `none` when unsigned), to notice a new one. */
  state(): Promise<string>;
  /**
   * The verification of the digest under the policies that apply to it, `keyPaths` covering what no
   * index policy does (keys are read at every new digest: a key replaced on disk, rotated or revoked,
   * counts from the next check on); undefined when no policy applies. It throws SIGNATURE_MISSING,
   * SIGNATURE_INVALID or SIGNATURE_IDENTITY to refuse.
   */
  verifier(keyPaths: readonly string[]): Promise<(() => Promise<unknown>) | undefined>;
}

/** Whether new versions are verified: under the policies that apply (`on`), or with verification keys alone (a library caller's settings). */
export function verifiesSignatures(policy: Pick<AdmissionPolicy, 'verification' | 'verifyKeys'>): boolean {
  return policy.verification === 'on' || (policy.verification === undefined && policy.verifyKeys !== undefined);
}

const SIGNATURE_REFUSALS = ['SIGNATURE_MISSING', 'SIGNATURE_INVALID', 'SIGNATURE_IDENTITY'] as const;

/** The reads admission needs, each made only by the check that needs it. */
export interface AdmissionIo {
  /** The running engine's version (undefined: unknown); read for a version with requirements. */
  engineVersion(): Promise<string | undefined>;
  /** False the first time the run says the engine version is unknown, true after: said once per run. */
  engineUnknownSaid?(): boolean;
  /** What is installed on this node; read for a version with dependencies. */
  installed(): Promise<InstalledView>;
  signatures: SignatureIo;
}

const ADMITTED: Verdict = { admitted: true };

/** What artifact install's requirement warning suggests, and what follow's suggests instead. */
const INSTALL_HINT = '(give --engine-version or set install.engineVersion)';
const FOLLOW_HINT = '(give --engine-version or --engine-versions-url, or set follow.engineVersion)';

/** Follow places rules files, plugins and the types it has a directory for, of those allowed (all when none are listed). */
export function admitType(c: Pick<Candidate, 'label' | 'type'>, policy: Pick<AdmissionPolicy, 'dirs' | 'allowedTypes'>): Verdict {
  // Own keys only: a type named like an Object property (`constructor`) has no directory.
  const placeable = c.type === RULESFILE || c.type === PLUGIN || Object.hasOwn(policy.dirs, c.type);
  if (placeable && (policy.allowedTypes.length === 0 || policy.allowedTypes.includes(c.type))) return ADMITTED;
  const message = !placeable
    ? `${c.label} is of type "${c.type}", and no directory is set for that type (--dir ${c.type}=DIR, or follow.dirs.${c.type})`
    : `${c.label} is of type "${c.type}", not in the allowed types (${policy.allowedTypes.join(', ')})`;
  return { admitted: false, reason: 'type_not_allowed', message };
}

/** A signature that satisfies every policy that applies (none applies: admitted). Other failures (a registry error) throw. */
export async function admitSignature(keyPaths: readonly string[], signatures: SignatureIo): Promise<Verdict> {
  const verify = await signatures.verifier(keyPaths);
  if (verify === undefined) return ADMITTED;
  // Noted before the check: a signature added meanwhile is then a change, and earns another look.
  const state = await signatures.state();
  try {
    await verify();
    return ADMITTED;
  } catch (err) {
    if (!isDiginfraError(err) || !(SIGNATURE_REFUSALS as readonly string[]).includes(err.code)) throw err;
    return { admitted: false, reason: 'signature', message: err.message, remember: { signatures: state } };
  }
}

/** The engine version the version requires; an unknown engine version or requirement name only warns. */
export function admitRequirements(
  c: Pick<Candidate, 'label' | 'requirements'>,
  engineVersion: string | undefined,
  engine: { from?: string; unknownSaid?: boolean } = {},
): Verdict {
  if (c.requirements.length === 0) return ADMITTED;
  try {
    const env = engineVersion !== undefined ? { engineVersion, ...(engine.from !== undefined && { engineVersionFrom: engine.from }) } : { engineUnknownSaid: engine.unknownSaid === true };
    const { warnings } = checkRequirements([{ label: c.label, requirements: [...c.requirements] }], env);
    return { admitted: true, warnings: warnings.map((w) => ({ message: w.replace(INSTALL_HINT, FOLLOW_HINT) })) };
  } catch (err) {
    if (!isDiginfraError(err, 'REQUIREMENT_UNMET')) throw err;
    const requirements = c.requirements.map((r) => ({ name: r.name, version: r.version }));
    return { admitted: false, reason: 'requirements', message: err.message, remember: { requirements, ...(engineVersion !== undefined && { engineVersion }) } };
  }
}

/**
 * Its dependencies are installed (dependencies.ts). Without a lock file nothing can be said of what
 * was installed by hand: the version goes ahead with a warning.
 */
export function admitDependencies(c: Pick<Candidate, 'ref' | 'label' | 'dependencies'>, view: InstalledView, lockfiles: readonly string[]): Verdict {
  const unmet = unmetDependencies(c.dependencies, view.installed);
  if (unmet.length === 0) return ADMITTED;
  if (!view.known) {
    const message = `${c.ref}: cannot check that ${c.label}'s dependencies are installed (${describeUnmet(unmet, view.installed)}): no lock file at ${lockfiles.join(' or ')}; installing it anyway`;
    return { admitted: true, warnings: [{ message, fields: { dependencies: unmet.map((d) => d.name) } }] };
  }
  const message = `${c.label} needs ${describeUnmet(unmet, view.installed)}; install it (diginfractl artifact install ${unmet.map((d) => `${d.name}:${d.version}`).join(' ')}) and restart the engine, and this version is installed at the next check`;
  return { admitted: false, reason: 'dependencies', message, remember: { dependencies: [...c.dependencies], installed: view.signature } };
}

/**
 * Every check that needs only the version's config, in order; the first refusal ends it. The
 * warnings of the checks that ran come with the verdict.
 */
export async function admitVersion(c: Candidate, policy: AdmissionPolicy, io: AdmissionIo): Promise<Verdict> {
  const checks: (() => Verdict | Promise<Verdict>)[] = [
    () => admitType(c, policy),
    () => (verifiesSignatures(policy) ? admitSignature(policy.verifyKeys ?? [], io.signatures) : ADMITTED),
    async () => {
      if (c.requirements.length === 0) return ADMITTED;
      const version = await io.engineVersion();
      const from = policy.engineVersionsUrl !== undefined ? `read from ${policy.engineVersionsUrl}` : policy.engineVersion !== undefined ? 'from --engine-version (follow.engineVersion)' : undefined;
      return admitRequirements(c, version, { ...(from !== undefined && { from }), unknownSaid: version === undefined && c.requirements.some((r) => r.name === ENGINE_VERSION) && io.engineUnknownSaid?.() === true });
    },
    async () => (c.dependencies.length > 0 ? admitDependencies(c, await io.installed(), policy.installLockfiles) : ADMITTED),
  ];
  const warnings: Warning[] = [];
  for (const check of checks) {
    const verdict = await check();
    warnings.push(...(verdict.warnings ?? []));
    if (!verdict.admitted) return { ...verdict, warnings };
  }
  return { admitted: true, warnings };
}

/**
 * The staged files (rules files only: the engine loads them; another type's format is its own): each
 * YAML file is a list, then `--validate-cmd` accepts each. `signal` abandons it (shutdown): the
 * running command is killed and the signal's reason thrown before the next one starts.
 */
export async function admitStaged(c: Pick<Candidate, 'label' | 'type'>, staged: Pick<Staged, 'staging' | 'files'>, policy: Pick<AdmissionPolicy, 'validateCmd'> & { rulesCheckExecArgv?: readonly string[] }, signal?: AbortSignal): Promise<Verdict> {
  if (c.type !== RULESFILE) return ADMITTED;
  const { checkRulesFiles, isRulesYaml, runValidateCmd, ValidationError } = await lazyValidate();
  const yamls = staged.files.filter((f) => isRulesYaml(f.rel)).map((f) => ({ path: join(staged.staging, f.rel), label: `${c.label}: ${f.rel}` }));
  try {
    await checkRulesFiles(yamls, { execArgv: policy.rulesCheckExecArgv ?? [] });
    if (policy.validateCmd === undefined) return ADMITTED;
    for (const f of yamls) {
      signal?.throwIfAborted();
      await runValidateCmd(policy.validateCmd, f.path, f.label, signal ? { signal } : {});
    }
    return ADMITTED;
  } catch (err) {
    if (err instanceof ValidationError) return { admitted: false, reason: err.reason, message: err.message };
    throw err;
  }
}

/** The settings that decide whether a refused digest deserves another look, as one comparable string. */
export function rejectionKey(policy: Pick<AdmissionPolicy, 'allowedTypes' | 'validateCmd' | 'verification' | 'verifyKeys' | 'verifyKeyFingerprints' | 'dirs'>): string {
  const keys = policy.verifyKeyFingerprints ?? policy.verifyKeys;
  // The types that have a directory count too: giving one to a refused type earns its version another look.
  const placed = Object.keys(policy.dirs ?? {}).sort();
  return JSON.stringify({
    types: [...policy.allowedTypes].sort(),
    cmd: policy.validateCmd ?? null,
    ...(keys && { keys: [...keys].sort() }),
    ...(placed.length > 0 && { dirs: placed }),
    ...(policy.verification !== undefined && { verification: policy.verification }),
  });
}

function requirementsMet(reqs: readonly VersionedName[], engine: string | undefined): boolean {
  if (engine === undefined) return true;
  return reqs.every((r) => r.name !== ENGINE_VERSION || engineSatisfies(engine, r.version));
}

/**
 * A refused digest is looked at again (downloaded and admitted afresh) only when what refused it may
 * have changed: a new signature, another engine version that meets the requirements, other installed
 * artifacts, other settings. A digest rolled back from never is.
 */
export async function worthAnotherLook(r: Rejection, policy: AdmissionPolicy, io: AdmissionIo): Promise<boolean> {
  if (r.reason === 'rollback') return false;
  if (r.reason === 'signature' && r.signatures !== undefined && verifiesSignatures(policy)) {
    // The publisher signs after pushing (cosign's usual order): a new signature (a `.sig` layer, a
    // bundle referrer) or another policy is a change. A HEAD and a referrers lookup.
    if ((await io.signatures.state()) !== r.signatures) return true;
  }
  if (r.reason === 'requirements' && r.requirements) {
    const now = await io.engineVersion();
    return now !== r.engineVersion && requirementsMet(r.requirements, now);
  }
  if (r.reason === 'dependencies' && r.dependencies) {
    const view = await io.installed();
    if (view.signature === r.installed) return false;
    return unmetDependencies(r.dependencies, view.installed).length === 0 || !view.known;
  }
  return r.key !== rejectionKey(policy);
}
