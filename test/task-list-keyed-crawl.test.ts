// task-list selects from the crawl its key fingerprinted (task-list/keyed-crawl.ts):
// the key (executors/key.ts, as Nx runs it) leaves its crawl next to its
// record, and the executor, keyed with that record, selects from it instead
// of crawling the tree again. The output is the one a crawl of the same data
// gives; a crawl left for another record, or a damaged one, is not used.
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { printKey } from '../executors/key.ts';
import taskList from '../executors/task-list/executor.ts';
import { loadPipeline, resolveAnalysis } from '../stages/config.ts';
import { keyedCrawlFile } from '../stages/keyed-record.ts';
import { describeStage } from '../stages/stage-inputs.ts';

const REPO = resolve(import.meta.dirname, '..');
let root: string;
let errors: string[];

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'task-list-keyed-'));
  cpSync(join(REPO, 'examples/perturbed_queries'), join(root, 'data'), { recursive: true });
  cpSync(join(REPO, 'prompts'), join(root, 'prompts'), { recursive: true });
  writeFileSync(join(root, 'pipeline.yaml'), 'data:\n  root: data\nanalyses:\n  - name: both\n    agents: [claude-haiku-4-5-20251001, claude-opus-4-5-20251101]\n    domains: all\n');
  vi.stubEnv('META_ANALYSIS_STRICT_CRAWL', '1');
  errors = [];
  vi.spyOn(console, 'log').mockImplementation(() => {});
  vi.spyOn(console, "error").mockImplementation((m: unknown) => void errors.push(String(m)));
  vi.spyOn(console, "warn").mockImplementation((m: unknown) => void errors.push(String(m)));
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  rmSync(root, { recursive: true, force: true });
});

const ctx = () => ({ root, projectName: 'both' });
const description = (code = ['stages/task-list/stage.ts']) => ({ ...describeStage(resolveAnalysis(loadPipeline(root), 'both'), 'task-list', 'out'), code, packages: [] });
const crawlFile = () => keyedCrawlFile(root, { analysis: 'both', stage: 'task-list' });
const output = () => Object.fromEntries(readdirSync(join(root, 'out/both/task-list')).sort().map((n) => [n, readFileSync(join(root, 'out/both/task-list', n), 'utf8')]));

/** The key as Nx runs it (its record and crawl left in .cache/keys), then the executor keyed with it. */
async function keyThenRun(between: () => void = () => {}): Promise<{ success: boolean }> {
  vi.stubEnv('NX_TASK_HASH', '');
  await printKey(JSON.stringify(description()), null, root);
  between();
  vi.stubEnv('NX_TASK_HASH', 'test');
  return taskList({ analysis: 'both' }, ctx());
}

/** A run the sample selects, by its summary file (relative to the data root). */
function aSelectedRun(): string {
  const ledger = JSON.parse(readFileSync(join(root, 'out/both/task-list/runs.json'), 'utf8'));
  return ledger.runs[7].refinement_summary_path as string;
}

describe('task-list selects from the crawl its key fingerprinted', () => {
  it('gives the output a crawl of the same data gives', async () => {
    expect(await taskList({ analysis: 'both' }, ctx())).toEqual({ success: true });
    const crawled = output();
    expect(await keyThenRun()).toEqual({ success: true });
    expect(readFileSync(crawlFile()).length).toBeGreaterThan(0);
    const { ['inputs.json']: record, ...rest } = output();
    expect(JSON.parse(record as string).data).toMatch(/^[0-9a-f]{64}$/);
    expect(rest).toEqual(crawled);
  });

  it('selects the data the key hashed, not what the tree holds when the executor runs', async () => {
    expect(await taskList({ analysis: 'both' }, ctx())).toEqual({ success: true });
    const gone = aSelectedRun();
    const before = output()['runs.json'];
    // The run's file disappears after the key hashed it: the output is the hashed data's, and matches the key.
    expect(await keyThenRun(() => rmSync(join(root, 'data', gone)))).toEqual({ success: true });
    expect(output()['runs.json']).toBe(before);
  });

  it('crawls itself when the crawl left is for another record, or damaged (then a change after hashing fails the stage)', async () => {
    expect(await taskList({ analysis: 'both' }, ctx())).toEqual({ success: true });
    const gone = aSelectedRun();
    // Another record over the same data (other code): its crawl gives the same fingerprint, but is not this record's.
    await printKey(JSON.stringify(description(['stages/task-list/select.ts'])), null, root);
    const otherCrawl = readFileSync(crawlFile());
    const res = await keyThenRun(() => {
      writeFileSync(crawlFile(), otherCrawl);
      rmSync(join(root, 'data', gone));
    });
    expect(res).toEqual({ success: false });
    expect(errors.join('\n')).toContain('changed after Nx hashed it');

    cpSync(join(REPO, 'examples/perturbed_queries'), join(root, 'data'), { recursive: true });
    const damaged = await keyThenRun(() => {
      const bytes = readFileSync(crawlFile());
      writeFileSync(crawlFile(), bytes.subarray(0, bytes.length >> 1));
      rmSync(join(root, 'data', gone));
    });
    expect(damaged).toEqual({ success: false });
  });
});
