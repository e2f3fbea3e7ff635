/**
 * One error type for the whole tool. Callers switch on `code`, never on message text; the CLI maps
 * codes to exit status and a hint that says what to do next.
 */
export type ErrorCode =
  | 'USAGE' // bad flags or arguments
  | 'REF_INVALID' // an artifact reference that does not parse
  | 'CONFIG_INVALID' // a config file or value that does not validate
  | 'AUTH_REQUIRED' // registry or index answered 401 / 403
  | 'NOT_FOUND' // tag, manifest, blob or repository missing
  | 'DIGEST_MISMATCH' // content does not hash to what was promised
  | 'SIZE_MISMATCH' // content is not the size that was promised
  | 'MEDIA_TYPE_UNSUPPORTED' // a manifest or layer of a kind we do not handle
  | 'PLATFORM_NOT_FOUND' // no image-index entry for the asked platform
  | 'UNSAFE_ARCHIVE' // traversal, links out of the target, devices, oversize
  | 'NETWORK' // connection refused/reset, DNS, TLS, timeouts
  | 'REGISTRY_ERROR' // any other non-success answer from a registry
  | 'RATE_LIMITED' // 429 after all retries
  | 'INDEX_INVALID' // an index file that does not validate
  | 'INDEX_NOT_FOUND' // a configured index name that does not exist
  | 'INDEX_EXISTS' // `index add` of a name already configured
  | 'INDEX_FETCH_FAILED' // an index URL answered with an unexpected HTTP status
  | 'ARTIFACT_NOT_FOUND' // a name no index knows
  | 'ARTIFACT_INVALID' // a manifest/config that is not a valid artifact
  | 'TYPE_NOT_ALLOWED' // an artifact type outside --allowed-types
  | 'DEPENDENCY_CONFLICT' // no version satisfies every requirer
  | 'REQUIREMENT_UNMET' // e.g. engine_version too old
  | 'LOCKFILE_MISMATCH' // --frozen and the lock lacks a ref
  | 'LOCKED' // another process holds the install lock
  | 'VALIDATION_FAILED' // a staged rules file rejected before swap
  | 'SIGNATURE_MISSING' // a policy or verification keys apply and the artifact has no signature
  | 'SIGNATURE_INVALID' // no signature of the artifact verifies (key, certificate chain, log entry, payload)
  | 'SIGNATURE_IDENTITY' // a signature verifies, but its certificate names another signer or issuer than the policy
  | 'INTERRUPTED' // SIGINT or SIGTERM ended the command before it finished
  | 'REGISTRY_NOT_ALLOWED' // a registry or repository outside registry.allowed
  | 'IO'; // local filesystem failure

export class DiginfraError extends Error {
  override readonly name = 'DiginfraError';
  readonly code: ErrorCode;
  /** A sentence telling the user what to do next, printed after the message. */
  readonly hint: string | undefined;
  /** RATE_LIMITED: how long the registry asked to wait (its Retry-After), when it said. */
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; hint?: string; retryAfterMs?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
    this.retryAfterMs = options.retryAfterMs;
  }
}

export function isDiginfraError(err: unknown, code?: ErrorCode): err is DiginfraError {
  return err instanceof DiginfraError && (code === undefined || err.code === code);
}

/** Exit status: 2 for usage errors (as commander does), 1 for every other failure. */
export function exitCodeFor(err: unknown): number {
  if (isDiginfraError(err) && (err.code === 'USAGE' || err.code === 'REF_INVALID')) return 2;
  return 1;
}

/** Message text of any thrown value, for logs and one-line CLI errors. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
