// Symbolic links in the data tree: one leaving the data root is not followed
// and one that loops is not silently dropped; both are listed as problems, and
// the crawl (the cache fingerprint) reads nothing outside the data root.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import taskList from '../executors/task-list/executor.ts';
import { selectionFingerprint } from '../stages/task-list/analysis.ts';

const REPO = resolve(import.meta.dirname, '..');
const HAIKU = 'claude-haiku-4-5-20251001';
let root: string;

interface Ledger {
  runs: { run_id: string; agent: string; refinement_summary_path: string }[];
  problems: { file: string; message: string }[];
}
const ledger = () => JSON.parse(readFileSync(join(root, 'out/links/task-list/runs.json'), 'utf8')) as Ledger;
const run = () => taskList({ analysis: 'links' }, { root, projectName: 'links' });
const fingerprint = () =>
  selectionFingerprint({
    baseDir: 'data',
    resolve: (p) => resolve(root, p),
    agents: [HAIKU],
    domains: ['all'],
    refinementModels: [null],
    perturbationModel: 'o4-mini-2025-04-16',
    dataFilter: null,
    humanAnnotationFilter: null,
  });

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'task-list-links-'));
  cpSync(join(REPO, 'examples/perturbed_queries'), join(root, 'data'), { recursive: true });
  cpSync(join(REPO, 'prompts'), join(root, 'prompts'), { recursive: true });
  writeFileSync(join(root, 'pipeline.yaml'), `data:\n  root: data\nanalyses:\n  - name: links\n    agents: [${HAIKU}]\n`);
  vi.stubEnv('META_ANALYSIS_STRICT_CRAWL', '1');
  vi.spyOn(console, 'log').mockImplementation(() => {});
  vi.spyOn(console, 'error').mockImplementation(() => {});
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  rmSync(root, { recursive: true, force: true });
});

describe('symbolic links in the data tree', () => {
  it('does not follow a link leaving the data root, lists it, and keeps the fingerprint blind to its target', async () => {
    expect(await run()).toEqual({ success: true });
    const base = ledger();
    const first = base.runs[0]!;
    const taskDir = join(root, 'data', first.refinement_summary_path.split('/').slice(0, 2).join('/'));
    // A whole task outside the data root, linked in under a new name.
    cpSync(taskDir, join(root, 'outside', 'task'), { recursive: true });
    symlinkSync(join(root, 'outside', 'task'), join(dirname(taskDir), 'linked-task'));
    // A run file that is a link to a file outside.
    writeFileSync(join(root, 'outside', 'summary.json'), '{"success": true}');
    const second = base.runs[1]!;
    const summary = join(root, 'data', second.refinement_summary_path);
    rmSync(summary);
    symlinkSync(join(root, 'outside', 'summary.json'), summary);

    expect(await run()).toEqual({ success: true });
    const after = ledger();
    expect(after.runs).toHaveLength(base.runs.length - 1);
    expect(after.runs.map((r) => r.run_id)).not.toContain(second.run_id);
    const domain = first.refinement_summary_path.split('/')[0]!;
    expect(after.problems).toContainEqual({ file: `${domain}/linked-task`, message: 'symbolic link leaving the data root; not followed' });
    expect(after.problems).toContainEqual({ file: second.refinement_summary_path, message: 'symbolic link leaving the data root; not followed' });

    const fp = await fingerprint();
    writeFileSync(join(root, 'outside', 'summary.json'), '{"success": false, "more": 1}');
    writeFileSync(join(root, 'outside', 'task', 'extra.txt'), 'x');
    expect(await fingerprint()).toBe(fp);
  });

  it('lists a link loop (an agent folder linking to an ancestor, two links to each other) as a problem', async () => {
    expect(await run()).toEqual({ success: true });
    const base = ledger();
    const victim = base.runs[2]!;
    const agentDir = dirname(join(root, 'data', victim.refinement_summary_path));
    rmSync(agentDir, { recursive: true });
    symlinkSync('..', agentDir);
    const domainDir = join(root, 'data', victim.refinement_summary_path.split('/')[0]!);
    symlinkSync('loop-b', join(domainDir, 'loop-a'));
    symlinkSync('loop-a', join(domainDir, 'loop-b'));
    mkdirSync(join(root, 'data', 'sub'));
    symlinkSync('..', join(root, 'data', 'sub', 'up'));

    expect(await run()).toEqual({ success: true });
    const after = ledger();
    expect(after.runs).toHaveLength(base.runs.length - 1);
    const loops = after.problems.filter((p) => p.message.startsWith('symbolic link loop')).map((p) => p.file);
    const agentRel = dirname(victim.refinement_summary_path);
    const domain = victim.refinement_summary_path.split('/')[0]!;
    expect(loops).toEqual(expect.arrayContaining([agentRel, `${domain}/loop-a`, `${domain}/loop-b`, 'sub/up']));
  });

  it('follows a link that stays inside the data root', async () => {
    expect(await run()).toEqual({ success: true });
    const base = ledger();
    const r = base.runs[0]!;
    const summary = join(root, 'data', r.refinement_summary_path);
    cpSync(summary, join(root, 'data', 'kept.json'));
    rmSync(summary);
    symlinkSync(join(root, 'data', 'kept.json'), summary);
    expect(await run()).toEqual({ success: true });
    expect(ledger().runs.map((x) => x.run_id)).toEqual(base.runs.map((x) => x.run_id));
  });
});
