// The local Nx plugin: reads pipeline.yaml and infers one Nx project per
// analysis, with the targets task-list -> summarize -> categorize -> cluster -> report.
//
// Hashing rules that make the cache correct (checked on Nx 24):
// - Nx hashes the options of all targets of a project together, so per-stage
//   settings go into a per-stage `runtime` input (an `echo` of the hash of that
//   stage's resolved settings), never into `options`.
// - Downstream targets see upstream results only through
//   `dependentTasksOutputFiles` (transitive), which also hashes gitignored files.
// - A local executor's source is not hashed unless listed: each stage lists its
//   own code and the shared libraries it imports.
// - Without `externalDependencies`, a local executor hashes the whole lockfile.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { CreateNodes, CreateNodesResult, TargetConfiguration } from '@nx/devkit';
import { loadPipeline, resolveAnalysis, stagePromptFiles, stageSettings, STAGES } from '../stages/config.ts';
import type { ResolvedAnalysis, StageName } from '../stages/config.ts';
import { requestHash } from '../stages/llm/store.ts';

export interface PluginOptions {
  /** Folder (workspace-relative) under which each analysis writes `<name>/<target>/`. */
  outDir?: string;
}

interface NormalizedOptions {
  outDir: string;
}

export function normalizeOptions(options: PluginOptions | undefined): NormalizedOptions {
  return { outDir: (options?.outDir ?? 'out').replace(/\/+$/, '') };
}

const DEPENDS_ON: Record<StageName, StageName | null> = {
  'task-list': null,
  summarize: 'task-list',
  categorize: 'summarize',
  cluster: 'categorize',
  report: 'cluster',
};

const DESCRIPTIONS: Record<StageName, string> = {
  'task-list': 'Select the successful elicitation runs (one reference-format task list per agent). Always runs; output is byte-identical when nothing changed.',
  summarize: 'Summarize each run: how the perturbation changed the instruction and why it led to harm. One file per run.',
  categorize: 'Group the summaries into benign-input vulnerability categories with trigger phrases.',
  cluster: 'Merge the categories into higher-level clusters.',
  report: 'Write the Markdown report with statistics, ranked clusters and coverage.',
};

/** Shared code every stage imports. */
const SHARED_CODE = [
  '{workspaceRoot}/stages/config.ts',
  '{workspaceRoot}/stages/formats.ts',
  '{workspaceRoot}/stages/util/**/*.ts',
  '{workspaceRoot}/stages/ledger.ts',
  '{workspaceRoot}/executors/lib/**/*.ts',
  '{workspaceRoot}/executors/package.json',
  '{workspaceRoot}/executors/executors.json',
];

/** Code of each stage beyond the shared part. */
const STAGE_CODE: Record<StageName, string[]> = {
  'task-list': ['{workspaceRoot}/stages/task-list.ts'],
  summarize: ['{workspaceRoot}/stages/summarize.ts', '{workspaceRoot}/stages/offline/**/*.ts', '{workspaceRoot}/stages/llm/**/*.ts'],
  categorize: ['{workspaceRoot}/stages/categorize.ts', '{workspaceRoot}/stages/offline/**/*.ts', '{workspaceRoot}/stages/llm/**/*.ts'],
  cluster: ['{workspaceRoot}/stages/cluster.ts', '{workspaceRoot}/stages/offline/**/*.ts', '{workspaceRoot}/stages/llm/**/*.ts'],
  report: ['{workspaceRoot}/stages/report/**/*.ts', '{workspaceRoot}/stages/report.ts'],
};

const EXTERNAL_DEPS: Record<StageName, string[]> = {
  'task-list': ['yaml', 'zod'],
  summarize: ['yaml', 'zod', 'openai', '@anthropic-ai/sdk', '@anthropic-ai/bedrock-sdk', 'p-limit'],
  categorize: ['yaml', 'zod', 'openai', '@anthropic-ai/sdk', '@anthropic-ai/bedrock-sdk', 'p-limit'],
  cluster: ['yaml', 'zod', 'openai', '@anthropic-ai/sdk', '@anthropic-ai/bedrock-sdk', 'p-limit'],
  report: ['yaml', 'zod'],
};

/** `{workspaceRoot}/...` for a workspace-relative path; null for paths outside the workspace. */
function workspaceInput(path: string): string | null {
  if (isAbsolute(path) || path.startsWith('..')) return null;
  return `{workspaceRoot}/${path.replace(/^\.\//, '')}`;
}

export function outputDir(opts: NormalizedOptions, analysis: string, stage: StageName): string {
  return `${opts.outDir}/${analysis}/${stage}`;
}

/** The targets of one analysis: a pure function of the resolved settings. */
export function buildTargets(a: ResolvedAnalysis, opts: NormalizedOptions): Record<string, TargetConfiguration> {
  const targets: Record<string, TargetConfiguration> = {};
  for (const stage of STAGES) {
    const settingsHash = requestHash(stageSettings(a, stage)).slice(0, 32);
    const upstream = DEPENDS_ON[stage];
    const target: TargetConfiguration = {
      executor: `./executors:${stage}`,
      options: { analysis: a.name, outDir: opts.outDir },
      outputs: [`{workspaceRoot}/${outputDir(opts, a.name, stage)}`],
      metadata: { description: DESCRIPTIONS[stage], technologies: ['meta-analysis'] },
    };
    if (upstream) target.dependsOn = [upstream];
    if (stage === 'task-list') {
      // The data root may live outside the workspace, where Nx cannot see it:
      // selection is cheap, so it always runs and rewrites identical bytes.
      target.cache = false;
    } else {
      const files = [
        ...stagePromptFiles(a, stage).map(workspaceInput),
        ...(stage === 'categorize' && a.categorize.resume_categorization_path ? [workspaceInput(a.categorize.resume_categorization_path)] : []),
      ].filter((x): x is string => x !== null);
      target.cache = true;
      target.inputs = [
        { runtime: `echo ${stage}-settings-${settingsHash}` },
        ...[...new Set(files)].sort(),
        { dependentTasksOutputFiles: '**/*', transitive: true },
        ...[...SHARED_CODE, ...STAGE_CODE[stage], `{workspaceRoot}/executors/${stage}/**/*`].sort(),
        { externalDependencies: [...EXTERNAL_DEPS[stage]].sort() },
      ];
    }
    targets[stage] = target;
  }
  return targets;
}

/**
 * Nx only knows a project whose root folder holds at least one file, and it
 * lists the workspace's files before plugins run. Analyses are declared in
 * pipeline.yaml, so their folder is created on first sight, with a README
 * that points at the outputs; returns true when it had to be created.
 */
function ensureProjectFolder(workspaceRoot: string, name: string, opts: NormalizedOptions): boolean {
  const dir = join(workspaceRoot, 'analyses', name);
  const readme = join(dir, 'README.md');
  if (existsSync(readme)) return false;
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    readme,
    `# Analysis \`${name}\`\n\nDeclared in \`pipeline.yaml\`; this folder only gives Nx a project root.\n` +
      `Outputs are written to \`${opts.outDir}/${name}/<target>/\`. Run \`npx nx run ${name}:report\`.\n`,
  );
  return true;
}

export class NewAnalysisFolderError extends Error {
  override name = 'NewAnalysisFolderError';
}

export const createNodes: CreateNodes<PluginOptions> = [
  'pipeline.yaml',
  (configFiles, options, context) => {
    const opts = normalizeOptions(options);
    return configFiles.map((file) => {
      const cfg = loadPipeline(context.workspaceRoot, file);
      const projects: CreateNodesResult['projects'] = {};
      const created = cfg.analyses.filter((a) => ensureProjectFolder(context.workspaceRoot, a.name, opts)).map((a) => a.name);
      if (created.length > 0) {
        // Nx would otherwise fail later with a bare "project ... not found".
        throw new NewAnalysisFolderError(
          `${file}: created ${created.map((n) => `analyses/${n}/README.md`).join(', ')} as the project folder of the new ` +
            `analysis ${created.map((n) => `"${n}"`).join(', ')}. Nx lists files before it reads pipeline.yaml: run the command again.`,
        );
      }
      for (const analysis of cfg.analyses) {
        const resolved = resolveAnalysis(cfg, analysis.name);
        projects[`analyses/${analysis.name}`] = {
          name: analysis.name,
          root: `analyses/${analysis.name}`,
          projectType: 'application',
          tags: ['meta-analysis'],
          targets: buildTargets(resolved, opts),
        };
      }
      return [file, { projects }] as const;
    });
  },
];

/** Nx 24 still reads the deprecated name from some code paths. */
export const createNodesV2 = createNodes;
