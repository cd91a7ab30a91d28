// Proof that outputs do not depend on where the workspace lives: the same
// commit built by the real nx in workspaces at different depths gives the same
// bytes in every file under out/<analysis>/ (except logs/, which hold
// timestamps on purpose and are never an Nx output), with the data root
// workspace-relative and absolute; no output holds the workspace path, the
// user name or HOME; and a workspace restoring another's outputs from a shared
// Nx cache gets outputs that are right for it (links that resolve there, no
// "what changed" from someone else's history).
import { cpSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { homedir, tmpdir, userInfo } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyWorkspace } from '../../scripts/copy-workspace.ts';
import { cachedTargets, executedTargets, tempWorkspace } from './workspace.ts';
import type { TempWorkspace } from './workspace.ts';

const ANALYSIS = 'analysis';
const OUT = `out/${ANALYSIS}`;
const CACHEABLE = ['categorize', 'cluster', 'report', 'summarize', 'task-list'];

/** Every file under out/<analysis>/ except logs/, by path relative to it. */
function outputs(ws: TempWorkspace): Map<string, Buffer> {
  const dir = join(ws.root, OUT);
  const files = new Map<string, Buffer>();
  for (const rel of readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()) {
    const posixRel = rel.split('\\').join('/');
    if (posixRel === 'logs' || posixRel.startsWith('logs/')) continue;
    const abs = join(dir, rel);
    if (statSync(abs).isFile()) files.set(posixRel, readFileSync(abs));
  }
  return files;
}

function expectSameOutputs(a: TempWorkspace, b: TempWorkspace): Map<string, Buffer> {
  const fa = outputs(a);
  const fb = outputs(b);
  expect([...fb.keys()]).toEqual([...fa.keys()]);
  for (const [rel, bytes] of fa) expect(fb.get(rel)?.equals(bytes), `${OUT}/${rel} differs between ${a.root} and ${b.root}`).toBe(true);
  // Sanity: the comparison covered every target's output.
  for (const t of ['task-list', ...CACHEABLE]) expect([...fa.keys()].some((k) => k.startsWith(`${t}/`)), `${t} output`).toBe(true);
  return fa;
}

/** Needles that must not occur in any output: where the workspace lives, who ran it, their HOME. */
function leaks(text: string, roots: string[]): string[] {
  const found: string[] = [];
  for (const r of roots) if (text.includes(r)) found.push(r);
  const home = homedir();
  if (home.length > 1 && new RegExp(`${escapeRe(home)}(?=[/\\\\"'\\s<]|$)`).test(text)) found.push(`HOME ${home}`);
  const user = userInfo().username;
  // As a path component or a login, not as a word ("data root" is no leak when the user is root).
  if (new RegExp(`[/\\\\]${escapeRe(user)}(?=[/\\\\"'\\s<]|$)|(^|[^\\w.-])${escapeRe(user)}@|~${escapeRe(user)}\\b`).test(text)) found.push(`user ${user}`);
  return found;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function expectNoLeaks(files: Map<string, Buffer>, roots: string[]): void {
  for (const [rel, bytes] of files) expect(leaks(bytes.toString('utf8'), roots), `${OUT}/${rel}`).toEqual([]);
}

/** Run links of the HTML report. */
function runLinks(ws: TempWorkspace): { folder: string; href: string | null }[] {
  const html = ws.read(`${OUT}/report/report.html`);
  const m = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html);
  return (JSON.parse((m as RegExpExecArray)[1] as string) as { runs: { folder: string; href: string | null }[] }).runs;
}

function build(ws: TempWorkspace): void {
  const res = ws.nx(['run', `${ANALYSIS}:report`]);
  expect(res.code, res.out).toBe(0);
  expect(executedTargets(res.out)).toEqual(['task-list', 'summarize', 'categorize', 'cluster', 'report']);
}

let base: string;
let dataBase: string;
/** One snapshot of the source tree that every workspace here copies: "the same commit", even while the repository is being edited. */
let snapshot: string;
const spaces: TempWorkspace[] = [];
const ws = (dir: string, nxDir?: string) => {
  const w = tempWorkspace({ dir: join(base, dir), from: snapshot, ...(nxDir ? { nxDir } : {}) });
  spaces.push(w);
  return w;
};

beforeAll(() => {
  base = realpathSync(mkdtempSync(join(tmpdir(), 'meta-analysis-location-')));
  dataBase = realpathSync(mkdtempSync(join(tmpdir(), 'meta-analysis-location-data-')));
  snapshot = join(dataBase, 'snapshot');
  copyWorkspace(snapshot, { linkNodeModules: false });
});
afterAll(() => {
  for (const w of spaces) w.dispose();
  rmSync(base, { recursive: true, force: true });
  rmSync(dataBase, { recursive: true, force: true });
});

describe('outputs do not depend on where the workspace lives', () => {
  let a: TempWorkspace;

  it('workspace-relative data root: same bytes at /x/a and /y/b/c/d, no path, user or HOME in them', () => {
    a = ws('x/a');
    const b = ws('y/b/c/d');
    build(a);
    build(b);
    const files = expectSameOutputs(a, b);
    expectNoLeaks(files, [a.root, b.root, base, snapshot]);
    // The links are relative, from out/<analysis>/report/ to the run folders, and resolve in each workspace.
    for (const w of [a, b]) {
      const links = runLinks(w);
      expect(links.length).toBe(117);
      for (const l of links) {
        expect(l.href?.startsWith('../../../examples/perturbed_queries/')).toBe(true);
        const target = resolve(w.root, OUT, 'report', decodeURIComponent(l.href as string));
        expect(readdirSync(target)).toContain('refinement_summary.json');
        expect(relative(w.root, target)).toBe(`examples/perturbed_queries/${l.folder}`);
      }
    }
  });

  it('absolute data root outside the workspaces: same bytes at both depths, links by file:// URL', () => {
    const data = join(dataBase, 'perturbed_queries');
    cpSync(join(snapshot, 'examples/perturbed_queries'), data, { recursive: true });
    const c = ws('abs/x/a');
    const d = ws('abs/y/b/c/d');
    for (const w of [c, d]) w.write('pipeline.yaml', w.read('pipeline.yaml').replace(/^( {2}root:) .*$/m, `$1 ${data}`));
    expect(c.read('pipeline.yaml')).toContain(`root: ${data}\n`);
    build(c);
    build(d);
    const files = expectSameOutputs(c, d);
    expectNoLeaks(files, [c.root, d.root, base, snapshot]);
    for (const l of runLinks(c)) {
      expect(l.href).toBe(`file://${`${data}/${l.folder}`.split('/').map(encodeURIComponent).join('/')}`);
      expect(readdirSync(new URL(l.href as string))).toContain('refinement_summary.json');
    }
  });

  it('a workspace elsewhere restores every target from a shared cache, and the restored links resolve there', () => {
    const shared = ws('shared/p/q/r/s/t', a.nxDir);
    const res = shared.nx(['run', `${ANALYSIS}:report`]);
    expect(res.code, res.out).toBe(0);
    expect(cachedTargets(res.out).sort()).toEqual(CACHEABLE);
    expectSameOutputs(a, shared);
    for (const l of runLinks(shared)) {
      expect(readdirSync(resolve(shared.root, OUT, 'report', decodeURIComponent(l.href as string)))).toContain('refinement_summary.json');
    }
  });

  it('with one shared cache, a workspace with a committed lock and one without each get their own report', () => {
    const locked = ws('locked/k', a.nxDir);
    const lockRes = locked.nx(['run', `${ANALYSIS}:lock-taxonomy`]);
    expect(lockRes.code, lockRes.out).toBe(0);
    const res = locked.nx(['run', `${ANALYSIS}:report`]);
    expect(res.code, res.out).toBe(0);
    expect(executedTargets(res.out)).toContain('report');
    const md = locked.read(`${OUT}/report/report.md`);
    expect(md).toContain(`## What changed\n\nCompared with the taxonomy lock (analyses/${ANALYSIS}/taxonomy.lock.json).\n`);
    expect(md).toContain('Nothing changed: the same runs in the same categories as the taxonomy lock.');
    expect(md).toContain('Clusters are not compared: the taxonomy lock has no cluster information.');
    expect(JSON.parse(locked.read(`${OUT}/report/report-data.json`)).baseline).toMatchObject({ source: `analyses/${ANALYSIS}/taxonomy.lock.json`, clusters: null });
    // A workspace without the lock, on the same cache, restores the lock-less report.
    const plain = ws('plain/m/n', a.nxDir);
    const again = plain.nx(['run', `${ANALYSIS}:report`]);
    expect(again.code, again.out).toBe(0);
    expect(cachedTargets(again.out)).toContain('report');
    expect(plain.read(`${OUT}/report/report.md`)).not.toContain('What changed');
    expect(plain.read(`${OUT}/report/report.md`)).toBe(a.read(`${OUT}/report/report.md`));
  });

  it('a re-run after the data changed says nothing about "what changed" without a taxonomy lock', () => {
    // Before, the report compared itself with its own previous output, which a
    // shared cache then handed to other clones; now only a committed lock is a baseline.
    const ledger = JSON.parse(a.read(`${OUT}/task-list/runs.json`)) as { runs: { refinement_summary_path: string }[] };
    const first = ledger.runs[0] as { refinement_summary_path: string };
    rmSync(join(a.root, 'examples/perturbed_queries', first.refinement_summary_path, '..'), { recursive: true });
    const res = a.nx(['run', `${ANALYSIS}:report`]);
    expect(res.code, res.out).toBe(0);
    expect(executedTargets(res.out)).toContain('report');
    expect(JSON.parse(a.read(`${OUT}/report/report-data.json`)).coverage.in_task_list).toBe(116);
    expect(a.read(`${OUT}/report/report.md`)).not.toContain('What changed');
    expect(JSON.parse(a.read(`${OUT}/report/report-data.json`)).baseline).toBeNull();
  });
});
