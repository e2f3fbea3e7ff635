/**
 * Child process of the rules file check (validate.ts): parses each file as YAML and checks it is a
 * list. It runs in its own process so that the parse (tens of MB of transient objects for a large
 * rules file) happens in memory that is given back when it exits: the long-running agent stays small.
 * It takes one job over IPC, answers, and exits; it exits too if the agent goes away. Self-contained
 * (no relative imports, erasable TypeScript only), so the same file runs from src/ under the tests.
 */
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';

interface Job {
  files: { path: string; label: string }[];
}

type Verdict = { ok: true } | { ok: false; reason: 'invalid_yaml' | 'not_a_list'; message: string };

function check(text: string, label: string): Verdict {
  if (text.trim() === '') return { ok: false, reason: 'invalid_yaml', message: `${label} is empty` };
  const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    return { ok: false, reason: 'invalid_yaml', message: `${label} is not valid YAML: ${pos ? `line ${pos.line}, column ${pos.col}: ` : ''}${e.message.split('\n')[0]}` };
  }
  const value: unknown = doc.toJS({ maxAliasCount: 10_000 });
  if (!Array.isArray(value)) {
    return { ok: false, reason: 'not_a_list', message: `${label} is YAML but not a list of rules, macros and lists (it is ${value === null ? 'empty' : typeof value})` };
  }
  return { ok: true };
}

async function run(job: Job): Promise<Verdict> {
  for (const f of job.files) {
    let verdict: Verdict;
    try {
      verdict = check(await readFile(f.path, 'utf8'), f.label);
    } catch (err) {
      verdict = { ok: false, reason: 'invalid_yaml', message: `${f.label} is not valid YAML: ${(err as Error).message}` };
    }
    if (!verdict.ok) return verdict;
  }
  return { ok: true };
}

if (process.send) {
  process.once('message', (job: Job) => {
    run(job).then(
      (v) => process.send!(v, () => process.exit(0)),
      (err: unknown) => process.send!({ ok: false, reason: 'invalid_yaml', message: String(err) }, () => process.exit(0)),
    );
  });
  process.once('disconnect', () => process.exit(1));
}

export { check };
