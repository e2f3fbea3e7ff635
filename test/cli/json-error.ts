/** The `{"error": {...}}` line `-o json` prints on stderr for an error (docs/output.md), parsed. */
export interface JsonError {
  code: string;
  message: string;
  hint?: string;
}

/** The one JSON error object in `stderr` (log lines around it are skipped); throws when there is none. */
export function jsonErrorIn(stderr: string): JsonError {
  const lines = stderr.split('\n').filter((l) => l.startsWith('{"error":'));
  if (lines.length !== 1) throw new Error(`expected one JSON error line on stderr, got ${lines.length}:\n${stderr}`);
  return (JSON.parse(lines[0]!) as { error: JsonError }).error;
}
