// The record of what a stage's output is built from, computed from the stage's
// one description (stages/stage-inputs.ts) by one function, `inputRecord`.
// Everything else is derived from it:
//   - the Nx key: each cached target has one runtime input,
//     `node executors/key.mjs <description>`, that prints the digest of this
//     record (and leaves the record it hashed in .cache/keys/<a>/<stage>.json);
//   - `inputs.json`: the output carries the record its key was computed from;
//   - the runner's check that what was hashed is what was read (`readParts`);
//   - the plan's verdicts: this record now against the one the output carries.
//
// Named files are hashed by content (a symlink by its target's), whether or not
// Nx can see them; code by content; packages by the versions installed, with
// their dependencies; upstream outputs by the files the stage reads of them.
// No path, user or time that differs between machines enters it.
//
// Light on purpose: it runs on every nx command that hashes a stage (no zod,
// no configuration loading: the description carries what it needs).
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { sha256 } from './llm/store.ts';
import type { LlmSettings, ProviderName } from './llm/types.ts';
import type { StageName, UpstreamRead } from './registry.ts';
import type { SelectionSettings } from './task-list/settings.ts';
import { fileDigest, stageOutputDir } from './keyed-record.ts';
import type { IoCache } from './task-list/crawl.ts';

/** What a stage's output depends on besides its code: derived from pipeline.yaml by describeStage (stages/stage-inputs.ts). */
export interface StageDescription {
  analysis: string;
  stage: StageName;
  /** The folder of the analyses' outputs, as the plugin's options name it (workspace-relative). */
  outDir: string;
  /** Digest of the stage's settings slice of pipeline.yaml (stageSettings in stages/config.ts). */
  settings: string;
  /** Files pipeline.yaml names that the stage reads, as configured (never globs). */
  files: string[];
  /** Files of upstream outputs it reads (the registry's `reads`). */
  reads: readonly UpstreamRead[];
  /** The provider whose endpoint the environment can decide (with its base_url setting), or null. */
  endpoint: { provider: ProviderName; base_url: string | null } | null;
  /** task-list: the selection settings its data fingerprint crawls with. */
  selection: SelectionSettings | null;
}

/** The description and the code that runs it: what the key hashes, all of it. */
export interface KeyDescription extends StageDescription {
  /** The executor's code closure, workspace-relative (executors/code-closure.ts). */
  code: string[];
  /** Packages the code imports (their dependencies are followed when recorded). */
  packages: string[];
}

export interface InputRecord {
  /** Digest of the stage's settings slice of pipeline.yaml. */
  settings: string;
  /** The Node.js version that computes the key and runs the stage. */
  node: string;
  /** Where the stage's provider calls go, when the environment can decide it (never a credential). */
  endpoint: string | null;
  /** Named files (prompts, filters, the lock, the resume file), by name: sha256 of the content, or "missing". */
  files: Record<string, string>;
  /** The executor's code closure: sha256 per file. */
  code: Record<string, string>;
  /** Installed packages the code runs, with their dependencies, by folder under node_modules: version. */
  packages: Record<string, string>;
  /** Upstream files the stage reads, by `<stage>/<file>`: sha256 or "missing". */
  upstream: Record<string, string>;
  /** Workspace files Nx puts in every key of its own (nx.json, tsconfig.base.json): sha256 or "missing". */
  workspace: Record<string, string>;
  /** task-list: the fingerprint of every folder listing and file its selection reads. */
  data?: string;
}

/** Files Nx 24 hashes into every task's key by itself (checked by test/e2e/one-truth.test.ts for nx.json). */
export const NX_WORKSPACE_FILES = ['nx.json', 'tsconfig.base.json'] as const;

/** The parts of a record a stage reads at run time: checked against its key before and after it runs. */
export type ReadParts = Pick<InputRecord, 'settings' | 'node' | 'endpoint' | 'files' | 'upstream'>;

/** An input changed between Nx hashing it and the stage reading it: nothing is written or cached. */
export class InputsChangedError extends Error {
  override name = 'InputsChangedError';
}

/** In every stage's output: the record its key was computed from. */
export const INPUT_RECORD_FILE = 'inputs.json';

/** How a named file appears in a record: as configured, or `(outside the workspace) <name>` for an absolute path (no machine's path in an output). */
export const recordedName = (f: string): string => (isAbsolute(f) ? `(outside the workspace) ${basename(f)}` : f);

export { fileDigest, keyedCrawlFile, keyedRecordFile, stageOutputDir } from './keyed-record.ts';

/** The parts of the record that the stage reads when it runs; `endpoint` from endpointOf. */
export function readParts(d: StageDescription, workspaceRoot: string, endpoint: string | null): ReadParts {
  const files: Record<string, string> = {};
  for (const f of d.files) files[recordedName(f)] = fileDigest(resolve(workspaceRoot, f));
  const upstream: Record<string, string> = {};
  for (const [stage, file] of d.reads) upstream[`${stage}/${file}`] = fileDigest(join(stageOutputDir(workspaceRoot, d, stage), file));
  return { settings: d.settings, node: process.version, endpoint, files, upstream };
}

/** The endpoint identity the stage's calls would use (settings, then the environment, then the workspace's .env); null when the environment cannot decide it. */
export async function endpointOf(d: StageDescription, workspaceRoot: string, env: NodeJS.ProcessEnv = process.env): Promise<string | null> {
  if (!d.endpoint) return null;
  // Loaded only for providers whose endpoint the environment decides.
  const [{ endpointIdentity }, { createEnvLookup }] = await Promise.all([import('./llm/endpoint.ts'), import('./llm/env.ts')]);
  return JSON.stringify(endpointIdentity(d.endpoint as LlmSettings, createEnvLookup({ workspaceRoot, env })));
}

/** task-list's data crawl, as the key made it: the paths it touched, what it read, the data root its paths start with. */
export interface DataCrawl {
  paths: readonly string[];
  cache: IoCache;
  base: string;
}

/** The complete record of a stage: what its key is the digest of. `codeRoot` holds the code and node_modules (the workspace under Nx). */
export async function inputRecord(
  d: KeyDescription,
  workspaceRoot: string,
  codeRoot = workspaceRoot,
  env: NodeJS.ProcessEnv = process.env,
  /** task-list's data fingerprint when the caller has just crawled the same selection (the plan: selectAnalysis returns it), so the tree is not crawled twice. */
  dataFingerprint?: string,
  /**
   * Given the data crawl: every path it touched (the key's memo signs them),
   * and what it read, kept for the executor to select from (task-list/keyed-crawl.ts).
   * With it the crawl keeps what selection reads, not only digests.
   */
  onCrawl?: (crawl: DataCrawl) => void,
): Promise<InputRecord> {
  const parts = readParts(d, workspaceRoot, await endpointOf(d, workspaceRoot, env));
  const record: InputRecord = {
    ...parts,
    code: Object.fromEntries([...d.code].sort().map((f) => [f, fileDigest(join(codeRoot, f))])),
    packages: installedPackages(codeRoot, d.packages),
    workspace: Object.fromEntries(NX_WORKSPACE_FILES.map((f) => [f, fileDigest(join(workspaceRoot, f))])),
  };
  if (d.selection && dataFingerprint !== undefined) {
    record.data = dataFingerprint;
  } else if (d.selection) {
    const [{ selectionCrawl, selectionFingerprint }, { selectionOptions }] = await Promise.all([import('./task-list/analysis.ts'), import('./task-list/settings.ts')]);
    const o = selectionOptions(d.selection, {}, (p) => resolve(workspaceRoot, p));
    if (onCrawl) {
      const crawled = await selectionCrawl(o);
      onCrawl(crawled);
      record.data = crawled.fingerprint;
    } else record.data = await selectionFingerprint(o);
  }
  return record;
}

/** The key's value: the digest of the record's canonical text. */
export const recordDigest = (r: InputRecord): string => sha256(formatInputRecord(r));

export function formatInputRecord(r: InputRecord): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}

/**
 * The packages that run: each one the code imports, as node resolves it from
 * the workspace, and each of their dependencies (also optional and peer ones
 * that are installed), as node resolves them from the package, by folder
 * relative to the code root: its installed version ("missing" when not
 * installed). Versions as installed, not as the lockfile says: what is keyed
 * is what runs.
 */
export function installedPackages(codeRoot: string, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const queue: [string, string][] = names.map((n) => [n, codeRoot]);
  while (queue.length > 0) {
    const [name, from] = queue.shift()!;
    const dir = packageDir(name, from, codeRoot);
    if (dir === null) {
      out[`node_modules/${name}`] ??= 'missing';
      continue;
    }
    const rel = dir.slice(codeRoot.length + 1).split('\\').join('/');
    if (rel in out) continue;
    let pkg: { version?: string; dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>; peerDependencies?: Record<string, string> };
    try {
      pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    } catch {
      out[rel] = 'unreadable';
      continue;
    }
    out[rel] = pkg.version ?? 'unknown';
    const deps = Object.keys({ ...pkg.dependencies });
    // Optional and peer dependencies run only when installed.
    const maybe = Object.keys({ ...pkg.optionalDependencies, ...pkg.peerDependencies }).filter((n) => packageDir(n, dir, codeRoot) !== null);
    for (const dep of [...new Set([...deps, ...maybe])].sort()) queue.push([dep, dir]);
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The folder node would load a package from, looking up from `from` (never above the code root), or null. */
function packageDir(name: string, from: string, codeRoot: string): string | null {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === codeRoot || dir === dirname(dir) || !dir.startsWith(codeRoot)) return null;
  }
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
 * Why two records differ, as sentences (empty: equal records, equal keys).
 * Every field is compared, so a difference that changes the key always has a
 * sentence (test/input-record.test.ts).
 */
export function describeInputChange(before: InputRecord, now: InputRecord): string[] {
  const why: string[] = [];
  if (before.settings !== now.settings) why.push('its settings in pipeline.yaml changed');
  const files = changedKeys(before.files ?? {}, now.files);
  for (const f of files.changed) why.push(`${f} changed`);
  if (files.added.length + files.removed.length > 0) why.push(`the files it reads changed (${someOf([...files.added.map((f) => `+${f}`), ...files.removed.map((f) => `-${f}`)])})`);
  const code = changedKeys(before.code ?? {}, now.code);
  const codeNames = [...code.changed, ...code.added.map((f) => `+${f}`), ...code.removed.map((f) => `-${f}`)];
  if (codeNames.length > 0) why.push(`code changed: ${someOf(codeNames)}`);
  const pkgs = changedKeys(before.packages ?? {}, now.packages);
  const short = (p: string) => p.replace(/^node_modules\//, '');
  const pkgNames = [...pkgs.changed.map((p) => `${short(p)} ${before.packages[p]} -> ${now.packages[p]}`), ...pkgs.added.map((p) => `+${short(p)}`), ...pkgs.removed.map((p) => `-${short(p)}`)];
  if (pkgNames.length > 0) why.push(`packages changed: ${someOf(pkgNames)}`);
  if (before.node !== now.node) why.push(`Node ${before.node} -> ${now.node}`);
  if (before.endpoint !== now.endpoint) why.push('the provider endpoint changed');
  if (before.data !== now.data) why.push('the data it reads changed');
  const ws = changedKeys(before.workspace ?? {}, now.workspace);
  for (const f of [...ws.changed, ...ws.added, ...ws.removed]) why.push(`${f} changed (Nx hashes it into every key)`);
  const up = changedKeys(before.upstream ?? {}, now.upstream);
  const upNames = [...up.changed, ...up.added, ...up.removed];
  if (upNames.length > 0) why.push(`the output of ${someOf([...new Set(upNames.map((k) => k.split('/')[0]!))])} changed since it was built (${someOf(upNames)})`);
  return why;
}
