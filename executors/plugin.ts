// The local Nx plugin: reads pipeline.yaml and infers one Nx project per
// analysis, with the targets task-list -> summarize -> categorize -> cluster -> report.
//
// One truth per stage: each cached target's key is the digest of one record,
// computed from one description (stages/stage-inputs.ts describes the stage,
// this adds its code) by one function (stages/input-record.ts), run by the
// target's one runtime input (executors/key.mjs). The output's inputs.json is
// that record, the runner checks what the stage reads against it, and the
// plan computes the same record to say what will run. Hashing rules (Nx 24):
// - Upstream outputs: `dependentTasksOutputFiles` (transitive) for exactly the
//   files the stage reads (the registry's `reads`); this also makes Nx hash
//   the target only after its upstream targets ran. The record digests the
//   same files.
// - Files pipeline.yaml names are hashed by content in the record, wherever
//   they live and whatever .gitignore, .nxignore or .git/info/exclude say.
// - Packages: the record holds the installed versions of what the code runs
//   (with their dependencies); `externalDependencies: []` keeps Nx's lockfile
//   view out, so what is keyed is what runs.
// - Nx hashes the options of all targets of a project together: they hold
//   only the analysis and the output folder, identical for every target.
// - `nx affected` sees no runtime input: the never-cached `plan` target lists
//   pipeline.yaml, the named files in the workspace and every stage's code as
//   file inputs, which is what affected reads.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, normalize, posix, sep } from 'node:path';
import type { CreateNodes, CreateNodesResult, TargetConfiguration } from '@nx/devkit';
import { codeClosure } from './code-closure.ts';
import type { ScanCache } from './code-closure.ts';
import { loadPipeline, resolveAnalysis } from '../stages/config.ts';
import type { ResolvedAnalysis } from '../stages/config.ts';
import type { KeyDescription } from '../stages/input-record.ts';
import { COMMAND_INFO, COMMANDS, STAGE_INFO, STAGES } from '../stages/registry.ts';
import type { StageName } from '../stages/registry.ts';
import { describeStage } from '../stages/stage-inputs.ts';

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

/** A stage's whole key description: the stage's own (stages/stage-inputs.ts) and the code that runs it. */
export function keyDescription(a: ResolvedAnalysis, stage: StageName, opts: NormalizedOptions, codeOf: (executor: string) => StageCode): KeyDescription {
  const code = codeOf(stage);
  return { ...describeStage(a, stage, opts.outDir), code: code.files, packages: code.packages };
}

/** The runtime input that prints the digest of the stage's record (executors/key.mjs, then key.ts). */
export const keyCommand = (d: KeyDescription): string => `node executors/key.mjs ${shellQuote(JSON.stringify(d))}`;

/** The description a target's key command carries (tests and tools read it back). */
export function keyDescriptionOf(target: TargetConfiguration): KeyDescription | null {
  for (const input of target.inputs ?? []) {
    const cmd = typeof input === 'object' && input !== null && 'runtime' in input ? String(input.runtime) : '';
    const m = /^node executors\/key\.mjs '(.*)'$/s.exec(cmd);
    if (m) return JSON.parse(m[1]!.replace(/'\\''/g, "'")) as KeyDescription;
  }
  return null;
}

/** The targets of one analysis: a pure function of the resolved settings and of the stages' code. */
export function buildTargets(a: ResolvedAnalysis, opts: NormalizedOptions, codeOf: (executor: string) => StageCode): Record<string, TargetConfiguration> {
  const targets: Record<string, TargetConfiguration> = {};
  const affectedBy = new Set<string>(['pipeline.yaml']);
  for (const stage of STAGES) {
    const { dependsOn: upstream, description } = STAGE_INFO[stage];
    const key = keyDescription(a, stage, opts, codeOf);
    const target: TargetConfiguration = {
      executor: `./executors:${stage}`,
      options: { analysis: a.name, outDir: opts.outDir },
      outputs: [`{workspaceRoot}/${outputDir(opts, a.name, stage)}`],
      metadata: { description, technologies: ['meta-analysis'] },
      cache: true,
      inputs: [
        { runtime: keyCommand(key) },
        ...(upstream ? [{ dependentTasksOutputFiles: upstreamGlob(key), transitive: true }] : []),
        { externalDependencies: [] },
      ],
    };
    if (upstream) target.dependsOn = [upstream];
    targets[stage] = target;
    for (const f of [...key.files, ...key.code]) if (!isAbsolute(f) && !normalize(f).startsWith(`..${sep}`)) affectedBy.add(normalize(f).split(sep).join('/'));
  }
  // Commands around the chain: never cached; what they write (the lock, the summaries' export) is no target's input.
  for (const command of COMMANDS) {
    const { dependsOn, description } = COMMAND_INFO[command];
    targets[command] = {
      executor: `./executors:${command}`,
      options: { analysis: a.name, outDir: opts.outDir },
      ...(dependsOn ? { dependsOn: [dependsOn] } : {}),
      cache: false,
      // What `nx affected` reads (it sees no runtime input): the plan reads all of it.
      ...(command === 'plan' ? { inputs: [...affectedBy].sort().map((f) => `{workspaceRoot}/${globEscape(f)}`) } : {}),
      metadata: { description, technologies: ['meta-analysis'] },
    };
  }
  return targets;
}

/** Nx reads inputs as globs: a named file's own name, with its glob characters escaped. */
export const globEscape = (path: string): string => path.replace(/[\\*?[\]{}()!]/g, (c) => `\\${c}`);

/** The upstream files a stage reads, as the glob Nx applies to its upstream outputs: `**\/{a,b}.json`. */
export function upstreamGlob(d: Pick<KeyDescription, 'reads'>): string {
  return braceGlob([...new Set(d.reads.map(([, f]) => f))].sort());
}

/** A glob for these file names in any folder: `**\/{a,b}.json` when they share an extension. */
export function braceGlob(names: readonly string[]): string {
  if (names.length === 1) return `**/${names[0]}`;
  const ext = /\.[^./]+$/.exec(names[0] ?? '')?.[0];
  if (ext && names.every((n) => n.endsWith(ext))) return `**/{${names.map((n) => n.slice(0, -ext.length)).join(',')}}${ext}`;
  return `**/{${names.join(',')}}`;
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

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
          targets: buildTargets(resolved, opts, codeOf),
        };
      }
      return [file, { projects }] as const;
    });
  },
];

/** Nx 24 still reads the deprecated name from some code paths. */
export const createNodesV2 = createNodes;
