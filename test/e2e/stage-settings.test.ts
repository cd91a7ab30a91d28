// The invariant behind each stage's settings slice (`stageSettings` in
// stages/config.ts, whose digest is in its key record): a setting of
// pipeline.yaml that is not in a stage's slice must not change that stage's
// output. Otherwise editing that setting gives a stale cache hit.
//
// How: a throw-away workspace, the whole chain run once with a base
// pipeline.yaml (the real executors, in this process). Then every leaf of
// pipeline.yaml (taken from the zod schema, so a new setting cannot be
// forgotten: the first test fails until it has values here) is changed, one at
// a time, to each of a few other values. For each cached stage whose slice the
// change leaves as it was, the stage runs again alone under the changed
// pipeline.yaml, from scratch (empty response store, no previous output of its
// own) with the base upstream outputs in place, and its output folder must be
// byte-identical to the base run's (logs are not an output). A change that
// alters the slice needs no check: a new key is at worst a needless re-run.
//
// Twice: with the offline provider, and with the openai provider against a
// loopback fake (test/helpers/analyst-fake.ts), so that the settings only the
// LLM code reads (model, endpoint, key variable, concurrency, timeouts,
// retries, budget, batch sizes, chunking, resume file) really run.
//
// Executors read pipeline.yaml only through stageContext -> resolveAnalysis:
// a stage's output is a function of the resolved analysis (plus files), so a
// change whose resolved analysis was already run for a stage is not run again,
// and one that leaves the resolved analysis as it was ($schema, a second
// analysis) needs no run. Outside this test's reach by design: other data
// under data.root (task-list's data fingerprint, and the ledger's digests,
// carry it into every key) and the files named in pipeline.yaml (hashed by
// content in every key record that reads them: stages/input-record.ts).
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import categorize from '../../executors/categorize/executor.ts';
import cluster from '../../executors/cluster/executor.ts';
import report from '../../executors/report/executor.ts';
import summarize from '../../executors/summarize/executor.ts';
import taskList from '../../executors/task-list/executor.ts';
import { parsePipeline, pipelineJsonSchema, resolveAnalysis, stageSettings } from '../../stages/config.ts';
import type { PipelineFile, ResolvedAnalysis, StageName } from '../../stages/config.ts';
import { requestHash } from '../../stages/llm/store.ts';
import { analyst } from '../helpers/analyst-fake.ts';
import { startFakeProviderServer } from '../helpers/fake-provider-server.ts';
import type { FakeProviderServer } from '../helpers/fake-provider-server.ts';
import { readTree } from '../helpers/trees.ts';

const REPO = resolve(import.meta.dirname, '..', '..');
const NAME = 'small';
const HAIKU = 'claude-haiku-4-5-20251001';
const OPUS = 'claude-opus-4-5-20251101';
const KEY_VAR = 'STAGE_SETTINGS_TEST_KEY';

type Checked = StageName;
/** The cached stages: all of them. */
const CHECKED: readonly Checked[] = ['task-list', 'summarize', 'categorize', 'cluster', 'report'];
type Executor = (options: { analysis: string; outDir: string }, context: { root: string; projectName: string }) => Promise<{ success: boolean }>;
const EXECUTOR: Record<StageName, Executor> = { 'task-list': taskList, summarize, categorize, cluster, report };

type Base = 'offline' | 'openai';

/** What the values of a change may refer to. */
interface World {
  base: Base;
  /** Workspace root (absolute). */
  root: string;
  /** The fake server the openai base talks to, and a second one: another endpoint. */
  url: string;
  otherUrl: string;
}

// --- The leaves of pipeline.yaml, from its schema --------------------------------

/** Every leaf setting of pipeline.yaml as a key path (`analyses[].stages.summarize.model`), from the JSON Schema generated from the zod schema. */
function schemaLeaves(): string[] {
  type Node = { properties?: Record<string, Node>; type?: string; items?: Node; anyOf?: Node[] };
  const walk = (n: Node, path: string): string[] => {
    if (n.properties) return Object.entries(n.properties).flatMap(([k, v]) => walk(v, path ? `${path}.${k}` : k));
    if (n.type === 'array' && n.items?.properties) return walk(n.items, `${path}[]`);
    const objects = (n.anyOf ?? []).filter((x) => x.properties);
    if (objects.length > 0) return objects.flatMap((x) => walk(x, path));
    return [path];
  };
  return walk(JSON.parse(pipelineJsonSchema()) as Node, '');
}

/** Settings no change is made to, with the reason. */
const NOT_CHANGED: Record<string, string> = {
  'analyses[].name': 'the analysis is the Nx project: another name is another project, with its own outputs and keys',
};

/** Settings that never reach the resolved analysis, so no executor can see them. */
const NOT_RESOLVED = new Set(['$schema']);

const PROMPT_FILE: Record<string, string> = {
  'summarize.prompt': 'summarize.md',
  'prompts.create': 'categorize-create.md',
  'prompts.update': 'categorize-update.md',
  'prompts.assign': 'categorize-assign.md',
  'cluster.prompt': 'cluster.md',
};

/**
 * The values a setting is changed to (each one a separate change), or
 * undefined when this test does not know the setting yet. LLM settings are
 * known by their key wherever they are set (defaults, stages.<s>, an
 * analysis' stages.<s>). Values keep every stage working.
 */
function alternativesOf(leaf: string, w: World): unknown[] | undefined {
  switch (leaf) {
    case '$schema':
      return ['./another.schema.json'];
    case 'data.root':
      // The same data at another path: a link, and the absolute path. (Other data is
      // not a setting: the task-list ledger's digests carry it into every key.)
      return ['alt/data-link', join(w.root, 'data')];
    case 'data.perturbation_model':
      return ['o3-2025-04-16'];
    case 'data.filters.baseline_harm':
      return ['task_filters/data_filter_harm_threshold_0pct_example.json'];
    case 'data.filters.human_annotation':
      return ['task_filters/final_decisions_example.json'];
    case 'analyses[].description':
      return ['Another description.'];
    case 'budget.max_cost_usd':
      // A cap cannot change an answer: in no slice.
      return [1000];
    case 'analyses[].agents':
      return [[HAIKU, OPUS]];
    case 'analyses[].domains':
      return ['all'];
    case 'analyses[].refinement_models':
      return [['gpt-5-2025-08-07']];
    case 'analyses[].allow_empty_selection':
      return [true];
  }
  const promptKey = Object.keys(PROMPT_FILE).find((k) => leaf.endsWith(`.${k}`));
  if (promptKey) {
    // The same text at another path, and another text.
    return [`alt/same/${PROMPT_FILE[promptKey]}`, `alt/edited/${PROMPT_FILE[promptKey]}`];
  }
  // The held-out agreement check (stages.categorize.heldout.*): its fields are in categorize's slice.
  const heldout = /^(?:stages|analyses\[\]\.stages)\.categorize\.heldout\.(\w+)$/.exec(leaf);
  if (heldout) return ({ enabled: [false], fraction: [0.5], max_runs: [3], seed: ['another-seed'] } as Record<string, unknown[]>)[heldout[1] as string];
  if (!/^(defaults|stages\.\w+|analyses\[\]\.stages\.\w+)\.\w+$/.test(leaf)) return undefined;
  const key = leaf.slice(leaf.lastIndexOf('.') + 1);
  const values: Record<string, unknown[]> = {
    provider: [w.base === 'offline' ? 'openai' : 'offline'],
    model: ['gpt-5-nano'],
    temperature: [0.3],
    max_tokens: [1234],
    concurrency: [1],
    // Another server, and the same one written with a trailing slash.
    base_url: [`${w.otherUrl}/v1`, `${w.url}/v1/`],
    api_key_env: [KEY_VAR],
    timeout_s: [30],
    max_retries: [2],
    max_cost_usd: [1000],
    initial_batch_size: [7],
    iterative_batch_size: [4],
    // The base is sequential: the induce_assign settings are outside its slice and must not change its output.
    strategy: ['induce_assign'],
    induce_sample_size: [2],
    assign_batch_size: [3],
    resume_categorization_path: ['alt/resume.json'],
    max_prompt_chars: [2000],
    max_examples: [1],
    // Through the fake's batch endpoints; the throughput knobs of batch mode are in no slice.
    batch: [true],
    batch_poll_seconds: [1],
    batch_wait_minutes: [5],
  };
  return Object.hasOwn(values, key) ? values[key] : undefined;
}

interface Change {
  /** What is shown in a failure: `stages.report.max_examples = 1`. */
  label: string;
  file: PipelineFile;
}

function setAt(file: PipelineFile, leaf: string, value: unknown): PipelineFile {
  const out = structuredClone(file) as Record<string, unknown>;
  const keys = leaf.replace(/\[\]/g, '.0').split('.');
  let node = out;
  for (const k of keys.slice(0, -1)) {
    node[k] ??= {};
    node = node[k] as Record<string, unknown>;
  }
  node[keys.at(-1) as string] = value;
  return out as PipelineFile;
}

/** One change per leaf and value, plus a second analysis next to ours. */
function changesOf(baseFile: PipelineFile, w: World): Change[] {
  const changes: Change[] = [];
  for (const leaf of schemaLeaves()) {
    if (leaf in NOT_CHANGED) continue;
    for (const value of alternativesOf(leaf, w) ?? []) {
      changes.push({ label: `${leaf.replace('[]', '[0]')} = ${JSON.stringify(value)}`, file: setAt(baseFile, leaf, value) });
    }
  }
  const other = { name: 'other', agents: [OPUS], domains: ['os'], stages: { report: { max_examples: 9 }, summarize: { temperature: 0 } } };
  changes.push({ label: 'analyses[1] = another analysis', file: { ...baseFile, analyses: [...baseFile.analyses, other] } as PipelineFile });
  return changes;
}

// --- The workspace -----------------------------------------------------------------

function baseFileOf(w: World): PipelineFile {
  const analyses = [{ name: NAME, agents: [HAIKU], domains: ['os'] }];
  if (w.base === 'offline') return { data: { root: 'data' }, defaults: { provider: 'offline' }, analyses } as PipelineFile;
  return {
    data: { root: 'data' },
    defaults: { provider: 'openai', model: 'gpt-5-mini', base_url: `${w.url}/v1`, concurrency: 4, max_retries: 0, timeout_s: 20 },
    // Small batches: a create batch and several update batches on few runs.
    stages: { categorize: { initial_batch_size: 3, iterative_batch_size: 2 } },
    analyses,
  } as PipelineFile;
}

/** The first four tasks of the example data's os domain (a few runs: each base makes some 240 stage runs), prompts, filters, and the other files the changes name. */
function makeWorkspace(w: World): void {
  const src = join(REPO, 'examples/perturbed_queries/os');
  for (const t of readdirSync(src).sort().slice(0, 4)) cpSync(join(src, t), join(w.root, 'data/os', t), { recursive: true });
  cpSync(join(REPO, 'prompts'), join(w.root, 'prompts'), { recursive: true });
  cpSync(join(REPO, 'task_filters'), join(w.root, 'task_filters'), { recursive: true });
  mkdirSync(join(w.root, 'alt/same'), { recursive: true });
  mkdirSync(join(w.root, 'alt/edited'), { recursive: true });
  for (const f of readdirSync(join(REPO, 'prompts'))) {
    const text = readFileSync(join(REPO, 'prompts', f), 'utf8');
    writeFileSync(join(w.root, 'alt/same', f), text);
    writeFileSync(join(w.root, 'alt/edited', f), `${text.trimEnd()}\n\nBe brief.\n`);
  }
  symlinkSync(join(w.root, 'data'), join(w.root, 'alt/data-link'));
  mkdirSync(join(w.root, 'analyses', NAME), { recursive: true });
}

const outOf = (w: World, stage: StageName) => join(w.root, 'out', NAME, stage);

/** How two output folders (readTree) differ, in a few lines; '' when they do not. */
function difference(base: Record<string, string>, now: Record<string, string>): string {
  const lines: string[] = [];
  for (const f of [...new Set([...Object.keys(base), ...Object.keys(now)])].sort()) {
    const a = base[f];
    const b = now[f];
    if (a === b) continue;
    if (a === undefined) lines.push(`${f}: new file`);
    else if (b === undefined) lines.push(`${f}: missing`);
    else {
      const al = a.split('\n');
      const bl = b.split('\n');
      const i = al.findIndex((l, k) => l !== bl[k]);
      const at = i < 0 ? al.length : i;
      lines.push(`${f}:${at + 1}: base ${JSON.stringify((al[at] ?? '').trim().slice(0, 140))}, now ${JSON.stringify((bl[at] ?? '').trim().slice(0, 140))}`);
    }
  }
  return lines.slice(0, 4).join('; ') + (lines.length > 4 ? `; and ${lines.length - 4} more file(s)` : '');
}

const sliceKey = (a: ResolvedAnalysis, stage: StageName) => requestHash(stageSettings(a, stage));

let servers: FakeProviderServer[] = [];
const errors: string[] = [];

beforeAll(async () => {
  servers = await Promise.all([0, 1].map(() => startFakeProviderServer({ maxLifetimeMs: 300_000 })));
  for (const s of servers) s.handle(analyst().handler);
  vi.stubEnv('OPENAI_API_KEY', 'sk-stage-settings-test');
  vi.stubEnv(KEY_VAR, 'sk-stage-settings-test-other');
  vi.spyOn(console, 'log').mockImplementation(() => {});
  vi.spyOn(console, 'warn').mockImplementation(() => {});
  vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void errors.push(args.join(' ')));
});
afterAll(async () => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  await Promise.all(servers.map((s) => s.close()));
});

const world = (base: Base, root: string): World => ({ base, root, url: (servers[0] as FakeProviderServer).url, otherUrl: (servers[1] as FakeProviderServer).url });

describe('the settings slice of each stage', () => {
  it.each(['offline', 'openai'] as const)('every setting of pipeline.yaml is changed (%s): by a value that reaches the resolved analysis', (base) => {
    const w = world(base, '/nowhere');
    const leaves = schemaLeaves();
    expect(leaves.length).toBeGreaterThan(50);
    const unknown = leaves.filter((l) => !(l in NOT_CHANGED) && !alternativesOf(l, w)?.length);
    expect(unknown, 'settings of pipeline.yaml this test does not change: give them values in alternativesOf').toEqual([]);
    const baseFile = baseFileOf(w);
    const resolvedBase = JSON.stringify(resolveAnalysis(parsePipeline(YAML.stringify(baseFile), 'pipeline.yaml'), NAME));
    const idle = leaves.filter((l) => !(l in NOT_CHANGED) && !NOT_RESOLVED.has(l)).filter((l) =>
      (alternativesOf(l, w) ?? []).every((v) => JSON.stringify(resolveAnalysis(parsePipeline(YAML.stringify(setAt(baseFile, l, v)), 'pipeline.yaml'), NAME)) === resolvedBase),
    );
    expect(idle, 'settings whose every test value leaves the resolved analysis as it was (no executor would see the change)').toEqual([]);
  });

  it.each(['offline', 'openai'] as const)('a setting outside a stage\'s slice does not change its output (%s)', async (base) => {
    const root = mkdtempSync(join(tmpdir(), `stage-settings-${base}-`));
    try {
      const w = world(base, root);
      makeWorkspace(w);
      const baseFile = baseFileOf(w);
      const ctx = { root, projectName: NAME };
      const writeConfig = (file: PipelineFile) => writeFileSync(join(root, 'pipeline.yaml'), YAML.stringify(file));
      const resolved = (file: PipelineFile) => resolveAnalysis(parsePipeline(YAML.stringify(file), 'pipeline.yaml'), NAME);

      writeConfig(baseFile);
      for (const stage of CHECKED) {
        errors.length = 0;
        const res = await EXECUTOR[stage]({ analysis: NAME, outDir: 'out' }, ctx);
        expect(res.success, `base run of ${stage}: ${errors.join(' | ')}`).toBe(true);
      }
      const a0 = resolved(baseFile);
      const baseOut = new Map(CHECKED.map((s) => [s, readTree(outOf(w, s))]));
      mkdirSync(join(root, 'base-out'));
      // A resume file: the base categorization (the reference format).
      cpSync(join(outOf(w, 'categorize'), 'categorization.json'), join(root, 'alt/resume.json'));
      if (base === 'openai') expect(servers[0]?.requests.length, 'the openai base talks to the fake server').toBeGreaterThan(0);

      const failures: string[] = [];
      /** Per stage and resolved analysis already run: the changes behind it, and its failure (or ''). */
      const done = new Map<string, { stage: Checked; labels: string[]; failure: string }>();
      for (const change of changesOf(baseFile, w)) {
        const a = resolved(change.file);
        const key = JSON.stringify(a);
        if (key === JSON.stringify(a0)) continue; // no executor can tell it from the base
        writeConfig(change.file);
        for (const stage of CHECKED) {
          if (sliceKey(a, stage) !== sliceKey(a0, stage)) continue; // a new key: nothing to check
          const seen = done.get(`${stage} ${key}`);
          if (seen) {
            seen.labels.push(change.label);
            continue;
          }
          // From scratch: no stored answer, no previous output of its own (its carried answers).
          rmSync(join(root, '.cache'), { recursive: true, force: true });
          renameSync(outOf(w, stage), join(root, 'base-out', stage));
          errors.length = 0;
          const res = await EXECUTOR[stage]({ analysis: NAME, outDir: 'out' }, ctx);
          const failure = !res.success
            ? `is not in its settings slice, and the stage fails under it: ${errors.join(' | ').slice(0, 300)}`
            : difference(baseOut.get(stage) as Record<string, string>, readTree(outOf(w, stage)));
          done.set(`${stage} ${key}`, { stage, labels: [change.label], failure });
          rmSync(outOf(w, stage), { recursive: true, force: true });
          renameSync(join(root, 'base-out', stage), outOf(w, stage));
        }
      }
      for (const { stage, labels, failure } of done.values()) {
        if (!failure) continue;
        const what = `setting ${labels[0]}${labels.length > 1 ? ` (and the same change by ${labels.slice(1).join(', ')})` : ''}`;
        const why = failure.startsWith('is not in') ? failure : `changed the output but is not in its settings slice: ${failure}`;
        failures.push(`stage ${stage}: ${what} ${why}`);
      }
      // Each stage really ran under many changed settings (the harness did not skip them all).
      const checks = Object.fromEntries(CHECKED.map((s) => [s, [...done.values()].filter((d) => d.stage === s).length]));
      for (const s of CHECKED) expect(checks[s], `${s} runs under a changed pipeline.yaml`).toBeGreaterThan(30);
      expect(failures.join('\n')).toBe('');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 120_000);
});
