// The local Nx plugin: reads pipeline.yaml and infers one Nx project per
// analysis, with the targets task-list -> summarize -> categorize -> cluster -> report.
//
// Hashing rules that make the cache correct (checked on Nx 24):
// - Nx hashes the options of all targets of a project together, so per-stage
//   settings go into a per-stage `runtime` input (an `echo` of the hash of that
//   stage's resolved settings), never into `options`.
// - Downstream targets see upstream results only through
//   `dependentTasksOutputFiles` (transitive), which also hashes gitignored
//   files; they hash one index file per upstream stage (UPSTREAM_INDEX_FILES).
// - task-list is cached: a `runtime` input fingerprints the data it reads,
//   wherever the data root lives (executors/task-list/fingerprint.ts).
// - A local executor's source is not hashed unless listed as file inputs. Each
//   target lists every file its executor's code reaches (imports, lazy imports,
//   files read next to a module), derived on every nx command by
//   executors/code-closure.ts from the entry in executors.json, never kept by
//   hand; test/stage-inputs.test.ts checks it against the files a real run loads.
// - Without `externalDependencies`, a local executor hashes the whole lockfile:
//   each target names the packages its code imports (from the same closure).
// - Nx does not hash the Node version that runs the executor; a
//   `runtime: node --version` input does.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { CreateNodes, CreateNodesResult, TargetConfiguration } from '@nx/devkit';
import { codeClosure } from './code-closure.ts';
import { ignoreChecker, namedFileInputs } from './named-inputs.ts';
import { ENDPOINT_ENV_VARS } from '../stages/llm/endpoint.ts';
import { lockPath } from '../stages/categorize/taxonomy-lock.ts';
import type { ScanCache } from './code-closure.ts';
import { loadPipeline, resolveAnalysis, stageSettings } from '../stages/config.ts';
import type { ResolvedAnalysis } from '../stages/config.ts';
import { COMMAND_INFO, COMMANDS, isLlmStage, READ_STAGES, STAGE_INFO, STAGES } from '../stages/registry.ts';
import type { StageName } from '../stages/registry.ts';
import { requestHash } from '../stages/llm/store.ts';
import { selectionSettings } from '../stages/task-list/settings.ts';

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

/** What a stage's executor consists of: workspace-relative files, and the packages its code imports. */
export interface StageCode {
  files: string[];
  packages: string[];
}

/** The local executors' folder, as `executor: './executors:<stage>'` names it. */
const EXECUTORS_DIR = 'executors';

/**
 * The code of each local executor, as Nx finds it: executors/package.json ->
 * executors.json -> the entry's implementation (and its import closure) and
 * schema. Memoized per executor, and each file is scanned once, within one
 * plugin call (a new call sees edited code).
 */
export function stageCodeOf(workspaceRoot: string): (executor: string) => StageCode {
  const memo = new Map<string, StageCode>();
  const scans: ScanCache = new Map();
  let manifest: { dir: string; files: string[]; entries: Record<string, { implementation?: string; schema?: string }> } | undefined;
  const readManifest = () => {
    const pkgFile = posix.join(EXECUTORS_DIR, 'package.json');
    const pkg = JSON.parse(readFileSync(join(workspaceRoot, pkgFile), 'utf8')) as { executors?: string };
    if (!pkg.executors) throw new Error(`${pkgFile}: no "executors" field`);
    const listFile = posix.join(EXECUTORS_DIR, pkg.executors);
    const list = JSON.parse(readFileSync(join(workspaceRoot, listFile), 'utf8')) as { executors?: Record<string, { implementation?: string; schema?: string }> };
    return { dir: posix.dirname(listFile), files: [pkgFile, listFile], entries: list.executors ?? {} };
  };
  return (executor) => {
    let code = memo.get(executor);
    if (!code) {
      manifest ??= readManifest();
      const entry = manifest.entries[executor];
      if (!entry?.implementation || !entry.schema) throw new Error(`${manifest.files[1]}: no implementation and schema for the executor "${executor}"`);
      const implementation = posix.join(manifest.dir, entry.implementation);
      const closure = codeClosure(workspaceRoot, [implementation], scans);
      code = {
        files: [...new Set([...closure.files, posix.join(manifest.dir, entry.schema), ...manifest.files])].sort(),
        packages: closure.packages,
      };
      memo.set(executor, code);
    }
    return code;
  };
}

export function outputDir(opts: NormalizedOptions, analysis: string, stage: StageName): string {
  return `${opts.outDir}/${analysis}/${stage}`;
}

/** The targets of one analysis: a pure function of the resolved settings and of the stages' code. */
export function buildTargets(
  a: ResolvedAnalysis,
  opts: NormalizedOptions,
  codeOf: (executor: string) => StageCode,
  workspaceRoot: string,
  isIgnored: (rel: string) => boolean = ignoreChecker(workspaceRoot),
): Record<string, TargetConfiguration> {
  const targets: Record<string, TargetConfiguration> = {};
  for (const stage of STAGES) {
    const settingsHash = requestHash(stageSettings(a, stage)).slice(0, 32);
    const { dependsOn: upstream, description } = STAGE_INFO[stage];
    const target: TargetConfiguration = {
      executor: `./executors:${stage}`,
      options: { analysis: a.name, outDir: opts.outDir },
      outputs: [`{workspaceRoot}/${outputDir(opts, a.name, stage)}`],
      metadata: { description, technologies: ['meta-analysis'] },
    };
    if (upstream) target.dependsOn = [upstream];
    const code = codeOf(stage);
    target.cache = true;
    target.inputs = [
      { runtime: `echo ${stage}-settings-${settingsHash}` },
      { runtime: 'node --version' },
      ...(stage === 'task-list' ? [{ runtime: taskListFingerprintCommand(a) }] : []),
      ...endpointInputs(a, stage),
      ...namedFileInputs(workspaceRoot, namedFiles(a, stage), isIgnored),
      ...(upstream ? [{ dependentTasksOutputFiles: UPSTREAM_INDEX_FILES, transitive: true }] : []),
      ...code.files.map((f) => `{workspaceRoot}/${f}`),
      { externalDependencies: code.packages },
    ];
    targets[stage] = target;
  }
  // Commands around the chain: never cached, they write no build output.
  for (const command of COMMANDS) {
    const { dependsOn, description } = COMMAND_INFO[command];
    targets[command] = {
      executor: `./executors:${command}`,
      options: { analysis: a.name, outDir: opts.outDir },
      ...(dependsOn ? { dependsOn: [dependsOn] } : {}),
      cache: false,
      metadata: { description, technologies: ['meta-analysis'] },
    };
  }
  return targets;
}

/**
 * What the targets read of upstream outputs, as Nx hashes it: one small
 * index file per stage that a later stage reads (`indexFile` in
 * stages/registry.ts), never the thousands of per-run files. Each index
 * changes whenever a file it stands for does. Other files of an output
 * (task_list_<agent>.json, answers.jsonl, the summaries) are read by no
 * later target, or only through an index entry.
 * The value: '**\/{runs,index,categorization,clusters}.json'.
 */
export const UPSTREAM_INDEX_FILES = braceGlob(READ_STAGES.map((s) => STAGE_INFO[s].indexFile));

/** A glob for these file names in any folder: `**\/{a,b}.json` when they share an extension. */
export function braceGlob(names: readonly string[]): string {
  if (names.length === 1) return `**/${names[0]}`;
  const ext = /\.[^./]+$/.exec(names[0] ?? '')?.[0];
  if (ext && names.every((n) => n.endsWith(ext))) return `**/{${names.map((n) => n.slice(0, -ext.length)).join(',')}}${ext}`;
  return `**/{${names.join(',')}}`;
}

/**
 * The task-list target's data fingerprint (executors/task-list/fingerprint.ts):
 * the digest of every folder listing and file selection reads, computed on
 * every hash of the target, wherever the data root lives. It receives the
 * selection settings, so it does not load pipeline.yaml's schema.
 */
export function taskListFingerprintCommand(a: ResolvedAnalysis): string {
  return `node executors/task-list/fingerprint.ts ${shellQuote(JSON.stringify(selectionSettings(a)))}`;
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Files pipeline.yaml names that a stage reads: the filter files, its prompts, the resume file, the taxonomy lock. */
export function namedFiles(a: ResolvedAnalysis, stage: StageName): string[] {
  const files = [...STAGE_INFO[stage].promptFiles(a)];
  if (stage === 'task-list') {
    for (const f of [a.data.baseline_harm_filter, a.data.human_annotation_filter]) if (f) files.push(f);
  }
  if (stage === 'categorize') {
    files.push(lockPath(a.name));
    if (a.categorize.resume_categorization_path) files.push(a.categorize.resume_categorization_path);
  }
  // The report's "what changed" compares with the lock.
  if (stage === 'report') files.push(lockPath(a.name));
  return files;
}

/**
 * Where a provider's calls go can come from the environment (OPENAI_BASE_URL,
 * AZURE_OPENAI_ENDPOINT, AWS_REGION, ...): a runtime input prints the
 * sanitized endpoint identity, so another server is another key.
 */
function endpointInputs(a: ResolvedAnalysis, stage: StageName): { runtime: string }[] {
  if (!isLlmStage(stage)) return [];
  const provider = a[stage].provider;
  if (ENDPOINT_ENV_VARS[provider].length === 0) return [];
  return [{ runtime: `node executors/endpoint-input.ts ${provider}` }];
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
    const codeOf = stageCodeOf(context.workspaceRoot);
    const isIgnored = ignoreChecker(context.workspaceRoot);
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
          targets: buildTargets(resolved, opts, codeOf, context.workspaceRoot, isIgnored),
        };
      }
      return [file, { projects }] as const;
    });
  },
];

/** Nx 24 still reads the deprecated name from some code paths. */
export const createNodesV2 = createNodes;
