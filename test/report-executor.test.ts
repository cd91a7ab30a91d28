// The report executor on real (offline) upstream outputs: "what changed" comes
// from the committed taxonomy lock and never from a previous report-data.json,
// and nothing in its output depends on where the workspace lives.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import categorize from '../executors/categorize/executor.ts';
import cluster from '../executors/cluster/executor.ts';
import report from '../executors/report/executor.ts';
import summarize from '../executors/summarize/executor.ts';
import taskList from '../executors/task-list/executor.ts';
import { buildLock, formatLock, lockPath } from '../stages/categorize/taxonomy-lock.ts';
import { HIDDEN_CHARS } from '../stages/util/controls.ts';
import { escapeMarkdown } from '../stages/report/markdown.ts';
import { readSummaries } from '../stages/summarize/summaries.ts';

const REPO = resolve(import.meta.dirname, '..');
const NAME = 'small';
const LOCK = lockPath(NAME);
const REPORT_FILES = ['report-data.json', 'report.html', 'report.md'];

let base: string;
let root: string;

function pipeline(dataRoot: string): string {
  return `
data:
  root: ${dataRoot}
defaults:
  provider: offline
analyses:
  - name: ${NAME}
    agents: [claude-haiku-4-5-20251001]
    domains: [os]
`;
}

/** A workspace at `dir` with the upstream outputs built by the real (offline) executors. */
async function workspace(dir: string, dataRoot = 'data', editData?: (dataDir: string) => void): Promise<string> {
  mkdirSync(dir, { recursive: true });
  if (dataRoot === 'data') cpSync(join(REPO, 'examples/perturbed_queries'), join(dir, 'data'), { recursive: true });
  editData?.(join(dir, dataRoot));
  cpSync(join(REPO, 'prompts'), join(dir, 'prompts'), { recursive: true });
  mkdirSync(join(dir, 'analyses', NAME), { recursive: true });
  writeFileSync(join(dir, 'pipeline.yaml'), pipeline(dataRoot));
  const ctx = { root: dir, projectName: NAME };
  for (const [stage, run] of [['task-list', taskList], ['summarize', summarize], ['categorize', categorize], ['cluster', cluster]] as const) {
    const res = await (run as (o: { analysis: string }, c: typeof ctx) => Promise<{ success: boolean }>)({ analysis: NAME }, ctx);
    if (!res.success) throw new Error(`${stage} failed in ${dir}`);
  }
  return dir;
}

const runReport = (dir: string, outDir?: string) => report({ analysis: NAME, ...(outDir ? { outDir } : {}) }, { root: dir, projectName: NAME });
const readOut = (dir: string, file: string, outDir = 'out') => readFileSync(join(dir, outDir, NAME, 'report', file), 'utf8');
const reportBytes = (dir: string) => Object.fromEntries(REPORT_FILES.map((f) => [f, readOut(dir, f)]));

function writeLockFrom(dir: string, edit: (cats: { category_id: string; category_name: string; definition: string; examples: { run_id: string; trigger_phrase: string | null; justification: string | null }[] }[]) => void): void {
  const cat = JSON.parse(readFileSync(join(dir, 'out', NAME, 'categorize', 'categorization.json'), 'utf8'));
  const categories = structuredClone(cat.categorization.categories);
  edit(categories);
  const runs = categories.flatMap((c: { examples: { run_id: string }[] }) => c.examples.map((e) => e.run_id));
  const lock = buildLock({
    analysis: NAME,
    built_with: { provider: 'offline' },
    categories,
    summary_digests: Object.fromEntries(runs.map((r: string, i: number) => [r, i.toString(16).padStart(64, '0')])),
  });
  writeFileSync(join(dir, LOCK), formatLock(lock));
}

beforeAll(async () => {
  vi.spyOn(console, 'log').mockImplementation(() => {});
  vi.spyOn(console, 'warn').mockImplementation(() => {});
  base = mkdtempSync(join(tmpdir(), 'report-exec-'));
  root = await workspace(join(base, 'ws'));
}, 120_000);
afterAll(() => {
  vi.restoreAllMocks();
  rmSync(base, { recursive: true, force: true });
});

describe('report executor: the baseline', () => {
  it('has no "what changed" without a taxonomy lock', async () => {
    rmSync(join(root, LOCK), { force: true });
    expect(await runReport(root)).toEqual({ success: true });
    const data = JSON.parse(readOut(root, 'report-data.json'));
    expect(data.baseline).toBeNull();
    expect(data.snapshot.runs.length).toBeGreaterThan(0);
    expect(readOut(root, 'report.md')).not.toContain('What changed');
    expect(readOut(root, 'report.html')).not.toContain('id="changes"');
  });

  it('never reads its own previous output: a foreign report-data.json changes no byte', async () => {
    rmSync(join(root, LOCK), { force: true });
    rmSync(join(root, 'out', NAME, 'report'), { recursive: true, force: true });
    expect(await runReport(root)).toEqual({ success: true });
    const fresh = reportBytes(root);
    // What another clone's cache could have left there: a different snapshot and baseline.
    const data = JSON.parse(fresh['report-data.json'] as string);
    const foreign = { ...data, snapshot: { runs: ['x:1'], categories: [], clusters: [] }, baseline: { runs: ['x:0'], categories: [], clusters: [] } };
    writeFileSync(join(root, 'out', NAME, 'report', 'report-data.json'), JSON.stringify(foreign));
    expect(await runReport(root)).toEqual({ success: true });
    expect(reportBytes(root)).toEqual(fresh);
  });

  it('compares with the committed taxonomy lock: runs and categories, clusters not compared', async () => {
    let removedRun = '';
    let droppedName = '';
    writeLockFrom(root, (cats) => {
      // The lock knew one run fewer, a category the report no longer has, and one that has since disappeared.
      const first = cats[0] as (typeof cats)[number];
      removedRun = (first.examples.pop() as { run_id: string }).run_id;
      const last = cats[cats.length - 1] as (typeof cats)[number];
      droppedName = last.category_name;
      last.category_id = 'cat-retired';
      last.category_name = 'Retired category';
    });
    expect(await runReport(root)).toEqual({ success: true });
    const data = () => JSON.parse(readOut(root, 'report-data.json'));
    const md = readOut(root, 'report.md');
    expect(md).toContain(`## What changed\n\nCompared with the taxonomy lock (analyses/${NAME}/taxonomy.lock.json).\n`);
    expect(md).toMatch(/- Clusters: \d+ now, not compared\n/);
    expect(md).toContain('Clusters are not compared: the taxonomy lock has no cluster information.');
    expect(md).toContain('### New runs (');
    expect(md).toContain('### Removed categories (1)\n\n- Retired category: had ');
    expect(md).toContain('### New categories (1)\n\n- ');
    expect(data().snapshot.categories.map((c: { category_name: string }) => c.category_name)).toContain(droppedName);
    expect(md).not.toMatch(/New clusters|Removed clusters/);
    const html = readOut(root, 'report.html');
    expect(html).toContain(`<p class="lead">Compared with the taxonomy lock (analyses/${NAME}/taxonomy.lock.json).</p>`);
    expect(data().baseline).toMatchObject({ label: 'the taxonomy lock', source: LOCK, clusters: null });
    expect(data().baseline.runs).not.toContain(removedRun);
    expect(data().snapshot.runs).toContain(removedRun);
    expect(data().snapshot.clusters.length).toBeGreaterThan(0);
  });

  it('gives the same bytes for the same lock, whatever the report wrote before', async () => {
    const before = reportBytes(root);
    rmSync(join(root, 'out', NAME, 'report'), { recursive: true, force: true });
    expect(await runReport(root)).toEqual({ success: true });
    expect(reportBytes(root)).toEqual(before);
  });

  it('fails with the file, key and expectation when the lock is invalid', async () => {
    writeFileSync(join(root, LOCK), JSON.stringify({ lock_version: 1, analysis: NAME, built_with: {}, categories: [{ category_id: 'c' }] }));
    const errors = await failedReportErrors(() => rmSync(join(root, LOCK), { force: true }));
    expect(errors).toContain(LOCK);
    expect(errors).toMatch(/categories\.0\.category_name|categories\[0\]\.category_name/);
  });
});

/** Runs the report, which must fail; returns what it printed on stderr. `restore` runs afterwards, whatever happened. */
async function failedReportErrors(restore: () => void): Promise<string> {
  const errors: string[] = [];
  const spy = vi.spyOn(console, 'error').mockImplementation((m: unknown) => void errors.push(String(m)));
  try {
    expect(await runReport(root)).toEqual({ success: false });
  } finally {
    spy.mockRestore();
    restore();
  }
  return errors.join('\n');
}

describe('report executor: upstream index files are checked on read', () => {
  const damages = [
    { stage: 'task-list', file: 'task-list/runs.json', field: 'runs[1].run_id', damage: (d: any) => { d.runs[1].run_id = 7; }, expected: /expected string, received number/ },
    { stage: 'summarize', file: 'summarize/index.json', field: 'runs[0].status', damage: (d: any) => { d.runs[0].status = 'maybe'; }, expected: /expected one of "done"\|"failed"/ },
    { stage: 'categorize', file: 'categorize/categorization.json', field: 'categorization.categories[0].examples[0].trigger_phrase_verified', damage: (d: any) => { delete d.categorization.categories[0].examples[0].trigger_phrase_verified; }, expected: /expected boolean, received undefined/ },
    { stage: 'cluster', file: 'cluster/clusters.json', field: 'clusters[0].member_categories', damage: (d: any) => { d.clusters[0].member_categories = 'none'; }, expected: /expected array, received string/ },
  ];
  for (const { stage, file, field, damage, expected } of damages) {
    it(`a damaged ${file} fails the report with the file, the field, what was expected and the target to re-run`, async () => {
      const path = join(root, 'out', NAME, file);
      const original = readFileSync(path, 'utf8');
      const doc = JSON.parse(original);
      damage(doc);
      writeFileSync(path, JSON.stringify(doc, null, 2));
      const message = await failedReportErrors(() => writeFileSync(path, original));
      expect(message).toContain(`${path}: not what the ${stage} target writes`);
      expect(message).toContain(`  - ${field}: `);
      expect(message).toMatch(expected);
      expect(message).toContain(`nx run ${NAME}:${stage}`);
    });
  }

  it('reads the undamaged files again', async () => {
    expect(await runReport(root)).toEqual({ success: true });
  });
});

describe('report executor: run folders', () => {
  const runsOf = (html: string) => {
    const m = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html);
    return (JSON.parse((m as RegExpExecArray)[1] as string) as { runs: { run_id: string; folder: string; href: string | null }[] }).runs;
  };

  it('shows the folder relative to the data root and links it from the report folder', async () => {
    rmSync(join(root, LOCK), { force: true });
    expect(await runReport(root)).toEqual({ success: true });
    const runs = runsOf(readOut(root, 'report.html'));
    expect(runs.length).toBeGreaterThan(0);
    for (const r of runs) {
      expect(r.folder).toMatch(/^os\/[^/]+\/o4-mini-2025-04-16\/perturbed_query_[^/]+\/iterative_refinement_[^/]+\/agent_claude-haiku-4-5-20251001$/);
      expect(r.href).toBe(`../../../data/${r.folder.split('/').map(encodeURIComponent).join('/')}`);
      // The link resolves to the run's folder in this workspace.
      expect(readdirSync(resolve(root, 'out', NAME, 'report', decodeURIComponent(r.href as string)))).toContain('refinement_summary.json');
    }
  });

  it('follows the configured output folder', async () => {
    cpSync(join(root, 'out'), join(root, 'build', 'reports'), { recursive: true });
    expect(await runReport(root, 'build/reports')).toEqual({ success: true });
    const runs = runsOf(readOut(root, 'report.html', 'build/reports'));
    for (const r of runs) expect(r.href?.startsWith('../../../../data/os/')).toBe(true);
  });

  it('links an absolute data root by file:// URL of the configured path, the same from any workspace', async () => {
    const data = join(base, 'shared-data');
    cpSync(join(REPO, 'examples/perturbed_queries'), data, { recursive: true });
    const ws = await workspace(join(base, 'abs'), data);
    const deeper = await workspace(join(base, 'abs2', 'b', 'c', 'd'), data);
    expect(await runReport(ws)).toEqual({ success: true });
    expect(await runReport(deeper)).toEqual({ success: true });
    const runs = runsOf(readOut(ws, 'report.html'));
    for (const r of runs) {
      expect(r.folder.startsWith('os/')).toBe(true);
      expect(r.href).toBe(`file://${data.split('/').map(encodeURIComponent).join('/')}/${r.folder.split('/').map(encodeURIComponent).join('/')}`);
    }
    expect(reportBytes(deeper)).toEqual(reportBytes(ws));
    for (const f of REPORT_FILES) expect(readOut(deeper, f)).not.toContain(deeper);
  }, 120_000);

  it('writes the same bytes in a workspace at another depth', async () => {
    const deep = await workspace(join(base, 'y', 'b', 'c', 'd'));
    expect(await runReport(deep)).toEqual({ success: true });
    rmSync(join(root, 'out', NAME, 'report'), { recursive: true, force: true });
    expect(await runReport(root)).toEqual({ success: true });
    expect(reportBytes(deep)).toEqual(reportBytes(root));
    for (const f of REPORT_FILES) {
      expect(readOut(deep, f)).not.toContain(deep);
      expect(readOut(deep, f)).not.toContain(base);
    }
  }, 120_000);
});

describe('report executor: control, separator and bidi characters in the data', () => {
  // NUL, ESC, the two Unicode separators, a right-to-left override and a
  // right-to-left isolate.
  const HIDDEN = '\u0000\u001b\u2028\u2029\u202e\u2067';
  const hiddenIn = (text: string) => new RegExp(HIDDEN_CHARS.source).test(text);
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));

  it('reach report.md as visible escapes, report.html not at all, report-data.json unchanged', async () => {
    // Every instruction of the data, at any depth of any run file, gets the
    // characters after its first word.
    const edit = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(edit);
      if (value === null || typeof value !== 'object') return value;
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, /_instruction$/.test(k) && typeof v === 'string' ? v.replace(' ', ` ${HIDDEN} `) : edit(v)]),
      );
    };
    const dir = await workspace(join(base, 'hidden'), 'data', (data) => {
      for (const file of walk(data).filter((f) => f.endsWith('.json'))) writeFileSync(file, JSON.stringify(edit(JSON.parse(readFileSync(file, 'utf8')))));
    });
    // A category named with them, in the categorization and in its cluster.
    const catFile = join(dir, 'out', NAME, 'categorize', 'categorization.json');
    const cluFile = join(dir, 'out', NAME, 'cluster', 'clusters.json');
    const cat = JSON.parse(readFileSync(catFile, 'utf8'));
    const clu = JSON.parse(readFileSync(cluFile, 'utf8'));
    const old: string = cat.categorization.categories[0].category_name;
    const name = `${old}${HIDDEN}end`;
    cat.categorization.categories[0].category_name = name;
    for (const c of clu.clusters) for (const m of c.member_categories) if (m.category_name === old) m.category_name = name;
    writeFileSync(catFile, JSON.stringify(cat));
    writeFileSync(cluFile, JSON.stringify(clu));
    expect((await runReport(dir)).success).toBe(true);

    // The summaries carry the instructions with the characters.
    const sumDir = join(dir, 'out', NAME, 'summarize');
    const summaries = [...readSummaries(sumDir, JSON.parse(readFileSync(join(sumDir, 'index.json'), 'utf8')).runs).values()];
    expect(summaries.length).toBeGreaterThan(0);
    expect(summaries.some((s) => s.perturbed_instruction.includes(HIDDEN))).toBe(true);

    const md = readOut(dir, 'report.md');
    expect(hiddenIn(md)).toBe(false);
    expect(md).toContain(escapeMarkdown(name));
    expect(escapeMarkdown(name)).toContain('`\\u0000``\\u001b``\\u2028``\\u2029``\\u202e``\\u2067`end');

    const html = readOut(dir, 'report.html');
    expect(hiddenIn(html)).toBe(false);
    expect(html).toContain(`${old}\\u0000\\u001b\\u2028\\u2029\\u202e\\u2067end`);
    const block = html.match(/<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/)?.[1] as string;
    const client = JSON.parse(block) as { categories: { name: string }[]; runs: { original: string; perturbed: string; summary: string }[] };
    expect(client.categories.map((c) => c.name)).toContain(name);
    expect(client.runs.filter((r) => r.perturbed.includes(HIDDEN) && r.original.includes(HIDDEN)).length).toBe(client.runs.length);
    expect(client.runs.some((r) => r.summary.includes(HIDDEN))).toBe(true);

    const data = JSON.parse(readOut(dir, 'report-data.json'));
    expect(JSON.stringify(data.snapshot)).toContain(JSON.stringify(name).slice(1, -1));
  });
});
