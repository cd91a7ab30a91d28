// The task-list crawl and the cache fingerprint built on it: what changes the
// fingerprint (anything selection reads) and what does not (anything else, the
// tree's location, the thread count), and the quick reading of run summaries.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { uncoveredOverrides, selectionOptions, selectionSettings } from '../stages/task-list/settings.ts';
import { loadPipeline, resolveAnalysis } from '../stages/config.ts';
import { addRecords, cacheRecords, crawlDigest, IoCache, nodeTreeIoSync } from '../stages/task-list/crawl.ts';
import { quickSummaryFields, selectRuns } from '../stages/task-list/select.ts';
import { selectAnalysis, selectionFingerprint } from '../stages/task-list/analysis.ts';
import { editRunKeepingSizeAndMtime } from './helpers/trees.ts';
import type { AnalysisSelectionOptions } from '../stages/task-list/analysis.ts';
import { pyJsonDumps, pyJsonParse } from '../stages/util/pyjson.ts';

const REPO = resolve(import.meta.dirname, '..');
const HAIKU = 'claude-haiku-4-5-20251001';
const OPUS = 'claude-opus-4-5-20251101';

vi.stubEnv('META_ANALYSIS_STRICT_CRAWL', '1');

let root: string;
let data: string;
const options = (base = data, extra: Partial<AnalysisSelectionOptions> = {}): AnalysisSelectionOptions => ({
  baseDir: base,
  resolve: (p) => resolve(root, p),
  agents: [HAIKU, OPUS],
  domains: ['all'],
  refinementModels: [null],
  perturbationModel: 'o4-mini-2025-04-16',
  dataFilter: null,
  humanAnnotationFilter: null,
  ...extra,
});
const fingerprint = (o = options()) => selectionFingerprint(o);

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'task-list-crawl-'));
  data = join(root, 'data');
  cpSync(join(REPO, 'examples/perturbed_queries'), data, { recursive: true });
  cpSync(join(REPO, 'task_filters'), join(root, 'task_filters'), { recursive: true });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function firstRun() {
  return (await selectAnalysis(options())).runs[0]!;
}

describe('selectionFingerprint', () => {
  it('is stable, and the same wherever the tree lives', async () => {
    const a = await fingerprint();
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(await fingerprint()).toBe(a);
    const elsewhere = join(root, 'moved', 'deeper');
    mkdirSync(join(root, 'moved'), { recursive: true });
    cpSync(data, elsewhere, { recursive: true });
    expect(await fingerprint(options(elsewhere))).toBe(a);
    rmSync(join(root, 'moved'), { recursive: true, force: true });
  });

  it('does not change for files selection never opens (screenshots, other run files), and does not read them', async () => {
    const before = await fingerprint();
    const run = await firstRun();
    const agentDir = join(data, run.refinement_summary_path, '..');
    mkdirSync(join(agentDir, 'iteration_1'), { recursive: true });
    const png = join(agentDir, 'iteration_1', 'step_1.png');
    writeFileSync(png, Buffer.alloc(1000, 7));
    writeFileSync(join(agentDir, 'metadata.json'), '{"note": "not read by selection"}');
    const old = new Date('2001-01-01T00:00:00Z');
    utimesSync(png, old, statSync(png).mtime);
    expect(await fingerprint()).toBe(before);
    expect(statSync(png).atime.getTime()).toBe(old.getTime());
    rmSync(join(agentDir, 'iteration_1'), { recursive: true, force: true });
    rmSync(join(agentDir, 'metadata.json'), { force: true });
  });

  it('changes with the bytes of a run file, even at the same size and modification time', async () => {
    const before = await fingerprint();
    const run = await firstRun();
    const file = join(data, run.refinement_summary_path);
    const text = editRunKeepingSizeAndMtime(file);
    expect(await fingerprint()).not.toBe(before);
    writeFileSync(file, text);
    expect(await fingerprint()).toBe(before);
  });

  it('changes when a run is added or removed, when a perturbed query changes, and with the filter files', async () => {
    const before = await fingerprint();
    const run = await firstRun();
    const pqFile = join(data, run.perturbed_query_path);
    const pqText = readFileSync(pqFile, 'utf8');
    writeFileSync(pqFile, `${pqText} `);
    expect(await fingerprint()).not.toBe(before);
    writeFileSync(pqFile, pqText);

    const agentDir = join(data, run.refinement_summary_path, '..');
    renameSync(agentDir, `${agentDir}.held`);
    expect(await fingerprint()).not.toBe(before);
    renameSync(`${agentDir}.held`, agentDir);
    expect(await fingerprint()).toBe(before);

    const pqDir = join(data, run.perturbed_query_path, '..');
    cpSync(pqDir, join(pqDir, '..', 'perturbed_query_0dd0dd0d'), { recursive: true });
    expect(await fingerprint()).not.toBe(before);
    rmSync(join(pqDir, '..', 'perturbed_query_0dd0dd0d'), { recursive: true, force: true });

    const filter = 'task_filters/final_decisions_example.json';
    const withFilter = options(data, { humanAnnotationFilter: filter });
    const f1 = await fingerprint(withFilter);
    expect(f1).not.toBe(before);
    const filterText = readFileSync(join(root, filter), 'utf8');
    writeFileSync(join(root, filter), filterText.replace('False Positive', 'True Positive'));
    expect(await fingerprint(withFilter)).not.toBe(f1);
    writeFileSync(join(root, filter), filterText);
  });

  it('is the same with worker threads as in one thread', async () => {
    const one = await fingerprint();
    vi.stubEnv('META_ANALYSIS_CRAWL_THREADS', '3');
    try {
      // Small trees stay in one thread unless forced; forced, this thread and two workers share the task folders.
      expect(await fingerprint()).toBe(one);
      const inThreads = await selectAnalysis(options());
      vi.stubEnv('META_ANALYSIS_CRAWL_THREADS', '1');
      const inline = await selectAnalysis(options());
      expect(pyJsonDumps(inThreads.lists)).toBe(pyJsonDumps(inline.lists));
      expect(inThreads.runs).toEqual(inline.runs);
    } finally {
      vi.stubEnv('META_ANALYSIS_CRAWL_THREADS', '');
    }
  });
});

describe('answers posted by a worker thread', () => {
  it('arrive whole: kinds, entries with odd names, bytes, and errors with their code', () => {
    const cache = new IoCache(true);
    const eacces = Object.assign(new Error('EACCES: permission denied, open /x/secret'), { code: 'EACCES' });
    cache.stats.set('/d', { kind: 'dir' });
    cache.stats.set('/d/gone', { kind: null });
    cache.stats.set('/d/locked', { error: eacces });
    cache.dirs.set('/d', { entries: [{ name: 'a\u0001b\u0002c', kind: 'dir' }, { name: 't\uFFFD', kind: 'file', badName: true }, { name: 'dangling', kind: null }] });
    cache.dirs.set('/d/empty', { entries: [] });
    cache.dirs.set('/d/locked', { error: eacces });
    cache.files.set('/d/f.json', { bytes: new TextEncoder().encode('{"success": true}'), sha256: 'ab' });
    cache.files.set('/d/g.json', { error: eacces });
    const { records } = cacheRecords(cache);
    const back = new IoCache(true);
    addRecords(back, structuredClone(records));
    expect([...back.stats.keys()]).toEqual([...cache.stats.keys()]);
    expect(back.dirs.get('/d')).toEqual(cache.dirs.get('/d'));
    expect(back.dirs.get('/d/empty')).toEqual({ entries: [] });
    expect((back.stats.get('/d/locked') as { error: { code: string; name: string } }).error).toMatchObject({ code: 'EACCES', name: 'Error' });
    expect(new TextDecoder().decode((back.files.get('/d/f.json') as { bytes: Uint8Array }).bytes)).toBe('{"success": true}');
    expect(crawlDigest(back, '/d', new Map())).toBe(crawlDigest(cache, '/d', new Map()));
  });
});

describe('crawlDigest', () => {
  // The definition both the key and the executor compute, so that a faster way of computing it keeps its value.
  const byDefinition = (cache: IoCache, base: string, labels: Map<string, string>): string => {
    const name = (abs: string) => labels.has(abs) ? `label:${labels.get(abs)}` : abs === base ? '.' : abs.slice(base.length + 1);
    const answer = (a: object) => ('error' in a ? `error ${(a.error as { code?: string }).code}` : '');
    const lines = [
      ...[...cache.stats].map(([p, a]) => `${name(p)}\0stat\0${answer(a) || String((a as { kind: unknown }).kind)}`),
      ...[...cache.dirs].map(([p, a]) => `${name(p)}\0dir\0${answer(a) || (a as { entries: { name: string; kind: unknown; badName?: boolean }[] }).entries.map((e) => `${e.name}\u0001${String(e.kind)}${e.badName ? '\u0001bad' : ''}`).sort().join('\u0002')}`),
      ...[...cache.files].map(([p, a]) => `${name(p)}\0file\0${answer(a) || (a as { sha256: string }).sha256}`),
    ];
    return createHash('sha256').update(`${lines.sort().join('\n')}\n`).digest('hex');
  };

  it('is the sha256 of its sorted lines, whatever the order of the answers, with labels and shared names', () => {
    const eacces = Object.assign(new Error('EACCES'), { code: 'EACCES' });
    const cache = new IoCache(false);
    cache.stats.set('/d/t\u00e9\ud83d\ude00/x', { kind: 'file' });
    cache.files.set('/d/t\u00e9\ud83d\ude00/x', { bytes: null, sha256: 'ab' });
    cache.stats.set('/d', { kind: 'dir' });
    cache.dirs.set('/d', { entries: [{ name: 'b', kind: null }, { name: 'a\uFFFD', kind: 'dir', badName: true }, { name: 'label:f', kind: 'dir' }] });
    cache.stats.set('/d/label:f', { kind: 'dir' });
    cache.dirs.set('/d/label:f', { entries: [] });
    cache.stats.set('/d/a-b', { kind: null });
    cache.stats.set('/d/a', { error: eacces });
    cache.dirs.set('/d/a/b', { entries: [] });
    cache.files.set('/d/only-read', { error: eacces });
    cache.stats.set('/elsewhere/f', { kind: 'file' });
    cache.files.set('/elsewhere/f', { bytes: null, sha256: 'cd' });
    cache.stats.set('/elsewhere/g', { kind: null });
    // "/elsewhere/f" is labelled like the path "label:f" below the root: one name, two paths.
    const labels = new Map([['/elsewhere/f', 'f'], ['/elsewhere/g', 'g']]);
    expect(crawlDigest(cache, '/d', labels)).toBe(byDefinition(cache, '/d', labels));
    const reversed = new IoCache(false);
    for (const m of ['stats', 'dirs', 'files'] as const) for (const [k, v] of [...cache[m]].reverse()) (reversed[m] as Map<string, unknown>).set(k, v);
    expect(crawlDigest(reversed, '/d', labels)).toBe(crawlDigest(cache, '/d', labels));
    expect(() => crawlDigest(cache, '/d', new Map())).toThrow(/outside the data root/);
  });
});

describe('the crawl on awkward file systems', () => {
  it('does not wait on a FIFO where a run file should be, and reports it', async () => {
    const tree = mkdtempSync(join(tmpdir(), 'task-list-fifo-'));
    try {
      const agent = join(tree, 'os/t1/o4-mini-2025-04-16/perturbed_query_p1/iterative_refinement_m', `agent_${HAIKU}`);
      mkdirSync(agent, { recursive: true });
      execFileSync('mkfifo', [join(agent, 'refinement_summary.json')]);
      const r = await selectRuns({
        baseDir: { typed: 'tree', resolved: tree },
        domain: 'all',
        perturbationModel: 'o4-mini-2025-04-16',
        refinementModel: null,
        agent: HAIKU,
        dataFilter: null,
        humanAnnotationFilter: null,
      });
      expect(r.runs).toEqual([]);
      expect(r.problems.map((p) => p.message)).toEqual(['is not a regular file; run skipped']);
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  });

  it('reports a folder name that is not UTF-8, as the reference reads it', async () => {
    const tree = mkdtempSync(join(tmpdir(), 'task-list-badname-'));
    try {
      mkdirSync(join(tree, 'os'), { recursive: true });
      mkdirSync(Buffer.concat([Buffer.from(`${tree}/os/`), Buffer.from([0x74, 0xff, 0x31])]));
      const entries = nodeTreeIoSync.readDirSync(join(tree, 'os'));
      expect(entries).toEqual([{ name: 't\uFFFD1', kind: 'dir', badName: true }]);
      const r = await selectRuns({
        baseDir: { typed: 'tree', resolved: tree },
        domain: 'os',
        perturbationModel: 'o4-mini-2025-04-16',
        refinementModel: null,
        agent: HAIKU,
        dataFilter: null,
        humanAnnotationFilter: null,
      });
      expect(r.problems).toEqual([{ file: 'os', field: 't\uFFFD1', message: 'entry name is not valid UTF-8; skipped' }]);
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  });
});

describe('quickSummaryFields', () => {
  /** What selection reads of a summary when parsed as Python does. */
  const slow = (text: string) => {
    const v = pyJsonParse(text) as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const k of ['success', 'execution_iterations', 'final_score']) if (Object.hasOwn(v, k)) out[k] = v[k];
    return out;
  };
  const cases = [
    '{"success": true, "execution_iterations": 3, "final_score": 75.0}',
    '{"success": false, "execution_iterations": 1, "final_score": 75}',
    '{"final_score": -0.0, "success": true}',
    '{"final_score": -0, "success": true}',
    '{"final_score": 1e2, "execution_iterations": 2E1, "success": true}',
    '{"success": true, "final_score": null, "execution_iterations": "3"}',
    '{"success": true, "history": [{"final_score": 1.0}], "final_score": 1}',
    '{"success": true, "a": "final_score", "final_score": 2}',
    '{"success": true, "a": {"final_score": 2.0}, "final\\u005fscore": 2}',
    '{"success": true, "final_score": 12345678901234567890}',
    '{"success": true, "final_score": NaN}',
    '{"success": 1, "final_score": 3}',
    '{"success": true, "final_score": [1.0]}',
    '{"__proto__": 1, "success": true}',
    '{"success": true, "note": "caf\\u00e9", "final_score" : 9.5}',
  ];
  it('agrees with Python\'s reading wherever it answers, and declines otherwise', () => {
    let answered = 0;
    for (const text of cases) {
      const quick = quickSummaryFields(new TextEncoder().encode(text));
      if (quick === null) continue;
      answered++;
      expect(pyJsonDumps(quick), text).toBe(pyJsonDumps(slow(text)));
    }
    expect(answered).toBeGreaterThanOrEqual(7);
    // Declined: the slow path gives these their exact messages and values.
    expect(quickSummaryFields(new TextEncoder().encode('{"success": true, "final_score": NaN}'))).toBeNull();
    expect(quickSummaryFields(new TextEncoder().encode('{"success": true, "a": {"final_score": 2.0}, "final\\u005fscore": 2}'))).toBeNull();
    expect(quickSummaryFields(new Uint8Array([0x7b, 0xff, 0x7d]))).toBeNull();
  });
});

describe('overrides and the cache key', () => {
  const settings = () => selectionSettings(resolveAnalysis(loadPipeline(REPO), 'analysis'));
  it('accepts overrides that narrow the configured selection, and names the others', () => {
    const s = settings();
    expect(uncoveredOverrides(s, {})).toEqual([]);
    expect(uncoveredOverrides(s, { agent: HAIKU, domain: 'os', refinement_model: 'gpt-5', base_dir: s.root })).toEqual([]);
    expect(uncoveredOverrides(s, { agent: '', domain: '', refinement_model: '' })).toEqual([]);
    const named = uncoveredOverrides(s, {
      agent: 'computer-use-preview',
      base_dir: '/elsewhere',
      perturbation_model: 'gpt-4o',
      refinement_model: 'm_attempt_2',
      data_filter: 'other.json',
      output: 'copy.json',
    });
    expect(named).toHaveLength(6);
    expect(named.join('\n')).toMatch(/--output[\s\S]*--base_dir[\s\S]*--perturbation_model[\s\S]*--agent[\s\S]*--refinement_model[\s\S]*--data_filter/);
    // Narrowing to no filter reads less.
    expect(uncoveredOverrides({ ...s, baseline_harm_filter: 'f.json' }, { data_filter: '' })).toEqual([]);
    expect(uncoveredOverrides({ ...s, domains: ['os'] }, { domain: 'multi_apps_test' })).toHaveLength(1);
    expect(uncoveredOverrides({ ...s, domains: ['os'] }, { domain: 'all' })).toHaveLength(1);
  });

  it('builds the same options as the executor did before (flags over pipeline.yaml)', () => {
    const s = settings();
    const o = selectionOptions(s, { agent: HAIKU, domain: 'os' }, (p) => p);
    expect(o).toMatchObject({ baseDir: s.root, agents: [HAIKU], domains: ['os'], refinementModels: [null], dataFilter: null });
  });
});
