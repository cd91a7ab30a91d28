// Small helpers shared by tests that build throw-away trees, compare output
// folders byte for byte, or hold sample runs out of a workspace.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Throw-away folders from { relative path: content }; `cleanup()` removes every one made so far. */
export function treeMaker(prefix: string): { tree(files: Record<string, string>): string; cleanup(): void } {
  const made: string[] = [];
  return {
    tree(files) {
      const root = mkdtempSync(join(tmpdir(), prefix));
      made.push(root);
      for (const [rel, text] of Object.entries(files)) {
        mkdirSync(dirname(join(root, rel)), { recursive: true });
        writeFileSync(join(root, rel), text);
      }
      return root;
    },
    cleanup() {
      for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
    },
  };
}

/** Every file below `dir` with its bytes (latin1, so any byte compares), by relative path in sorted order; `skip` drops top-level entries. */
export function readTree(dir: string, skip: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (!rel && skip.includes(name)) continue;
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p, r);
      else out[r] = readFileSync(p, 'latin1');
    }
  };
  walk(dir, '');
  return out;
}

/**
 * Agent folders (workspace-relative) of the sample runs whose (task, pid) pair
 * is unique in the sample, in sorted order: holding such runs out of the tree
 * changes no other run's prompt id.
 */
export function uniqueSampleRuns(root: string): string[] {
  const base = join(root, 'examples/perturbed_queries');
  const found: string[] = [];
  for (const domain of readdirSync(base)) {
    for (const task of readdirSync(join(base, domain))) {
      const pm = join(base, domain, task, 'o4-mini-2025-04-16');
      for (const pq of readdirSync(pm)) {
        const refs = readdirSync(join(pm, pq)).filter((f) => f.startsWith('iterative_refinement_'))
          .flatMap((rm) => readdirSync(join(pm, pq, rm)).map((ag) => join(pm, pq, rm, ag)));
        if (refs.length === 1) found.push(refs[0] as string);
      }
    }
  }
  return found.sort().map((abs) => abs.slice(root.length + 1));
}

/** Moves runs (workspace-relative folders) out of the data tree, into `<root>/held`; the returned function puts them back. */
export function holdOut(root: string, rels: readonly string[]): () => void {
  for (const rel of rels) {
    mkdirSync(dirname(join(root, 'held', rel)), { recursive: true });
    renameSync(join(root, rel), join(root, 'held', rel));
  }
  return () => {
    for (const rel of rels) renameSync(join(root, 'held', rel), join(root, rel));
    rmSync(join(root, 'held'), { recursive: true, force: true });
  };
}

/** pipeline.yaml for the bundled sample with every stage on the fake OpenAI endpoint at `url`. */
export function fakeOpenAiPipeline(url: string, extra = ''): string {
  return `
data:
  root: examples/perturbed_queries
defaults:
  provider: openai
  model: gpt-5-mini
  base_url: ${url}/v1
  concurrency: 8
  max_retries: 0
${extra}
analyses:
  - name: analysis
    agents: [claude-haiku-4-5-20251001, claude-opus-4-5-20251101]
`;
}

/**
 * Edits a run's refinement summary without changing its size or modification
 * time (one digit of the final score), the change a cache trusting size and
 * mtime would miss. Returns the original text.
 */
export function editRunKeepingSizeAndMtime(file: string): string {
  const text = readFileSync(file, 'utf8');
  const { mtime } = statSync(file);
  const edited = text.replace(/"final_score": (\d)/, (_m, d: string) => `"final_score": ${d === '9' ? '8' : '9'}`);
  if (edited === text || edited.length !== text.length) throw new Error(`${file}: no one-digit final_score to edit in place`);
  writeFileSync(file, edited);
  utimesSync(file, mtime, mtime);
  if (statSync(file).mtime.getTime() !== mtime.getTime()) throw new Error(`${file}: could not keep the modification time`);
  return text;
}
