/**
 * Worker thread of the rules file check (validate.ts): parses each file as YAML and checks it is a
 * list. It runs in a worker so that the parse (tens of MB of transient objects for a large rules file)
 * happens in a heap that is thrown away afterwards: the long-running agent stays small. Self-contained
 * (no relative imports, erasable TypeScript only), so the same file runs from src/ under the tests.
 */
import { readFile } from 'node:fs/promises';
import { parentPort, workerData } from 'node:worker_threads';
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

if (parentPort) {
  const port = parentPort;
  run(workerData as Job).then(
    (v) => port.postMessage(v),
    (err: unknown) => port.postMessage({ ok: false, reason: 'invalid_yaml', message: String(err) }),
  );
}

export { check };
