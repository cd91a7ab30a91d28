import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createNodes } from '../executors/plugin.ts';

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

async function nodesFor(yaml: string) {
  const root = mkdtempSync(join(tmpdir(), 'plugin-'));
  dirs.push(root);
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
    expect(Object.keys(t)).toEqual(['task-list', 'summarize', 'categorize', 'cluster', 'report']);
    expect(t['summarize']!.dependsOn).toEqual(['task-list']);
    expect(t['report']!.dependsOn).toEqual(['cluster']);
    expect(t['task-list']!.cache).toBe(false);
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
    expect(cluster.inputs).toContainEqual({ dependentTasksOutputFiles: '**/*', transitive: true });
    expect(cluster.inputs).toContain('{workspaceRoot}/stages/cluster.ts');
    expect(cluster.inputs).toContain('{workspaceRoot}/executors/cluster/**/*');
    expect(cluster.inputs).toContainEqual({ externalDependencies: expect.arrayContaining(['openai', 'zod']) });
    expect(runtimeOf(cluster)).toMatch(/^echo cluster-settings-[0-9a-f]{32}$/);
    // Options are hashed for all targets together: they must not carry stage settings.
    expect(cluster.options).toEqual({ analysis: 'alpha', outDir: 'out' });
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
    const root = mkdtempSync(join(tmpdir(), 'plugin-'));
    dirs.push(root);
    writeFileSync(join(root, 'pipeline.yaml'), pipeline('defaults: { provider: gpt }'));
    const [, fn] = createNodes;
    await expect((async () => fn(['pipeline.yaml'], {}, { workspaceRoot: root, nxJsonConfiguration: {} }))()).rejects.toThrow(/pipeline\.yaml: invalid configuration\n.*defaults\.provider/);
  });
});
