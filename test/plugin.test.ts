import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createNodes, stageCodeOf } from '../executors/plugin.ts';
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
const fileInputs = (target: { inputs?: unknown[] }) =>
  (target.inputs ?? []).filter((i): i is string => typeof i === 'string').map((i) => i.replace(/^\{workspaceRoot\}\//, ''));
const externalOf = (target: { inputs?: unknown[] }) =>
  (target.inputs ?? []).find((i): i is { externalDependencies: string[] } => typeof i === 'object' && i !== null && 'externalDependencies' in i)?.externalDependencies;

describe('createNodes', () => {
  it('infers one project per analysis with the five chained targets', async () => {
    const { root, projects } = await nodesFor(pipeline());
    expect(Object.keys(projects).sort()).toEqual(['analyses/alpha', 'analyses/beta']);
    const t = projects['analyses/alpha']!.targets!;
    expect(Object.keys(t)).toEqual(['task-list', 'summarize', 'categorize', 'cluster', 'report', 'plan', 'lock-taxonomy']);
    // Each target says what the registry says (stages/registry.ts; executors.json is checked against it in test/registry.test.ts).
    for (const s of STAGES) expect(t[s]!.metadata?.['description'], s).toBe(STAGE_INFO[s].description);
    for (const c of COMMANDS) expect(t[c]!.metadata?.['description'], c).toBe(COMMAND_INFO[c].description);
    // The commands around the chain are never cached: plan runs no stage, lock-taxonomy writes a committed file.
    expect(t['plan']).toMatchObject({ cache: false });
    expect(t['plan']!.dependsOn).toBeUndefined();
    expect(t['lock-taxonomy']).toMatchObject({ cache: false, dependsOn: ['categorize'] });
    // The taxonomy lock is an input of categorize and of the report (its baseline), not of summarize.
    expect(t['categorize']!.inputs).toContain('{workspaceRoot}/analyses/alpha/taxonomy.lock.json');
    expect(t['report']!.inputs).toContain('{workspaceRoot}/analyses/alpha/taxonomy.lock.json');
    expect(t['summarize']!.inputs).not.toContain('{workspaceRoot}/analyses/alpha/taxonomy.lock.json');
    expect(t['summarize']!.dependsOn).toEqual(['task-list']);
    expect(t['report']!.dependsOn).toEqual(['cluster']);
    // task-list is cached: its key holds a fingerprint of the data it reads (executors/task-list/fingerprint.ts).
    expect(t['task-list']!.cache).toBe(true);
    expect(t['task-list']!.dependsOn).toBeUndefined();
    expect(t['cluster']!.outputs).toEqual(['{workspaceRoot}/out/alpha/cluster']);
    expect(t['cluster']!.executor).toBe('./executors:cluster');
    // Nx needs a file in the project root; the plugin creates it.
    expect(existsSync(join(root, 'analyses/alpha/README.md'))).toBe(true);
  });

  it('declares precise inputs: own settings, own prompts, upstream outputs, own code, named packages', async () => {
    const { projects } = await nodesFor(pipeline());
    const cluster = projects['analyses/alpha']!.targets!['cluster']!;
    expect(cluster.inputs).toContain('{workspaceRoot}/prompts/cluster.md');
    expect(cluster.inputs).not.toContain('{workspaceRoot}/prompts/summarize.md');
    expect(cluster.inputs).not.toContain('{workspaceRoot}/pipeline.yaml');
    // Upstream outputs: only each stage's index file (one per stage), never the per-run files.
    expect(cluster.inputs).toContainEqual({ dependentTasksOutputFiles: '**/{runs,index,categorization,clusters}.json', transitive: true });
    expect(runtimeOf(cluster)).toMatch(/^echo cluster-settings-[0-9a-f]{32}$/);
    // Options are hashed for all targets together: they must not carry stage settings.
    expect(cluster.options).toEqual({ analysis: 'alpha', outDir: 'out' });
  });

  it('keys the task list on its settings, the filter files and a fingerprint of the data, with no upstream', async () => {
    const { projects } = await nodesFor(pipeline('').replace('data:\n  root: examples/perturbed_queries', 'data:\n  root: /data/elsewhere\n  filters:\n    baseline_harm: task_filters/harm.json'));
    const t = projects['analyses/beta']!.targets!['task-list']!;
    const runtimes = (t.inputs ?? []).filter((i): i is { runtime: string } => typeof i === 'object' && i !== null && 'runtime' in i).map((i) => i.runtime);
    expect(runtimes[0]).toMatch(/^echo task-list-settings-[0-9a-f]{32}$/);
    const fp = runtimes.find((r) => r.startsWith('node executors/task-list/fingerprint.ts '))!;
    // The selection settings, shell-quoted JSON: what the fingerprint crawls.
    expect(JSON.parse(fp.slice(fp.indexOf("'") + 1, -1))).toEqual({
      root: '/data/elsewhere',
      agents: ['agent-b', 'agent-c'],
      domains: 'all',
      refinement_models: 'all',
      perturbation_model: 'o4-mini-2025-04-16',
      baseline_harm_filter: 'task_filters/harm.json',
      human_annotation_filter: null,
    });
    expect(t.inputs).toContain('{workspaceRoot}/task_filters/harm.json');
    expect((t.inputs ?? []).some((i) => typeof i === 'object' && i !== null && 'dependentTasksOutputFiles' in i)).toBe(false);
    expect(t.outputs).toEqual(['{workspaceRoot}/out/beta/task-list']);
  });

  it('derives each cached target\'s code inputs from its executor: entry, schema, manifests, existing files, declared packages', async () => {
    const { root, projects } = await nodesFor(pipeline());
    const manifest = JSON.parse(readFileSync(join(REPO, 'executors/executors.json'), 'utf8')).executors as Record<string, { implementation: string; schema: string }>;
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
    const declared = new Set(Object.keys({ ...pkg.dependencies, ...pkg.devDependencies }));
    const codeOf = stageCodeOf(root);
    for (const [name, target] of Object.entries(projects['analyses/alpha']!.targets!)) {
      if (target.cache !== true) continue;
      const files = fileInputs(target);
      const code = codeOf(name);
      const entry = manifest[name]!;
      for (const f of [entry.implementation, entry.schema, 'executors.json', 'package.json']) expect(code.files, name).toContain(join('executors', f));
      // Every code file is a file input, and exists (a stale hand-kept path would not).
      for (const f of code.files) {
        expect(files, name).toContain(f);
        expect(existsSync(join(root, f)), `${name}: ${f}`).toBe(true);
      }
      // Packages: the closure's, sorted, declared in package.json (no Node builtins).
      const ext = externalOf(target)!;
      expect(ext).toEqual(code.packages);
      expect(ext.length, name).toBeGreaterThan(0);
      expect(ext).toEqual([...ext].sort());
      for (const p of ext) expect(declared, `${name}: ${p}`).toContain(p);
      // The Node version that runs the executor is part of the key.
      expect(target.inputs).toContainEqual({ runtime: 'node --version' });
    }
  });

  it('hashes every file pipeline.yaml names by content: file inputs in the workspace, a runtime digest elsewhere', async () => {
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
    const runtimes = (x: { inputs?: unknown[] }) => (x.inputs ?? []).filter((i): i is { runtime: string } => typeof i === 'object' && i !== null && 'runtime' in i).map((i) => i.runtime);
    // The ignored prompt and the absolute resume file are hashed by a runtime digest; Nx's file map would drop them.
    expect(runtimes(t['cluster']!)).toContain("node executors/hash-files.mjs 'local/cluster.md'");
    expect(runtimes(t['categorize']!)).toContain(`node executors/hash-files.mjs '${join(outside, 'resume.json')}'`);
    expect(t['categorize']!.inputs).toContain('{workspaceRoot}/prompts/categorize-create.md');
    // Where an openai provider sends its calls can come from the environment: a runtime input says where.
    for (const s of ['summarize', 'categorize', 'cluster']) expect(runtimes(t[s]!)).toContain('node executors/endpoint-input.ts openai');
    expect(runtimes(t['report']!).some((r) => r.includes('endpoint-input'))).toBe(false);
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
    expect(fileInputs(after['cluster']!).filter((f) => !fileInputs(before['cluster']!).includes(f))).toEqual(['stages/helper.ts']);
    expect(externalOf(before['cluster']!)).toEqual(['zod']);
    expect(externalOf(after['cluster']!)).toEqual(['@scope/lazy-sdk', 'zod']);
  });

  it('changes only the edited stage\'s settings input', async () => {
    const before = (await nodesFor(pipeline())).projects['analyses/alpha']!.targets!;
    const after = (await nodesFor(pipeline().replace('cluster: { prompt: prompts/cluster.md }', 'cluster: { prompt: prompts/cluster.md, temperature: 0.3 }'))).projects['analyses/alpha']!.targets!;
    expect(runtimeOf(after['cluster']!)).not.toBe(runtimeOf(before['cluster']!));
    for (const s of ['summarize', 'categorize', 'report']) expect(runtimeOf(after[s]!)).toBe(runtimeOf(before[s]!));
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
