import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TargetConfiguration } from '@nx/devkit';
import { createNodes, globEscape, keyDescriptionOf, stageCodeOf } from '../executors/plugin.ts';
import { COMMAND_INFO, COMMANDS, STAGE_INFO, STAGES } from '../stages/registry.ts';

const REPO = resolve(import.meta.dirname, '..');

const pipeline = (extra = '') => `
data:
  root: examples/perturbed_queries
stages:
  cluster: { prompt: prompts/cluster.md }
${extra}
analyses:
  - name: alpha
    agents: [agent-a]
  - name: beta
    agents: [agent-b, agent-c]
`;

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

/** A workspace with this repository's code (linked): the plugin derives code inputs from it. */
function workspace(files: Record<string, string> = {}): string {
  const root = mkdtempSync(join(tmpdir(), 'plugin-'));
  dirs.push(root);
  if (Object.keys(files).length === 0) for (const dir of ['executors', 'stages']) symlinkSync(join(REPO, dir), join(root, dir), 'dir');
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), text);
  }
  return root;
}

async function nodesFor(yaml: string, root = workspace()) {
  writeFileSync(join(root, 'pipeline.yaml'), yaml);
  const [glob, fn] = createNodes;
  // The first sight of an analysis creates its folder and asks for a re-run.
  await expect((async () => fn(['pipeline.yaml'], { outDir: 'out' }, { workspaceRoot: root, nxJsonConfiguration: {} }))()).rejects.toThrow(/created analyses\/.*run the command again/);
  expect(glob).toBe('pipeline.yaml');
  const result = await fn(['pipeline.yaml'], { outDir: 'out' }, { workspaceRoot: root, nxJsonConfiguration: {} });
  return { root, projects: result[0]![1].projects! };
}

const runtimeOf = (target: { inputs?: unknown[] }) =>
  (target.inputs ?? []).find((i): i is { runtime: string } => typeof i === 'object' && i !== null && 'runtime' in i)?.runtime;

describe('createNodes', () => {
  it('infers one project per analysis with the five chained targets', async () => {
    const { root, projects } = await nodesFor(pipeline());
    expect(Object.keys(projects).sort()).toEqual(['analyses/alpha', 'analyses/beta']);
    const t = projects['analyses/alpha']!.targets!;
    expect(Object.keys(t)).toEqual(['task-list', 'summarize', 'categorize', 'cluster', 'report', 'plan', 'lock-taxonomy', 'export-summaries']);
    // Each target says what the registry says (stages/registry.ts; executors.json is checked against it in test/registry.test.ts).
    for (const s of STAGES) expect(t[s]!.metadata?.['description'], s).toBe(STAGE_INFO[s].description);
    for (const c of COMMANDS) expect(t[c]!.metadata?.['description'], c).toBe(COMMAND_INFO[c].description);
    // The commands around the chain are never cached: plan runs no stage, lock-taxonomy writes a committed file,
    // export-summaries a copy in the reference's layout that no target reads.
    expect(t['plan']).toMatchObject({ cache: false });
    expect(t['plan']!.dependsOn).toBeUndefined();
    expect(t['lock-taxonomy']).toMatchObject({ cache: false, dependsOn: ['categorize'] });
    expect(t['export-summaries']).toMatchObject({ cache: false, dependsOn: ['summarize'] });
    expect(t['export-summaries']!.outputs).toBeUndefined();
    // The taxonomy lock is an input of categorize and of the report (its baseline), not of summarize.
    expect(keyDescriptionOf(t['categorize']!)!.files).toContain('analyses/alpha/taxonomy.lock.json');
    expect(keyDescriptionOf(t['report']!)!.files).toContain('analyses/alpha/taxonomy.lock.json');
    expect(keyDescriptionOf(t['summarize']!)!.files).not.toContain('analyses/alpha/taxonomy.lock.json');
    expect(t['summarize']!.dependsOn).toEqual(['task-list']);
    expect(t['report']!.dependsOn).toEqual(['cluster']);
    // task-list is cached: its key holds a fingerprint of the data it reads (stages/input-record.ts).
    expect(t['task-list']!.cache).toBe(true);
    expect(t['task-list']!.dependsOn).toBeUndefined();
    expect(t['cluster']!.outputs).toEqual(['{workspaceRoot}/out/alpha/cluster']);
    expect(t['cluster']!.executor).toBe('./executors:cluster');
    // Nx needs a file in the project root; the plugin creates it.
    expect(existsSync(join(root, 'analyses/alpha/README.md'))).toBe(true);
  });

  it('keys each cached target on one runtime input (its record\'s digest), the upstream files it reads, and no lockfile view', async () => {
    const { projects } = await nodesFor(pipeline());
    const cluster = projects['analyses/alpha']!.targets!['cluster']!;
    expect(cluster.inputs).toEqual([
      { runtime: expect.stringMatching(/^node executors\/key\.mjs '/) },
      // Upstream outputs: only the files the stage reads, never the per-run files.
      { dependentTasksOutputFiles: '**/categorization.json', transitive: true },
      { externalDependencies: [] },
    ]);
    const d = keyDescriptionOf(cluster)!;
    expect(d).toMatchObject({ analysis: 'alpha', stage: 'cluster', outDir: 'out', files: ['prompts/cluster.md'], reads: [['categorize', 'categorization.json']], endpoint: null, selection: null });
    expect(d.settings).toMatch(/^[0-9a-f]{64}$/);
    // Options are hashed for all targets together: they must not carry stage settings.
    expect(cluster.options).toEqual({ analysis: 'alpha', outDir: 'out' });
  });

  it('keys the task list on its settings, the filter files and the selection its data fingerprint crawls, with no upstream', async () => {
    const { projects } = await nodesFor(pipeline('').replace('data:\n  root: examples/perturbed_queries', 'data:\n  root: /data/elsewhere\n  filters:\n    baseline_harm: task_filters/harm.json'));
    const t = projects['analyses/beta']!.targets!['task-list']!;
    const d = keyDescriptionOf(t)!;
    expect(d.selection).toEqual({
      root: '/data/elsewhere',
      agents: ['agent-b', 'agent-c'],
      domains: 'all',
      refinement_models: 'all',
      perturbation_model: 'o4-mini-2025-04-16',
      baseline_harm_filter: 'task_filters/harm.json',
      human_annotation_filter: null,
    });
    expect(d.files).toEqual(['task_filters/harm.json', '.nxignore', '.gitignore']);
    expect(d.reads).toEqual([]);
    expect((t.inputs ?? []).some((i) => typeof i === 'object' && i !== null && 'dependentTasksOutputFiles' in i)).toBe(false);
    expect(t.outputs).toEqual(['{workspaceRoot}/out/beta/task-list']);
  });

  it('derives each cached target\'s code from its executor: entry, schema, manifests, existing files, declared packages', async () => {
    const { root, projects } = await nodesFor(pipeline());
    const manifest = JSON.parse(readFileSync(join(REPO, 'executors/executors.json'), 'utf8')).executors as Record<string, { implementation: string; schema: string }>;
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
    const declared = new Set(Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }));
    const codeOf = stageCodeOf(root);
    for (const [name, target] of Object.entries(projects['analyses/alpha']!.targets!)) {
      if (target.cache !== true) continue;
      const d = keyDescriptionOf(target)!;
      const code = codeOf(name);
      const entry = manifest[name]!;
      for (const f of [entry.implementation, entry.schema, 'executors.json', 'package.json']) expect(code.files, name).toContain(join('executors', f));
      expect(d.code).toEqual(code.files);
      for (const f of code.files) expect(existsSync(join(root, f)), `${name}: ${f}`).toBe(true);
      // Plugin-only code is in no stage's closure: a comment there re-runs nothing.
      for (const f of ['executors/plugin.ts', 'executors/code-closure.ts', 'executors/key.mjs', 'executors/key.ts']) expect(code.files, name).not.toContain(f);
      // Packages: the closure's, sorted, declared in package.json (no Node builtins).
      expect(d.packages).toEqual(code.packages);
      expect(d.packages.length, name).toBeGreaterThan(0);
      expect(d.packages).toEqual([...d.packages].sort());
      for (const p of d.packages) expect(declared, `${name}: ${p}`).toContain(p);
    }
  });

  it('names every file pipeline.yaml names for a stage, wherever it lives, and the endpoint an LLM stage\'s environment decides', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'plugin-outside-'));
    dirs.push(outside);
    const yaml = `
data:
  root: examples/perturbed_queries
defaults: { provider: openai }
stages:
  cluster: { prompt: local/cluster.md }
  categorize: { resume_categorization_path: ${join(outside, 'resume.json')} }
analyses:
  - name: alpha
    agents: [agent-a]
`;
    const root = workspace();
    writeFileSync(join(root, '.gitignore'), 'local/\n');
    const t = (await nodesFor(yaml, root)).projects['analyses/alpha']!.targets!;
    expect(keyDescriptionOf(t['cluster']!)!.files).toEqual(['local/cluster.md']);
    // The assign prompt: read by the held-out check of a model (on by default).
    expect(keyDescriptionOf(t['categorize']!)!.files).toEqual(['prompts/categorize-create.md', 'prompts/categorize-update.md', 'prompts/categorize-assign.md', 'analyses/alpha/taxonomy.lock.json', join(outside, 'resume.json')]);
    for (const s of ['summarize', 'categorize', 'cluster']) expect(keyDescriptionOf(t[s]!)!.endpoint).toEqual({ provider: 'openai', base_url: null });
    expect(keyDescriptionOf(t['report']!)!.endpoint).toBeNull();
    // nx affected reads the plan's file inputs: pipeline.yaml, the named files in the workspace, the code.
    const affected = t['plan']!.inputs as string[];
    expect(affected).toContain('{workspaceRoot}/pipeline.yaml');
    expect(affected).toContain('{workspaceRoot}/local/cluster.md');
    expect(affected).toContain('{workspaceRoot}/stages/cluster/llm.ts');
    expect(affected.some((f) => f.includes('resume.json'))).toBe(false);
    expect(t['plan']!.cache).toBe(false);
  });

  it('escapes glob characters in the file names nx affected reads', () => {
    expect(globEscape('prompts/summarize[v2].md')).toBe('prompts/summarize\\[v2\\].md');
    expect(globEscape('p/{a,b}*?.md')).toBe('p/\\{a,b\\}\\*\\?.md');
  });

  it('follows the code: a file an executor starts to import becomes its input, and only its', async () => {
    const executors = Object.fromEntries(STAGES.map((s) => [s, { implementation: `./${s}/executor.ts`, schema: `./${s}/schema.json` }]));
    const files: Record<string, string> = {
      'executors/package.json': JSON.stringify({ executors: './executors.json' }),
      'executors/executors.json': JSON.stringify({ executors }),
      'stages/shared.ts': "import { z } from 'zod';\nexport const shared = z;",
      'stages/helper.ts': "export const helper = 1;\nexport const lazy = () => import('@scope/lazy-sdk/sub');",
      ...Object.fromEntries(STAGES.flatMap((s) => [
        [`executors/${s}/executor.ts`, "import { shared } from '../../stages/shared.ts';\nexport default async () => ({ success: !!shared });"],
        [`executors/${s}/schema.json`, '{}'],
      ])),
    };
    const before = (await nodesFor(pipeline(), workspace(files))).projects['analyses/alpha']!.targets!;
    files['executors/cluster/executor.ts'] = `import { helper } from '../../stages/helper.ts';\n${files['executors/cluster/executor.ts']}`;
    const after = (await nodesFor(pipeline(), workspace(files))).projects['analyses/alpha']!.targets!;
    for (const s of ['summarize', 'categorize', 'report']) expect(after[s]!.inputs).toEqual(before[s]!.inputs);
    const codeOf = (t: TargetConfiguration) => keyDescriptionOf(t)!.code;
    expect(codeOf(after['cluster']!).filter((f) => !codeOf(before['cluster']!).includes(f))).toEqual(['stages/helper.ts']);
    expect(keyDescriptionOf(before['cluster']!)!.packages).toEqual(['zod']);
    expect(keyDescriptionOf(after['cluster']!)!.packages).toEqual(['@scope/lazy-sdk', 'zod']);
  });

  it('changes only the edited stage\'s key description', async () => {
    const before = (await nodesFor(pipeline())).projects['analyses/alpha']!.targets!;
    const after = (await nodesFor(pipeline().replace('cluster: { prompt: prompts/cluster.md }', 'cluster: { prompt: prompts/cluster.md, temperature: 0.3 }'))).projects['analyses/alpha']!.targets!;
    expect(runtimeOf(after['cluster']!)).not.toBe(runtimeOf(before['cluster']!));
    for (const s of ['task-list', 'summarize', 'categorize', 'report']) expect(runtimeOf(after[s]!)).toBe(runtimeOf(before[s]!));
  });

  it('is deterministic', async () => {
    const a = (await nodesFor(pipeline())).projects;
    const b = (await nodesFor(pipeline())).projects;
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
  });

  it('fails with the config error when pipeline.yaml is invalid', async () => {
    const root = workspace();
    writeFileSync(join(root, 'pipeline.yaml'), pipeline('defaults: { provider: gpt }'));
    const [, fn] = createNodes;
    await expect((async () => fn(['pipeline.yaml'], {}, { workspaceRoot: root, nxJsonConfiguration: {} }))()).rejects.toThrow(/pipeline\.yaml: invalid configuration\n.*defaults\.provider/);
  });
});
