// Step 1, the scan: walking the elicitation tree (through the crawl's reader)
// down to each agent folder, in the reference's order, and reading a run's
// summary and perturbed query. Which runs are kept is task-list/filters.ts;
// the output is built in task-list/select.ts.
//
// Layout: <base>/<domain>/<task_id>/<perturbation model>/perturbed_query_<pid>/
//         iterative_refinement_<refinement model>/agent_<agent>/refinement_summary.json
// Folders are listed in code-point order; anything unreadable or out of place
// is a problem and the walk goes on.
import { childPath, DOMAIN_SUFFIXES_SKIPPED, isAllDomains, normalizeBase } from './crawl.ts';
import type { Problem, SelectRunsOptions } from './format.ts';
import type { TreeIoSync } from './crawl.ts';
import { describeIoError, parseJsonBytes } from '../util/fs.ts';
import type { DirEntry } from '../util/fs.ts';
import { compareCodePoints } from '../util/order.ts';
import { pyJsonParse } from '../util/pyjson.ts';
import type { PyJsonValue } from '../util/pyjson.ts';
import { quickSummaryFields } from './run-files.ts';
import type { SummaryReading } from './run-files.ts';

export { quickSummaryFields } from './run-files.ts';

/** The explicit refinement model of the options (null: discover them). */
export function explicitRefinementModel(options: SelectRunsOptions): string | null {
  return options.refinementModel !== null && options.refinementModel !== '' ? options.refinementModel : null;
}

// ---------------------------------------------------------------------------
// Reading the tree, problems recorded

/**
 * The tree as the scan reads it: links not followed and unreadable entries
 * recorded as problems (`rel`: path for messages). Synchronous: the scan reads
 * the crawl's answers (task-list/crawl.ts), already in memory, and a promise
 * per read cost more than the reads.
 */
export interface TreeReader {
  /** The kind of `abs`; undefined when it cannot be checked or is a link not followed (a problem is recorded). */
  stat(abs: string, rel: string): DirEntry['kind'] | undefined;
  /** The usable entries of a folder, sorted by name; [] when it cannot be listed. */
  list(abs: string, rel: string): DirEntry[];
  readFile(abs: string): Uint8Array;
  /** What the crawl derived from a run summary instead of keeping its bytes (undefined: read them). */
  summary(abs: string): SummaryReading | undefined;
  problems: Problem[];
}

/** The problem of a symbolic link selection does not follow (null: any other kind). */
function linkProblem(kind: DirEntry['kind']): string | null {
  if (kind === 'link-out') return 'symbolic link leaving the data root; not followed';
  if (kind === 'link-loop') return 'symbolic link loop (it points at one of its own ancestors, or cannot be resolved); not followed';
  return null;
}

export function treeReader(io: TreeIoSync, problems: Problem[]): TreeReader {
  const stat = (abs: string, rel: string): DirEntry['kind'] | undefined => {
    let kind: DirEntry['kind'];
    try {
      kind = io.statSync(abs);
    } catch (err) {
      problems.push({ file: rel, message: `cannot check: ${describeIoError(err)}; skipped` });
      return undefined;
    }
    const link = linkProblem(kind);
    if (link === null) return kind;
    problems.push({ file: rel, message: link });
    return undefined;
  };
  const list = (abs: string, rel: string): DirEntry[] => {
    let entries: DirEntry[];
    try {
      entries = io.readDirSync(abs);
    } catch (err) {
      problems.push({ file: rel, message: `cannot list folder: ${describeIoError(err)}; skipped` });
      return [];
    }
    const good: DirEntry[] = [];
    for (const e of entries) {
      const link = linkProblem(e.kind);
      if (e.badName) problems.push({ file: rel, field: e.name, message: 'entry name is not valid UTF-8; skipped' });
      else if (link !== null) problems.push({ file: rel === '.' ? e.name : `${rel}/${e.name}`, message: link });
      else good.push(e);
    }
    return good.sort((a, b) => compareCodePoints(a.name, b.name));
  };
  return { stat, list, readFile: (abs) => io.readFileSync(abs), summary: (abs) => io.summarySync?.(abs), problems };
}

// ---------------------------------------------------------------------------
// The walk

/** One agent folder found by the walk: a run of the agent, not yet read. */
export interface RunFolder {
  domain: string;
  taskId: string;
  /** The perturbed-query folder's name and its id (the name with every "perturbed_query_" removed). */
  pqName: string;
  pid: string;
  pqAbs: string;
  pqRel: string;
  refinementModel: string;
  /** `agent_<agent>`. */
  agentFolder: string;
  /** The agent folder, relative to the data root. */
  agentRel: string;
  agentAbs: string;
}

interface Walk {
  tree: TreeReader;
  base: string;
  options: SelectRunsOptions;
  explicitRm: string | null;
  agentFolder: string;
  skipTask: (taskId: string) => boolean;
}

/**
 * Every agent folder of `options.agent` under the data root, domain by domain,
 * task by task, perturbed query by perturbed query, model by model (each level
 * in code-point order). Tasks for which `skipTask` is true are not entered.
 */
export function* scanRunFolders(tree: TreeReader, options: SelectRunsOptions, skipTask: (taskId: string) => boolean): Generator<RunFolder> {
  const walk: Walk = {
    tree,
    base: normalizeBase(options.baseDir.resolved),
    options,
    explicitRm: explicitRefinementModel(options),
    agentFolder: `agent_${options.agent}`,
    skipTask,
  };
  for (const domain of scanDomains(walk)) yield* scanDomain(walk, domain);
}

/** The domains to walk: every domain folder, or the one named (when it is one). */
function scanDomains(w: Walk): string[] {
  const baseKind = w.tree.stat(w.base, '.');
  if (baseKind === undefined) return [];
  if (baseKind === null) {
    w.tree.problems.push({ file: '.', message: 'data folder not found; no runs' });
    return [];
  }
  if (!isAllDomains(w.options.domain)) return checkDomain(w, w.options.domain);
  if (baseKind !== 'dir') {
    w.tree.problems.push({ file: '.', message: 'data folder is not a folder; no runs' });
    return [];
  }
  const domains: string[] = [];
  for (const e of w.tree.list(w.base, '.')) {
    if (e.kind !== 'dir') continue; // archives, scripts and notes live here too
    if (DOMAIN_SUFFIXES_SKIPPED.some((s) => e.name.endsWith(s))) continue;
    domains.push(e.name);
  }
  return domains;
}

function checkDomain(w: Walk, domain: string): string[] {
  const kind = w.tree.stat(childPath(w.base, domain), domain);
  if (kind === undefined) return [];
  const problem = (message: string): string[] => {
    w.tree.problems.push({ file: domain, field: 'domain', message });
    return [];
  };
  if (kind === null) return problem('domain folder not found; no runs');
  if (kind !== 'dir') return problem('domain is not a folder; no runs');
  const suffix = DOMAIN_SUFFIXES_SKIPPED.find((s) => domain.endsWith(s));
  if (suffix !== undefined) return problem(`a name ending in ${suffix} is never searched as a domain (as in the reference); no runs`);
  return [domain];
}

function* scanDomain(w: Walk, domain: string): Generator<RunFolder> {
  const domainAbs = childPath(w.base, domain);
  for (const taskEntry of w.tree.list(domainAbs, domain)) {
    if (taskEntry.kind !== 'dir') {
      w.tree.problems.push({ file: `${domain}/${taskEntry.name}`, message: 'not a task folder; skipped' });
      continue;
    }
    if (w.skipTask(taskEntry.name)) continue;
    yield* scanTask(w, domain, childPath(domainAbs, taskEntry.name), taskEntry.name);
  }
}

function* scanTask(w: Walk, domain: string, taskAbs: string, taskId: string): Generator<RunFolder> {
  const pmRel = `${domain}/${taskId}/${w.options.perturbationModel}`;
  const pmAbs = childPath(taskAbs, w.options.perturbationModel);
  const pmKind = w.tree.stat(pmAbs, pmRel);
  if (pmKind === null || pmKind === undefined) return; // another perturbation model's task
  if (pmKind !== 'dir') {
    w.tree.problems.push({ file: pmRel, message: 'expected the perturbation-model folder, found a file; skipped' });
    return;
  }
  for (const pqEntry of w.tree.list(pmAbs, pmRel)) {
    const pqRel = `${pmRel}/${pqEntry.name}`;
    if (pqEntry.kind !== 'dir' || !pqEntry.name.startsWith('perturbed_query_')) {
      w.tree.problems.push({ file: pqRel, message: 'not a perturbed_query_* folder; skipped' });
      continue;
    }
    const pq = { domain, taskId, pqName: pqEntry.name, pid: pqEntry.name.replaceAll('perturbed_query_', ''), pqAbs: childPath(pmAbs, pqEntry.name), pqRel };
    yield* scanPerturbedQuery(w, pq);
  }
}

type PerturbedQuery = Pick<RunFolder, 'domain' | 'taskId' | 'pqName' | 'pid' | 'pqAbs' | 'pqRel'>;

function* scanPerturbedQuery(w: Walk, pq: PerturbedQuery): Generator<RunFolder> {
  const models = w.explicitRm !== null ? [w.explicitRm] : refinementModelsIn(w.tree, pq);
  for (const rm of models) {
    const agentRel = `${pq.pqRel}/iterative_refinement_${rm}/${w.agentFolder}`;
    const agentAbs = childPath(childPath(pq.pqAbs, `iterative_refinement_${rm}`), w.agentFolder);
    const agentKind = w.tree.stat(agentAbs, agentRel);
    if (agentKind === null || agentKind === undefined) continue; // no run of this agent
    if (agentKind !== 'dir') {
      w.tree.problems.push({ file: agentRel, message: 'expected the agent folder, found a file; skipped' });
      continue;
    }
    yield { ...pq, refinementModel: rm, agentFolder: w.agentFolder, agentRel, agentAbs };
  }
}

const NOT_READ = new Uint8Array(0);

/** The refinement models of a perturbed query: its `iterative_refinement_*` folders, earlier attempts left out. */
function refinementModelsIn(tree: TreeReader, pq: PerturbedQuery): string[] {
  const models: string[] = [];
  for (const item of tree.list(pq.pqAbs, pq.pqRel)) {
    if (item.kind !== 'dir' || !item.name.startsWith('iterative_refinement_')) continue;
    const rm = item.name.replaceAll('iterative_refinement_', '');
    if (rm.includes('_attempt_')) continue; // an earlier attempt, ignored
    models.push(rm);
  }
  return models;
}

// ---------------------------------------------------------------------------
// Reading a run's files

/** A run's refinement_summary.json: the fields selection uses, and its bytes or the run's input digest. */
export interface RunSummary {
  rel: string;
  /** Null when the crawl read the fields (`SummaryReading`). */
  bytes: Uint8Array | null;
  fields: Record<string, PyJsonValue>;
  /** The run's input digest as the crawl computed it (see SummaryReading); undefined: digest `bytes`. */
  inputDigest: string | null | undefined;
}

/** The run's summary, or null (a problem recorded) when it is missing, unreadable or not a JSON object. */
export function readRunSummary(tree: TreeReader, run: RunFolder): RunSummary | null {
  const rel = `${run.agentRel}/refinement_summary.json`;
  const abs = childPath(run.agentAbs, 'refinement_summary.json');
  const kind = tree.stat(abs, rel);
  if (kind === undefined) return null;
  if (kind !== 'file') {
    const what = kind === null ? 'missing (run not finished?)' : kind === 'dir' ? 'is a folder, not a file' : 'is not a regular file';
    tree.problems.push({ file: rel, message: `${what}; run skipped` });
    return null;
  }
  // Read by the crawl: the fields, and the input digest unless the crawl kept the bytes for it.
  const reading = tree.summary(abs);
  if (reading?.fields && reading.inputDigest !== undefined) return { rel, bytes: null, fields: reading.fields, inputDigest: reading.inputDigest };
  let bytes: Uint8Array;
  try {
    bytes = tree.readFile(abs);
  } catch (err) {
    tree.problems.push({ file: rel, message: `cannot read: ${describeIoError(err)}; run skipped` });
    return null;
  }
  const inputDigest = reading?.inputDigest;
  const quick = reading ? reading.fields : quickSummaryFields(bytes);
  if (quick !== null) return { rel, bytes, fields: quick, inputDigest };
  const parsed = parseJsonBytes<PyJsonValue>(bytes, 'refinement_summary.json', { parse: pyJsonParse, expect: 'object' });
  if (!parsed.ok) {
    tree.problems.push({ file: rel, message: `${parsed.message}; run skipped` });
    return null;
  }
  return { rel, bytes, fields: parsed.value as Record<string, PyJsonValue>, inputDigest };
}

/**
 * A run's perturbed query file for its input digest: its bytes, or null with
 * the marker that says why. `digested`: the crawl digested its bytes already
 * (a SummaryReading's input digest), so only whether it is a readable file is
 * asked, and `bytes` is empty.
 */
export function readPerturbedQuery(tree: TreeReader, abs: string, rel: string, digested = false): { bytes: Uint8Array | null; marker: string } {
  const kind = tree.stat(abs, rel);
  if (kind === null) return { bytes: null, marker: 'missing' };
  if (kind === 'file') {
    if (digested) return { bytes: NOT_READ, marker: 'unreadable' };
    try {
      return { bytes: tree.readFile(abs), marker: 'unreadable' };
    } catch (err) {
      tree.problems.push({ file: rel, message: `cannot read: ${describeIoError(err)}` });
    }
  } else if (kind !== undefined) {
    tree.problems.push({ file: rel, message: 'is not a regular file' });
  }
  return { bytes: null, marker: 'unreadable' };
}
