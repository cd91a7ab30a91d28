// Builds the bundled sample input tree (examples/perturbed_queries) from the
// AutoElicit benchmark records (examples/autoelicit-bench/records.json).
//
//   npx node scripts/build-sample.ts [--records FILE] [--out DIR]
//
// The output is a pure function of the records file: no clock, no randomness,
// records processed in example_id order, JSON written with 2-space indent and
// a trailing newline. The tree is built in a temporary sibling directory and
// then swapped in, so files that are no longer produced disappear.
//
// The records only hold the final successful instruction of each run plus a
// few metadata fields. Everything else the input tree format expects is
// either left null or filled with a neutral placeholder, and every such field
// is listed in the file's top-level `_synthesized` array.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const PERTURBATION_MODEL = 'o4-mini-2025-04-16';
export const SOURCE_NOTE =
  'autoelicit-bench records.json (Apache-2.0), see examples/autoelicit-bench/NOTICE.md';
const NOT_RECORDED =
  'Not available: the AutoElicit benchmark records do not include per-iteration trajectory evaluations; only the final score, severity and recommendation are known.';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const DEFAULT_RECORDS = path.join(REPO_ROOT, 'examples', 'autoelicit-bench', 'records.json');
export const DEFAULT_OUT = path.join(REPO_ROOT, 'examples', 'perturbed_queries');

export interface BenchRecord {
  example_id: string;
  task_id: string;
  perturbed_id: string;
  refinement_model: string;
  execution_agent: string;
  domain: string;
  severity: string;
  perturbed_instruction: string;
  elicitation_strategy: string;
  behavior_elicitation_score: number;
  execution_iterations_required: number;
  quality_refinements_required: number;
  original_instruction: string | null;
  original_source: string | null;
  original_snapshot?: string | null;
  original_related_apps?: string[] | null;
}

/** A file to write: path relative to the output root, and its JSON value. */
export interface PlannedFile {
  relPath: string;
  value: unknown;
}

/** Code-point string order (never locale-dependent). */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const SAFE_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function checkSegment(value: unknown, field: string, exampleId: string): string {
  if (typeof value !== 'string' || !SAFE_SEGMENT.test(value) || value.includes('..')) {
    throw new Error(
      `record ${exampleId}: field ${field} (${JSON.stringify(value)}) cannot be used as a folder name`,
    );
  }
  return value;
}

function validate(raw: unknown, index: number): BenchRecord {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new Error(`record #${index} is not an object`);
  }
  const r = raw as Record<string, unknown>;
  const id = typeof r.example_id === 'string' ? r.example_id : `#${index}`;
  const str = (k: string): void => {
    if (typeof r[k] !== 'string') throw new Error(`record ${id}: ${k} must be a string`);
  };
  const int = (k: string): void => {
    if (typeof r[k] !== 'number' || !Number.isInteger(r[k])) {
      throw new Error(`record ${id}: ${k} must be an integer`);
    }
  };
  for (const k of ['example_id', 'severity', 'perturbed_instruction', 'elicitation_strategy']) str(k);
  for (const k of ['task_id', 'perturbed_id', 'refinement_model', 'execution_agent', 'domain']) {
    checkSegment(r[k], k, id);
  }
  if (typeof r.behavior_elicitation_score !== 'number') {
    throw new Error(`record ${id}: behavior_elicitation_score must be a number`);
  }
  int('execution_iterations_required');
  int('quality_refinements_required');
  if ((r.execution_iterations_required as number) < 1) {
    throw new Error(`record ${id}: execution_iterations_required must be at least 1`);
  }
  if (r.original_instruction !== null && typeof r.original_instruction !== 'string') {
    throw new Error(`record ${id}: original_instruction must be a string or null`);
  }
  const expectedId = [r.task_id, r.perturbed_id, r.refinement_model, r.execution_agent].join(':');
  if (r.example_id !== expectedId) {
    throw new Error(`record ${id}: example_id does not equal task_id:perturbed_id:refinement_model:execution_agent`);
  }
  return r as unknown as BenchRecord;
}

export function loadRecords(file: string): BenchRecord[] {
  const parsed: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (!Array.isArray(parsed)) throw new Error(`${file}: expected a JSON array of records`);
  const records = parsed.map((r, i) => validate(r, i));
  const seen = new Set<string>();
  for (const r of records) {
    if (seen.has(r.example_id)) throw new Error(`duplicate example_id ${r.example_id}`);
    seen.add(r.example_id);
  }
  return records.sort((a, b) => cmp(a.example_id, b.example_id));
}

function seedDir(r: BenchRecord): string {
  return path.posix.join(r.domain, r.task_id, PERTURBATION_MODEL, `perturbed_query_${r.perturbed_id}`);
}

export function runDir(r: BenchRecord): string {
  return path.posix.join(
    seedDir(r),
    `iterative_refinement_${r.refinement_model}`,
    `agent_${r.execution_agent}`,
  );
}

function seedQuery(rep: BenchRecord, sharedBy: string[]): Record<string, unknown> {
  const note =
    sharedBy.length > 1
      ? `The records do not contain the seed perturbation. perturbed_instruction and elicitation_strategy are the final successful ones of run ${rep.example_id}, the first (by example_id) of the ${sharedBy.length} runs that share this folder.`
      : `The records do not contain the seed perturbation. perturbed_instruction and elicitation_strategy are the final successful ones of run ${rep.example_id}.`;
  return {
    _source: SOURCE_NOTE,
    _synthesized: [
      'iteration_number',
      'perturbed_instruction',
      'reasoning',
      'plausible_unintended_behavior',
      'elicitation_strategy',
      'probability',
      'generation_metadata',
    ],
    _note: note,
    id: rep.perturbed_id,
    task_id: rep.task_id,
    domain: rep.domain,
    iteration_number: 0,
    original_instruction: rep.original_instruction,
    perturbed_instruction: rep.perturbed_instruction,
    reasoning: null,
    plausible_unintended_behavior: null,
    elicitation_strategy: rep.elicitation_strategy,
    probability: null,
    generation_metadata: null,
  };
}

function refinementSummary(r: BenchRecord): Record<string, unknown> {
  const ev = 'execution_history[0]';
  const te = `${ev}.trajectory_evaluation`;
  return {
    _source: SOURCE_NOTE,
    _synthesized: [
      'cost_breakdown',
      `${ev}.execution_iteration`,
      `${ev}.execution_result`,
      `${te}.reasoning`,
      `${te}.behavior_elicitation_explanation`,
      `${te}.harmful_actions_observed`,
      `${te}.safe_actions_observed`,
      `${te}.matches_expected_behavior`,
      `${te}.severity_explanation`,
      `${te}.recommendation_reasoning`,
      `${te}.evaluation_metadata`,
      `${ev}.quality_refinements`,
      `${ev}.timestamp`,
    ],
    success: true,
    execution_iterations: r.execution_iterations_required,
    total_quality_refinements: r.quality_refinements_required,
    final_score: r.behavior_elicitation_score,
    cost_breakdown: {
      agent_execution_cost: 0,
      trajectory_evaluation_cost: 0,
      quality_evaluation_cost: 0,
      execution_refinement_cost: 0,
      quality_refinement_cost: 0,
      trajectory_summarization_cost: 0,
      total_cost: 0,
    },
    // Only the successful (last) iteration is known; earlier failed
    // iterations are not in the records and are deliberately not invented.
    execution_history: [
      {
        execution_iteration: r.execution_iterations_required - 1,
        perturbed_instruction: r.perturbed_instruction,
        elicitation_strategy: r.elicitation_strategy,
        execution_result: null,
        trajectory_evaluation: {
          reasoning: NOT_RECORDED,
          behavior_elicitation_score: r.behavior_elicitation_score,
          behavior_elicitation_explanation: NOT_RECORDED,
          harmful_actions_observed: [],
          safe_actions_observed: [],
          matches_expected_behavior: null,
          severity_assessment: r.severity,
          severity_explanation: NOT_RECORDED,
          recommendation: 'COLLECT',
          recommendation_reasoning: NOT_RECORDED,
          evaluation_metadata: null,
        },
        quality_refinements: [],
        timestamp: null,
      },
    ],
  };
}

function runMetadata(r: BenchRecord): Record<string, unknown> {
  return {
    _source: SOURCE_NOTE,
    _synthesized: ['completed'],
    example_id: r.example_id,
    execution_agent: r.execution_agent,
    domain: r.domain,
    severity: r.severity,
    completed: true,
  };
}

function finalSuccessfulQuery(r: BenchRecord): Record<string, unknown> {
  return {
    _source: SOURCE_NOTE,
    _synthesized: ['id', 'timestamp'],
    id: r.perturbed_id,
    perturbed_instruction: r.perturbed_instruction,
    elicitation_strategy: r.elicitation_strategy,
    behavior_elicitation_score: r.behavior_elicitation_score,
    execution_iterations_required: r.execution_iterations_required,
    quality_refinements_required: r.quality_refinements_required,
    recommendation: 'COLLECT',
    timestamp: null,
  };
}

/** Every file of the sample tree, sorted by relative path. */
export function planSample(records: BenchRecord[]): PlannedFile[] {
  const sorted = [...records].sort((a, b) => cmp(a.example_id, b.example_id));
  const bySeed = new Map<string, BenchRecord[]>();
  for (const r of sorted) {
    const key = seedDir(r);
    const group = bySeed.get(key);
    if (group) group.push(r);
    else bySeed.set(key, [r]);
  }
  const files: PlannedFile[] = [];
  for (const [dir, group] of bySeed) {
    const rep = group[0]!;
    for (const other of group) {
      if (other.original_instruction !== rep.original_instruction) {
        throw new Error(`runs ${rep.example_id} and ${other.example_id} share a seed folder but not the original instruction`);
      }
    }
    files.push({
      relPath: path.posix.join(dir, `perturbed_query_${rep.perturbed_id}.json`),
      value: seedQuery(rep, group.map((g) => g.example_id)),
    });
  }
  const runDirs = new Set<string>();
  for (const r of sorted) {
    const dir = runDir(r);
    if (runDirs.has(dir)) throw new Error(`two records map to the same run folder ${dir}`);
    runDirs.add(dir);
    files.push({ relPath: path.posix.join(dir, 'refinement_summary.json'), value: refinementSummary(r) });
    files.push({ relPath: path.posix.join(dir, 'metadata.json'), value: runMetadata(r) });
    files.push({ relPath: path.posix.join(dir, 'final_successful_query.json'), value: finalSuccessfulQuery(r) });
  }
  return files.sort((a, b) => cmp(a.relPath, b.relPath));
}

export function serialize(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function assertSafeOut(out: string, records: string): void {
  const abs = path.resolve(out);
  const protectedPaths = [path.parse(abs).root, process.cwd(), REPO_ROOT, path.dirname(path.resolve(records))];
  for (const p of protectedPaths) {
    const rel = path.relative(abs, p);
    if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) {
      throw new Error(`refusing to replace ${abs}: it is (or contains) ${p}`);
    }
  }
}

/**
 * Writes the sample tree for `records` into `out`, replacing whatever was
 * there. Returns the number of runs written.
 */
export function buildSample(records: BenchRecord[], out: string, recordsFile = DEFAULT_RECORDS): number {
  assertSafeOut(out, recordsFile);
  const abs = path.resolve(out);
  const files = planSample(records);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  const tmp = fs.mkdtempSync(`${abs}.tmp-`);
  try {
    for (const f of files) {
      const target = path.join(tmp, ...f.relPath.split('/'));
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.writeFileSync(target, serialize(f.value));
    }
    fs.rmSync(abs, { recursive: true, force: true });
    fs.renameSync(tmp, abs);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return records.length;
}

function parseArgs(argv: string[]): { records: string; out: string } {
  let records = DEFAULT_RECORDS;
  let out = DEFAULT_OUT;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--records') records = next();
    else if (a.startsWith('--records=')) records = a.slice('--records='.length);
    else if (a === '--out') out = next();
    else if (a.startsWith('--out=')) out = a.slice('--out='.length);
    else if (a === '--help' || a === '-h') {
      console.log('usage: node scripts/build-sample.ts [--records FILE] [--out DIR]');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return { records, out };
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const records = loadRecords(args.records);
  const n = buildSample(records, args.out, args.records);
  const agents = new Map<string, number>();
  for (const r of records) agents.set(r.execution_agent, (agents.get(r.execution_agent) ?? 0) + 1);
  const perAgent = [...agents].sort((a, b) => cmp(a[0], b[0])).map(([a, c]) => `${a}: ${c}`).join(', ');
  console.log(`wrote ${n} runs to ${path.resolve(args.out)} (${perAgent})`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  try {
    main();
  } catch (err) {
    console.error(`build-sample: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
