// What a stage's output was built from, group by group: the same ingredients
// as its Nx key (executors/plugin.ts), written next to the output as
// `inputs.json`. The output carries it, so a cache restore brings back the
// record of exactly what made it. The plan compares it with the inputs of
// now to say which targets will run and why ("the prompt changed", "10 runs
// added", "code changed: stages/summarize/summary.ts").
//
// It is a function of the key's inputs only (digests and versions, paths
// relative to the workspace), so it never makes two equal keys give
// different bytes; and no later target reads it (it is not an index file).
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { namedFiles, stageCodeOf } from '../plugin.ts';
import type { StageCode } from '../plugin.ts';
import { stageSettings } from '../../stages/config.ts';
import type { ResolvedAnalysis } from '../../stages/config.ts';
import { INPUT_RECORD_FILE, isLlmStage, STAGE_INFO, upstreamStages } from '../../stages/registry.ts';
import type { StageName } from '../../stages/registry.ts';
import { ENDPOINT_ENV_VARS, endpointIdentity } from '../../stages/llm/endpoint.ts';
import { createEnvLookup } from '../../stages/llm/env.ts';
import { requestHash, sha256 } from '../../stages/llm/store.ts';

export { INPUT_RECORD_FILE };

export interface InputRecord {
  /** Hash of the stage's settings slice of pipeline.yaml (the target's settings input). */
  settings: string;
  node: string;
  /** Where the stage's provider calls go, when the environment can decide it (never a credential). */
  endpoint: string | null;
  /** Files pipeline.yaml names that the stage reads (prompts, filters, the lock), by name: digest or "missing". */
  files: Record<string, string>;
  /** The executor's code closure: digest per file. */
  code: Record<string, string>;
  /** Packages the code imports, with their installed versions. */
  packages: Record<string, string>;
  /** Upstream index files when the stage ran (transitive), by `<stage>/<file>`: digest or "missing". */
  upstream: Record<string, string>;
}

const digest = (bytes: string | Uint8Array) => sha256(bytes).slice(0, 16);

function fileDigest(path: string): string {
  try {
    return digest(readFileSync(path));
  } catch {
    return 'missing';
  }
}

function installedVersion(workspaceRoot: string, pkg: string): string {
  try {
    return (JSON.parse(readFileSync(join(workspaceRoot, 'node_modules', pkg, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'missing';
  }
}

/** Where the executors' code and packages are: the workspace under Nx; the repository when a test runs an executor on another folder. */
const CODE_ROOT = resolve(dirname(fileURLToPath(import.meta.resolve('../plugin.ts'))), '..');

/** The executors' code, as their records see it; one per caller that records several stages, so shared files are scanned once. */
export function recordedCode(): (executor: string) => StageCode {
  return stageCodeOf(CODE_ROOT);
}

/** The stage's record as of now; `outDir` is the folder of the analyses' outputs (relative to the workspace, or absolute). */
export function inputRecord(workspaceRoot: string, a: ResolvedAnalysis, stage: StageName, outDir: string, codeOf = recordedCode()): InputRecord {
  const code = codeOf(stage);
  const files: Record<string, string> = {};
  for (const f of namedFiles(a, stage)) files[isAbsolute(f) ? `(outside the workspace) ${basename(f)}` : f] = fileDigest(isAbsolute(f) ? f : join(workspaceRoot, f));
  const upstream: Record<string, string> = {};
  for (const u of upstreamStages(stage)) {
    // The index file later targets hash of the upstream output (UPSTREAM_INDEX_FILES in the plugin).
    const index = STAGE_INFO[u].indexFile;
    upstream[`${u}/${index}`] = fileDigest(join(resolve(workspaceRoot, outDir), a.name, u, index));
  }
  let endpoint: string | null = null;
  if (isLlmStage(stage)) {
    const s = a[stage];
    if (ENDPOINT_ENV_VARS[s.provider].length > 0) endpoint = JSON.stringify(endpointIdentity(s, createEnvLookup({ workspaceRoot })));
  }
  return {
    settings: requestHash(stageSettings(a, stage)).slice(0, 32),
    node: process.version,
    endpoint,
    files,
    code: Object.fromEntries(code.files.map((f) => [f, fileDigest(join(CODE_ROOT, f))])),
    packages: Object.fromEntries(code.packages.map((p) => [p, installedVersion(CODE_ROOT, p)])),
    upstream,
  };
}

export function formatInputRecord(r: InputRecord): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

/** The record an output folder carries (null when it has none: built before records existed, or never built). */
export function readInputRecord(dir: string): InputRecord | null {
  const file = join(dir, INPUT_RECORD_FILE);
  if (!existsSync(file)) return null;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as InputRecord;
    return typeof r === 'object' && r !== null && typeof r.settings === 'string' ? r : null;
  } catch {
    return null;
  }
}

function changedKeys(before: Record<string, string>, now: Record<string, string>): { changed: string[]; added: string[]; removed: string[] } {
  const changed = Object.keys(now).filter((k) => k in before && before[k] !== now[k]);
  const added = Object.keys(now).filter((k) => !(k in before));
  const removed = Object.keys(before).filter((k) => !(k in now));
  return { changed, added, removed };
}

function someOf(names: string[], max = 3): string {
  return names.length <= max ? names.join(', ') : `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
}

/**
 * Why the stage's key differs from the one its current output was built
 * under, as sentences (empty: the stage's own inputs are unchanged). The
 * upstream group compares the index files on disk now with those the output
 * was built from; predicted upstream changes are the plan's business.
 */
export function describeInputChange(before: InputRecord, now: InputRecord): string[] {
  const why: string[] = [];
  if (before.settings !== now.settings) why.push('its settings in pipeline.yaml changed');
  const files = changedKeys(before.files, now.files);
  for (const f of files.changed) why.push(`${f} changed`);
  if (files.added.length + files.removed.length > 0) why.push(`the files it reads changed (${someOf([...files.added.map((f) => `+${f}`), ...files.removed.map((f) => `-${f}`)])})`);
  const code = changedKeys(before.code, now.code);
  const codeNames = [...code.changed, ...code.added.map((f) => `+${f}`), ...code.removed.map((f) => `-${f}`)];
  if (codeNames.length > 0) why.push(`code changed: ${someOf(codeNames)}`);
  const pkgs = changedKeys(before.packages, now.packages);
  const pkgNames = [...pkgs.changed.map((p) => `${p} ${before.packages[p]} -> ${now.packages[p]}`), ...pkgs.added.map((p) => `+${p}`), ...pkgs.removed.map((p) => `-${p}`)];
  if (pkgNames.length > 0) why.push(`packages changed: ${someOf(pkgNames)}`);
  if (before.node !== now.node) why.push(`Node ${before.node} -> ${now.node}`);
  if (before.endpoint !== now.endpoint) why.push('the provider endpoint changed');
  const up = changedKeys(before.upstream, now.upstream);
  const upNames = [...up.changed, ...up.added, ...up.removed].map((k) => k.split('/')[0]!);
  if (upNames.length > 0) why.push(`the output of ${someOf([...new Set(upNames)])} changed since it was built`);
  return why;
}

export { isStage } from '../../stages/registry.ts';
