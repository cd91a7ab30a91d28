// What task selection reads, read once: the crawl.
//
// `crawl` walks the data tree the way `selectRuns` does, for every agent of
// an analysis at once, and keeps each answer of the file system (the kind of
// a path, a folder's entries, a file's bytes, or the error) in an `IoCache`.
// Selection then runs on `cachedIo(cache)`: it reads nothing the crawl did not
// read. The same crawl, keeping digests instead of bytes, is the task-list
// target's cache fingerprint (`crawlDigest`): the digest of every answer, by
// path relative to the data root. So the fingerprint covers what selection
// reads by construction, and a read the crawl missed is an error in tests
// (META_ANALYSIS_STRICT_CRAWL), not a silent gap in a cache key.
//
// The crawl reads a superset of what one selection reads: every task folder
// (a baseline filter only skips tasks when selecting), and the perturbed-query
// file of every perturbed_query_* folder that holds a refinement_summary.json
// of a listed agent (selection reads it only for selected runs). It never
// opens anything else: no screenshot, no other file of a run folder.
//
// The walk is written once, as generators that yield file-system requests.
// Two drivers answer them: a synchronous one for Node's file system
// (`nodeTreeIoSync`), and an asynchronous one for any `TreeIo` (the in-memory
// trees of the tests), which keeps up to CRAWL_LANES task folders in flight.
// On a tree in the page cache a synchronous stat or read costs microseconds,
// while a call through libuv's thread pool costs tens on a small machine (see
// bench/README.md), so the Node driver is synchronous; the crawl of a large
// tree is split over worker threads instead (task-list/crawl-workers.ts).
import { createHash, hash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync, readSync, realpathSync, statSync } from 'node:fs';
import { dirname, normalize } from 'node:path';
import { dirEntry, errorCode, isNoPathError, kindOfStats, listedEntry } from '../util/fs.ts';
import type { DirEntry, EntryKind, TreeIo } from '../util/fs.ts';
import { decodeReading, encodeReading, quickSummaryFields, runInputDigest } from './run-files.ts';
import { decodeJoinedPaths, encodePaths } from '../keyed-record.ts';
import type { SummaryReading } from './run-files.ts';

/** What one crawl covers: the options of one `selectRuns` call, for several agents. */
export interface CrawlSpec {
  /** Absolute data root. */
  base: string;
  /** A domain folder name, or `all` (any case) or `""` for every domain. */
  domain: string;
  perturbationModel: string;
  /**
   * The refinement models: explicit ones, or null / `""` to discover them
   * (walked in one go, so that the files of a perturbed query folder are all
   * read in one visit: see SummaryReading).
   */
  refinementModels: readonly (string | null)[];
  agents: readonly string[];
  /** Absolute paths of the filter files (baseline harm, human annotation). */
  filters: readonly string[];
}

/** A task folder the walk descends into. */
export interface TaskRef {
  domain: string;
  task: string;
}

/**
 * The data root as every path below it is built from: normalized once, so
 * that `childPath` (a string concatenation: path.join costs microseconds per
 * call, and a large tree has hundreds of thousands of paths) gives what
 * path.join would. Selection and the crawl build paths the same way, so their
 * cache keys agree.
 */
export function normalizeBase(base: string): string {
  return normalize(base);
}

/** `path.join(dir, name)` for a normalized `dir` and a plain folder or file name. */
export function childPath(dir: string, name: string): string {
  return dir.endsWith('/') ? dir + name : `${dir}/${name}`;
}

type Failure = { error: unknown };
type StatAnswer = { kind: EntryKind | null } | Failure;
type DirAnswer = { entries: DirEntry[] } | Failure;
/**
 * `bytes` is null when the cache keeps only digests, and for a run's two files
 * when it keeps what selection reads of them instead (`summary`).
 */
type FileAnswer = { bytes: Uint8Array | null; sha256: string; summary?: SummaryReading } | Failure;

/** Every answer of the file system a crawl received, by absolute path. */
export class IoCache {
  readonly stats = new Map<string, StatAnswer>();
  readonly dirs = new Map<string, DirAnswer>();
  readonly files = new Map<string, FileAnswer>();
  /**
   * Keep what selection reads of the files (selection) or only their digests
   * (fingerprint). Selection keeps the bytes of the filter files, and of a run's
   * summary and perturbed query only until the crawl has derived what selection
   * reads of them (SummaryReading): at 100,000 runs the bytes were 400 MiB.
   */
  readonly keepBytes: boolean;
  /** The bytes of run files read in the current perturbed query folder, until they are derived. */
  readonly pending = new Map<string, Uint8Array>();
  constructor(keepBytes: boolean) {
    this.keepBytes = keepBytes;
  }
}

const isFailure = (a: object): a is Failure => 'error' in a;

/**
 * One answer object per kind, shared by every path of that kind: a large
 * crawl records tens of thousands of kinds, and each object of its own was
 * copied by every young-generation collection it survived.
 */
const KIND_ANSWERS = new Map<EntryKind | null, StatAnswer>(
  ([null, 'dir', 'file', 'other', 'link-out', 'link-loop'] as const).map((kind) => [kind, Object.freeze({ kind })]),
);
const kindAnswer = (kind: EntryKind | null): StatAnswer => KIND_ANSWERS.get(kind) ?? { kind };

// ---------------------------------------------------------------------------
// Node's file system, synchronously

/** The synchronous twin of TreeIo, plus a stat-and-read in one open. Errors as Node throws them. */
export interface TreeIoSync {
  /** `root`: the data root symbolic links may not leave (see EntryKind). */
  statSync(path: string, root?: string): EntryKind | null;
  readDirSync(path: string, root?: string): DirEntry[];
  readFileSync(path: string): Uint8Array;
  /**
   * The kind of `path` and, for a regular file, its bytes, from one open:
   * what stat then readFile would answer, or null when it cannot tell (then
   * the caller asks stat and readFile). `into`: where the bytes go (ReadInto).
   */
  probeSync?(path: string, into?: ReadInto, root?: string): { kind: EntryKind | null; bytes?: Uint8Array; readError?: unknown } | null;
  /** What the crawl derived from a run summary instead of keeping its bytes (a cached reader: `cachedIo`). */
  summarySync?(path: string): SummaryReading | undefined;
}

/**
 * Where a probe's bytes go: `keep`, memory of their own (kept); `scratch`, one
 * buffer reused by the next read (digest only); `arena`, a buffer reused once
 * the run files of a perturbed query folder are derived (`resetArena`).
 */
export type ReadInto = 'keep' | 'scratch' | 'arena';

function kindOfSync(path: string | Buffer, root?: string): EntryKind | null {
  try {
    if (root !== undefined) {
      // lstat costs what stat does; only a symbolic link takes the longer way.
      const l = lstatSync(path, { throwIfNoEntry: false });
      if (l === undefined) return null;
      if (l.isSymbolicLink()) return linkKindSync(path, root);
      return kindOfStats(l);
    }
    // No exception for a missing path: most agent folders a crawl asks for do not exist.
    const s = statSync(path, { throwIfNoEntry: false });
    if (s === undefined) return null;
    return kindOfStats(s);
  } catch (err) {
    if (isNoPathError(err)) return null;
    throw err;
  }
}

/** Real paths of data roots, resolved once per process. */
const realRoots = new Map<string, string>();

function realRoot(root: string): string {
  let real = realRoots.get(root);
  if (real === undefined) {
    try {
      real = realpathSync(root);
    } catch {
      real = root;
    }
    realRoots.set(root, real);
  }
  return real;
}

const within = (path: string, dir: string) => path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

/**
 * The kind of a symbolic link below `root`: followed only when its target
 * stays inside the data root and is not one of its own ancestors (a loop).
 */
function linkKindSync(path: string | Buffer, root: string): EntryKind | null {
  let target: string;
  try {
    target = realpathSync(path);
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ELOOP') return 'link-loop';
    if (code === 'ENOENT' || code === 'ENOTDIR') return null; // a dangling link
    throw err;
  }
  if (!within(target, realRoot(root))) return 'link-out';
  const text = typeof path === 'string' ? path : path.toString('utf8');
  let parent: string;
  try {
    parent = realpathSync(dirname(text));
  } catch {
    parent = dirname(text);
  }
  if (within(parent, target)) return 'link-loop';
  const s = statSync(path, { throwIfNoEntry: false });
  if (s === undefined) return null;
  return kindOfStats(s);
}

function readDirSyncDecoded(path: string, root?: string): DirEntry[] {
  // Names as strings first (cheaper); only a listing with a replacement
  // character in it may hold a name that is not valid UTF-8: list it again as bytes.
  const plain = readdirSync(path, { withFileTypes: true });
  if (!plain.some((d) => d.name.includes('\uFFFD'))) {
    return plain.map((d) => ({
      name: d.name,
      kind: d.isDirectory() ? 'dir' : d.isFile() ? 'file' : d.isSymbolicLink() ? kindOfSync(`${path}/${d.name}`, root) : 'other',
    }));
  }
  const dirents = readdirSync(path, { withFileTypes: true, encoding: 'buffer' });
  return dirents.map((d) => {
    const e = listedEntry(path, d);
    return dirEntry(e.name, e.linkPath ? kindOfSync(e.linkPath, root) : e.kind, e.badName);
  });
}

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/** A buffer reused by transient reads (digest-only crawls): no allocation per file. */
let scratch = Buffer.allocUnsafeSlow(1 << 16);

/**
 * The run files of one perturbed query folder, read for selection, live here
 * until the crawl derives what selection reads of them; then it is reused. A
 * file that does not fit gets a new arena (the files still pending keep the old one).
 */
const ARENA_BYTES = 1 << 20;
let arena = Buffer.allocUnsafeSlow(0);
let arenaUsed = 0;

/** Once no bytes of the arena are pending. */
function resetArena(): void {
  arenaUsed = 0;
}

/**
 * Kept file bytes are carved out of shared slabs: a crawl keeps tens of
 * thousands of small files, and one allocation per file (each its own
 * ArrayBuffer, so that a worker thread can transfer it) cost more than reading
 * them. A worker now transfers a few slabs. Own memory, not Node's pool.
 */
const SLAB_BYTES = 1 << 20;
/** Larger files get memory of their own rather than most of a slab. */
const SLAB_FILE_MAX = SLAB_BYTES >> 4;
let slab = Buffer.allocUnsafeSlow(0);
let slabUsed = 0;

/** Where a read of a file of about `sizeHint` bytes starts: a buffer and the offset in it. */
function readTarget(sizeHint: number, into: ReadInto): { buf: Buffer; start: number } {
  // One byte more than fstat's size, so a file that grew meanwhile is read to its end.
  const want = sizeHint + 1;
  if (into === 'scratch') {
    if (scratch.length < want) scratch = Buffer.allocUnsafeSlow(want);
    return { buf: scratch, start: 0 };
  }
  if (into === 'arena') {
    if (arena.length - arenaUsed < want) {
      arena = Buffer.allocUnsafeSlow(Math.max(ARENA_BYTES, want));
      arenaUsed = 0;
    }
    return { buf: arena, start: arenaUsed };
  }
  if (want > SLAB_FILE_MAX) return { buf: Buffer.allocUnsafeSlow(want), start: 0 };
  if (slab.length - slabUsed < want) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    slabUsed = 0;
  }
  return { buf: slab, start: slabUsed };
}

/**
 * Reads the rest of an open file (its size may change while it is read). A
 * scratch read returns a view of a shared buffer, valid until the next one.
 */
function readAll(fd: number, sizeHint: number, into: ReadInto): Uint8Array {
  let { buf, start } = readTarget(sizeHint, into);
  let len = 0;
  for (;;) {
    if (start + len === buf.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(1, len * 2));
      buf.copy(bigger, 0, start, start + len);
      buf = bigger;
      start = 0;
      if (into === 'scratch') scratch = bigger;
    }
    const want = buf.length - start - len;
    const n = readSync(fd, buf, start + len, want, null);
    len += n;
    // Past the size fstat gave, a short read is the end of the file: no extra read to see 0.
    if (n === 0 || (n < want && len >= sizeHint)) break;
  }
  if (buf === slab) slabUsed = start + len;
  else if (buf === arena) arenaUsed = start + len;
  return buf.subarray(start, start + len);
}

/** A copy of `bytes` to keep, out of a slab (as readAll keeps a file). */
function keptCopy(bytes: Uint8Array): Uint8Array {
  const { buf, start } = readTarget(bytes.length, 'keep');
  buf.set(bytes, start);
  if (buf === slab) slabUsed = start + bytes.length;
  return buf.subarray(start, start + bytes.length);
}

/** Node's file system through synchronous calls, as a TreeIo (for selection) and a TreeIoSync (for the crawl). */
export const nodeTreeIoSync: TreeIo & TreeIoSync = {
  stat: async (path, root) => kindOfSync(path, root),
  readDir: async (path, root) => readDirSyncDecoded(path, root),
  readFile: async (path) => readFileSync(path),
  statSync: (path, root) => kindOfSync(path, root),
  readDirSync: (path, root) => readDirSyncDecoded(path, root),
  readFileSync: (path) => readFileSync(path),
  probeSync(path, into = 'keep', root) {
    let fd: number;
    try {
      // O_NONBLOCK: opening a FIFO must not wait for a writer; it has no effect on a regular file.
      // O_NOFOLLOW below a data root: a symbolic link is classified by stat instead (see EntryKind).
      fd = openSync(path, root === undefined ? OPEN_FLAGS : OPEN_FLAGS | constants.O_NOFOLLOW);
    } catch (err) {
      const code = errorCode(err);
      if (root !== undefined && code === 'ELOOP') return null; // the path is a symbolic link: ask stat
      if (isNoPathError(err)) return { kind: null };
      return null; // EACCES and the like: stat may still succeed, so ask it
    }
    try {
      const s = fstatSync(fd);
      const kind: EntryKind = kindOfStats(s);
      if (kind !== 'file') return { kind };
      try {
        return { kind, bytes: readAll(fd, s.size, into) };
      } catch (readError) {
        return { kind, readError };
      }
    } finally {
      closeSync(fd);
    }
  },
};

// ---------------------------------------------------------------------------
// The walk

/**
 * A request of the walk. `probe`: stat, then read when it is a regular file
 * (`run`: a run's file, whose bytes selection needs only until `derive`).
 * `derive`: the run files of a perturbed query folder are read, `path` its
 * perturbed query file and `summaries` the run summaries found.
 */
type Req =
  | { op: 'stat' | 'readDir'; path: string; root?: string }
  | { op: 'probe'; path: string; root?: string; run?: true }
  | { op: 'derive'; path: string; summaries: readonly string[] };
/** The walk sees kinds (undefined: the stat failed) and entries (none when the listing failed). */
type Walk<T> = Generator<Req, T, unknown>;

/** Folders of the data root never searched as domains (archives, scripts, notes), as in the reference. */
export const DOMAIN_SUFFIXES_SKIPPED = ['.zip', '.py', '.txt', '.json'];

/** The reference treats "" like "all": `None if d.lower() == "all" else d`, then `if domain:`. */
export function isAllDomains(domain: string): boolean {
  return domain === '' || domain.toLowerCase() === 'all';
}

// `root`: the data root symbolic links may not leave (none for the filter files).
function* stat(path: string, root: string): Walk<EntryKind | null | undefined> {
  return (yield { op: 'stat', path, root }) as EntryKind | null | undefined;
}
function* readDir(path: string, root: string): Walk<DirEntry[]> {
  return (yield { op: 'readDir', path, root }) as DirEntry[];
}
function* probe(path: string, root?: string): Walk<EntryKind | null | undefined> {
  return (yield root === undefined ? { op: 'probe', path } : { op: 'probe', path, root }) as EntryKind | null | undefined;
}
function* probeRunFile(path: string, root: string): Walk<EntryKind | null | undefined> {
  return (yield { op: 'probe', path, root, run: true }) as EntryKind | null | undefined;
}

/** The filter files, the data root and its domains: the task folders to walk. */
function* walkTop(spec: CrawlSpec): Walk<TaskRef[]> {
  // Selection reads a filter file whenever it exists, as the reference does.
  for (const f of spec.filters) yield* probe(f);
  const base = spec.base;
  const baseKind = yield* stat(base, base);
  if (baseKind === null || baseKind === undefined) return [];
  const domains: string[] = [];
  if (isAllDomains(spec.domain)) {
    if (baseKind !== 'dir') return [];
    for (const e of yield* readDir(base, base)) {
      if (e.kind === 'dir' && !DOMAIN_SUFFIXES_SKIPPED.some((s) => e.name.endsWith(s))) domains.push(e.name);
    }
  } else {
    const kind = yield* stat(childPath(base, spec.domain), base);
    if (kind === 'dir' && !DOMAIN_SUFFIXES_SKIPPED.some((s) => spec.domain.endsWith(s))) domains.push(spec.domain);
  }
  const tasks: TaskRef[] = [];
  for (const domain of domains) {
    for (const e of yield* readDir(childPath(base, domain), base)) if (e.kind === 'dir') tasks.push({ domain, task: e.name });
  }
  return tasks;
}

/** The explicit refinement models of a spec (deduplicated), and whether the others are discovered too. */
function refinementModelsOf(spec: CrawlSpec): { explicit: string[]; discover: boolean } {
  const explicit: string[] = [];
  let discover = false;
  for (const rm of spec.refinementModels) {
    if (rm === null || rm === '') discover = true;
    else if (!explicit.includes(rm)) explicit.push(rm);
  }
  return { explicit, discover };
}

/** Everything selection may read below some task folders. */
function* walkTasks(spec: CrawlSpec, tasks: readonly TaskRef[]): Walk<void> {
  const { explicit, discover } = refinementModelsOf(spec);
  for (const { domain, task } of tasks) {
    const pmAbs = childPath(childPath(childPath(spec.base, domain), task), spec.perturbationModel);
    if ((yield* stat(pmAbs, spec.base)) !== 'dir') continue;
    for (const pq of yield* readDir(pmAbs, spec.base)) {
      if (pq.kind !== 'dir' || !pq.name.startsWith('perturbed_query_')) continue;
      const pqAbs = childPath(pmAbs, pq.name);
      const models = [...explicit];
      if (discover) {
        for (const item of yield* readDir(pqAbs, spec.base)) {
          if (item.kind !== 'dir' || !item.name.startsWith('iterative_refinement_')) continue;
          const rm = item.name.replaceAll('iterative_refinement_', '');
          if (!rm.includes('_attempt_') && !models.includes(rm)) models.push(rm);
        }
      }
      const summaries: string[] = [];
      for (const rm of models) {
        for (const agent of spec.agents) {
          const agentAbs = childPath(childPath(pqAbs, `iterative_refinement_${rm}`), `agent_${agent}`);
          if ((yield* stat(agentAbs, spec.base)) !== 'dir') continue;
          const summary = childPath(agentAbs, 'refinement_summary.json');
          if ((yield* probeRunFile(summary, spec.base)) === 'file') summaries.push(summary);
        }
      }
      if (summaries.length > 0) {
        const pid = pq.name.replaceAll('perturbed_query_', '');
        const pqFile = childPath(pqAbs, `perturbed_query_${pid}.json`);
        yield* probeRunFile(pqFile, spec.base);
        yield { op: 'derive', path: pqFile, summaries };
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Drivers

function sha256(bytes: Uint8Array): string {
  // The one-shot form: a Hash object per file costs more than hashing a small file.
  return hash('sha256', bytes, 'hex');
}

/** Records a file read: its digest, and its bytes when selection keeps them (a run file's until `derive`). */
function recordFile(cache: IoCache, path: string, bytes: Uint8Array, runFile: boolean): void {
  const keep = cache.keepBytes && !runFile;
  cache.files.set(path, { bytes: keep ? bytes : null, sha256: sha256(bytes) });
  if (cache.keepBytes && runFile) cache.pending.set(path, bytes);
}

/** Where a probe of `req` reads a file's bytes into. */
function readInto(cache: IoCache, runFile: boolean): ReadInto {
  return !cache.keepBytes ? 'scratch' : runFile ? 'arena' : 'keep';
}

/**
 * The run files of a perturbed query folder are read: what selection reads of
 * each summary (SummaryReading) takes the place of the bytes, which are
 * dropped, the perturbed query's with them. A summary whose fields only
 * Python's reading can tell keeps its bytes. Nothing to do for a digest-only crawl.
 */
function derive(cache: IoCache, pqPath: string, summaries: readonly string[]): void {
  if (!cache.keepBytes) return;
  const bytesOf = (path: string): Uint8Array | null => {
    const pending = cache.pending.get(path);
    if (pending !== undefined) return pending;
    const a = cache.files.get(path);
    return a === undefined || isFailure(a) ? null : a.bytes;
  };
  const pq = cache.files.get(pqPath);
  const pqRead = pq !== undefined && !isFailure(pq);
  // Null when read before and already dropped (a folder visited twice): then the summary keeps its bytes.
  const pqBytes = pqRead ? bytesOf(pqPath) : null;
  for (const path of summaries) {
    const a = cache.files.get(path);
    const bytes = bytesOf(path);
    if (a === undefined || isFailure(a) || a.summary !== undefined || bytes === null) continue;
    const fields = quickSummaryFields(bytes);
    const inputDigest = !pqRead ? null : pqBytes === null ? undefined : runInputDigest(bytes, pqBytes);
    const kept = a.bytes ?? (fields === null || inputDigest === undefined ? keptCopy(bytes) : null);
    cache.files.set(path, { bytes: kept, sha256: a.sha256, summary: { fields, inputDigest } });
  }
  cache.pending.delete(pqPath);
  for (const path of summaries) cache.pending.delete(path);
  if (cache.pending.size === 0) resetArena();
}

/** What the walk sees of a recorded listing: its entries with valid names (none when the listing failed). */
function seenEntries(a: DirAnswer): DirEntry[] {
  if (isFailure(a)) return [];
  return a.entries.some((e) => e.badName) ? a.entries.filter((e) => !e.badName) : a.entries;
}

/** What the walk sees of a recorded kind (undefined: the stat failed). */
function seenKind(a: StatAnswer): EntryKind | null | undefined {
  return isFailure(a) ? undefined : a.kind;
}

/**
 * Whether a probe reads the path: a regular file, and a folder (selection
 * tries to read a filter file that is a folder; the read fails at once). Never
 * anything else: reading a FIFO would wait for a writer.
 */
function readable(kind: unknown): boolean {
  return kind === 'file' || kind === 'dir';
}

// The answer of a path is looked up once and recorded once: a large crawl
// makes hundreds of thousands of requests, each a lookup by a long path.
function answerSync(req: Req, io: TreeIoSync, cache: IoCache): unknown {
  const { path } = req;
  if (req.op === 'derive') return derive(cache, path, req.summaries);
  const runFile = req.op === 'probe' && req.run === true;
  if (req.op === 'readDir') {
    let listing = cache.dirs.get(path);
    if (listing === undefined) {
      try {
        listing = { entries: io.readDirSync(path, req.root) };
      } catch (error) {
        listing = { error };
      }
      cache.dirs.set(path, listing);
    }
    return seenEntries(listing);
  }
  let stat = cache.stats.get(path);
  if (stat === undefined) {
    const probed = req.op === 'probe' && io.probeSync ? io.probeSync(path, readInto(cache, runFile), req.root) : null;
    if (probed) {
      stat = kindAnswer(probed.kind);
      cache.stats.set(path, stat);
      if (probed.bytes) recordFile(cache, path, probed.bytes, runFile);
      else if (probed.readError !== undefined) cache.files.set(path, { error: probed.readError });
    } else {
      try {
        stat = kindAnswer(io.statSync(path, req.root));
      } catch (error) {
        stat = { error };
      }
      cache.stats.set(path, stat);
    }
  }
  const kind = seenKind(stat);
  if (req.op === 'probe' && readable(kind) && !cache.files.has(path)) {
    try {
      recordFile(cache, path, io.readFileSync(path), runFile);
    } catch (error) {
      cache.files.set(path, { error });
    }
  }
  return kind;
}

async function answerAsync(req: Req, io: TreeIo, cache: IoCache): Promise<unknown> {
  const { path } = req;
  if (req.op === 'derive') return derive(cache, path, req.summaries);
  const runFile = req.op === 'probe' && req.run === true;
  if (req.op === 'readDir') {
    let listing = cache.dirs.get(path);
    if (listing === undefined) {
      try {
        listing = { entries: await io.readDir(path, req.root) };
      } catch (error) {
        listing = { error };
      }
      cache.dirs.set(path, listing);
    }
    return seenEntries(listing);
  }
  let stat = cache.stats.get(path);
  if (stat === undefined) {
    try {
      stat = kindAnswer(await io.stat(path, req.root));
    } catch (error) {
      stat = { error };
    }
    cache.stats.set(path, stat);
  }
  const kind = seenKind(stat);
  if (req.op === 'probe' && readable(kind) && !cache.files.has(path)) {
    try {
      recordFile(cache, path, await io.readFile(path), runFile);
    } catch (error) {
      cache.files.set(path, { error });
    }
  }
  return kind;
}

function driveSync<T>(walk: Walk<T>, io: TreeIoSync, cache: IoCache): T {
  let step = walk.next();
  while (!step.done) step = walk.next(answerSync(step.value, io, cache));
  return step.value;
}

async function driveAsync<T>(walk: Walk<T>, io: TreeIo, cache: IoCache): Promise<T> {
  let step = walk.next();
  while (!step.done) step = walk.next(await answerAsync(step.value, io, cache));
  return step.value;
}

/** Task folders in flight at once in the asynchronous driver. */
export const CRAWL_LANES = 16;

function isSync(io: TreeIo | TreeIoSync): io is TreeIoSync {
  return typeof (io as Partial<TreeIoSync>).statSync === 'function';
}

/** The task folders of a crawl (the top of the walk), recorded in `cache`. */
export async function crawlTop(spec: CrawlSpec, io: TreeIo | TreeIoSync, cache: IoCache): Promise<TaskRef[]> {
  return isSync(io) ? driveSync(walkTop(spec), io, cache) : driveAsync(walkTop(spec), io, cache);
}

/** Everything below some task folders, recorded in `cache`. */
export async function crawlTasks(spec: CrawlSpec, tasks: readonly TaskRef[], io: TreeIo | TreeIoSync, cache: IoCache): Promise<void> {
  if (isSync(io)) {
    driveSync(walkTasks(spec, tasks), io, cache);
    return;
  }
  const lanes = Math.max(1, Math.min(CRAWL_LANES, tasks.length));
  await Promise.all(
    Array.from({ length: lanes }, (_, k) => driveAsync(walkTasks(spec, tasks.filter((_, i) => i % lanes === k)), io, cache)),
  );
}

/** The whole crawl of one spec, in this thread. */
export async function crawl(spec: CrawlSpec, io: TreeIo | TreeIoSync, cache: IoCache): Promise<void> {
  await crawlTasks(spec, await crawlTop(spec, io, cache), io, cache);
}

// ---------------------------------------------------------------------------
// Using the answers

/** A read selection made that the crawl did not: the crawl and `selectRuns` disagree (a bug). */
export class CrawlMissError extends Error {
  override name = 'CrawlMissError';
}

/**
 * A synchronous reader answering from `cache`, for selection: it reads only
 * what the crawl read, so it needs no I/O of its own, and no promise per read
 * (which cost more than the reads). A read the crawl did not make is reported
 * to `onMiss` first (tests make it throw), then goes to `fallback` when it can
 * answer synchronously (Node's file system); from any other TreeIo (the tests'
 * in-memory trees) it is a CrawlMissError.
 */
export function cachedIo(cache: IoCache, fallback: TreeIo | TreeIoSync, onMiss: (op: string, path: string) => void): TreeIoSync {
  const miss = <R>(op: keyof TreeIo, path: string, read: (io: TreeIoSync) => R): R => {
    onMiss(op, path);
    if (!isSync(fallback)) throw new CrawlMissError(`task-list: ${op} of a path the crawl did not read: ${path}`);
    return read(fallback);
  };
  /** The cached answer (a failure is thrown again), or undefined where the cache does not hold it. */
  const cached = <A extends object, R>(a: A | Failure | undefined, value: (a: A) => R | undefined): R | undefined => {
    if (a === undefined) return undefined;
    if (isFailure(a)) throw a.error;
    return value(a);
  };
  return {
    statSync: (path) => {
      const kind = cached(cache.stats.get(path), (a) => a.kind);
      return kind !== undefined ? kind : miss('stat', path, (io) => io.statSync(path));
    },
    readDirSync: (path) => cached(cache.dirs.get(path), (a) => a.entries) ?? miss('readDir', path, (io) => io.readDirSync(path)),
    readFileSync: (path) => cached(cache.files.get(path), (a) => a.bytes ?? undefined) ?? miss('readFile', path, (io) => io.readFileSync(path)),
    summarySync: (path) => {
      const a = cache.files.get(path);
      return a === undefined || isFailure(a) ? undefined : a.summary;
    },
  };
}

/**
 * The answers of a cache in a compact form a worker thread can post: paths and
 * texts joined into a few strings, kinds as bytes, file bytes transferred
 * (not copied), an error as its name, code and message (a structured clone of
 * an Error drops the code). Posting tens of thousands of small objects costs
 * more than the crawl saves; a few strings cost almost nothing.
 */
export interface CacheRecords {
  /**
   * Every path once, in the order the crawl met it, front-coded
   * (keyed-record.ts encodePaths) and joined by NUL (no path holds one): a
   * folder is stat'ed and listed, a file stat'ed and read, and one string per
   * path serves the three maps, as in the crawl itself.
   */
  paths: string;
  /** Per stat answer, its path's index in `paths`; the same for folders and files. */
  statIndex: Uint32Array;
  statKinds: Uint8Array;
  dirIndex: Uint32Array;
  /** JSON: per folder, its entries as [name, kind code, 1 when the name is not UTF-8] (null for an error). */
  dirEntries: string;
  fileIndex: Uint32Array;
  /** Per file: its sha256 (or "" for an error). */
  fileDigests: string;
  fileBytes: (Uint8Array | null)[];
  /** JSON: per file, its SummaryReading (encodeReading) or null. */
  fileReadings: string;
  /** [section, index, name, message, code] of each failure. */
  errors: [string, number, string, string, string | null][];
}

const KIND_CODE: Record<string, number> = { null: 0, dir: 1, file: 2, other: 3, 'link-out': 4, 'link-loop': 5 };
const CODE_KIND: (EntryKind | null)[] = [null, 'dir', 'file', 'other', 'link-out', 'link-loop'];
const FAILED = 9;
const SEP = '\u0000';

export function cacheRecords(cache: IoCache): { records: CacheRecords; transfer: ArrayBuffer[] } {
  const errors: CacheRecords['errors'] = [];
  const fail = (section: string, i: number, error: unknown) =>
    errors.push([section, i, error instanceof Error ? error.name : 'Error', error instanceof Error ? error.message : String(error), errorCode(error) ?? null]);
  const stats = [...cache.stats];
  const statKinds = new Uint8Array(stats.length);
  stats.forEach(([, a], i) => {
    if (isFailure(a)) {
      statKinds[i] = FAILED;
      fail('stat', i, a.error);
    } else statKinds[i] = KIND_CODE[String(a.kind)] as number;
  });
  const dirs = [...cache.dirs];
  const dirEntries = dirs.map(([, a], i) => {
    if (isFailure(a)) {
      fail('dir', i, a.error);
      return null;
    }
    return a.entries.map((e) => (e.badName ? [e.name, KIND_CODE[String(e.kind)], 1] : [e.name, KIND_CODE[String(e.kind)]]));
  });
  const files = [...cache.files];
  const transfer = new Set<ArrayBuffer>();
  const fileBytes = files.map(([, a]) => {
    if (isFailure(a) || a.bytes === null) return null;
    if (a.bytes.buffer instanceof ArrayBuffer) transfer.add(a.bytes.buffer);
    return a.bytes;
  });
  const fileReadings = files.map(([, a]) => (isFailure(a) || a.summary === undefined ? null : encodeReading(a.summary)));
  const fileDigests = files.map(([, a], i) => {
    if (!isFailure(a)) return a.sha256;
    fail('file', i, a.error);
    return '';
  });
  const table = new Map<string, number>();
  const indexOf = (entries: readonly [string, unknown][]) => {
    const index = new Uint32Array(entries.length);
    entries.forEach(([p], i) => {
      let at = table.get(p);
      if (at === undefined) table.set(p, (at = table.size));
      index[i] = at;
    });
    return index;
  };
  const statIndex = indexOf(stats);
  const dirIndex = indexOf(dirs);
  const fileIndex = indexOf(files);
  return {
    records: {
      paths: encodePaths([...table.keys()]).join(SEP),
      statIndex,
      statKinds,
      dirIndex,
      dirEntries: JSON.stringify(dirEntries),
      fileIndex,
      fileDigests: fileDigests.join(SEP),
      fileBytes,
      fileReadings: JSON.stringify(fileReadings),
      errors,
    },
    transfer: [...transfer],
  };
}

/**
 * Adds posted records to `cache`. `release`: each section of `r` is emptied
 * once added, so that its text can be collected while the next is read (the
 * key's crawl at 100,000 runs: 80 MB of records).
 */
export function addRecords(cache: IoCache, r: CacheRecords, opts: { release?: boolean; between?: () => void } = {}): void {
  const failures = new Map(r.errors.map(([section, i, name, message, code]) => [
    `${section}:${i}`,
    { error: Object.assign(new Error(message), { name, ...(code === null ? {} : { code }) }) },
  ]));
  const release = (section: 'paths' | 'dirEntries' | 'fileDigests' | 'fileReadings') => {
    if (opts.release) r[section] = '';
  };
  const table = [...decodeJoinedPaths(r.paths, SEP)];
  release('paths');
  const pathAt = (index: Uint32Array, i: number): string => {
    const p = table[index[i] as number];
    if (p === undefined) throw new Error('task-list crawl records: a path index outside the table');
    return p;
  };
  for (let i = 0; i < r.statIndex.length; i++) {
    const code = r.statKinds[i] as number;
    cache.stats.set(pathAt(r.statIndex, i), code === FAILED ? (failures.get(`stat:${i}`) as Failure) : kindAnswer(CODE_KIND[code] ?? null));
  }
  const entries = JSON.parse(r.dirEntries) as ([string, number, 1?][] | null)[];
  release('dirEntries');
  for (let i = 0; i < r.dirIndex.length; i++) {
    const p = pathAt(r.dirIndex, i);
    const list = entries[i];
    if (list === null || list === undefined) cache.dirs.set(p, failures.get(`dir:${i}`) as Failure);
    else {
      cache.dirs.set(p, {
        entries: list.map(([name, code, bad]) => (bad ? { name, kind: CODE_KIND[code] ?? null, badName: true } : { name, kind: CODE_KIND[code] ?? null })),
      });
    }
    entries[i] = null;
  }
  opts.between?.();
  const digests = r.fileDigests === '' ? [] : r.fileDigests.split(SEP);
  release('fileDigests');
  const readings = JSON.parse(r.fileReadings) as unknown[];
  release('fileReadings');
  for (let i = 0; i < r.fileIndex.length; i++) {
    const p = pathAt(r.fileIndex, i);
    if (failures.has(`file:${i}`)) cache.files.set(p, failures.get(`file:${i}`) as Failure);
    else {
      const reading = readings[i];
      const a: FileAnswer = { bytes: cache.keepBytes ? (r.fileBytes[i] ?? null) : null, sha256: digests[i] as string };
      if (reading !== null && reading !== undefined && cache.keepBytes) a.summary = decodeReading(reading);
      cache.files.set(p, a);
    }
  }
}

function failureText(err: unknown): string {
  return `error ${errorCode(err) ?? (err instanceof Error ? err.name : 'unknown')}`;
}

/**
 * The digest of every answer in `cache`: path (relative to `base`, or the
 * label `labels` gives it), operation and answer, one line each, in sorted
 * order. No absolute path enters it, so a tree moved elsewhere keeps its
 * fingerprint.
 */
export function crawlDigest(cache: IoCache, base: string, labels: ReadonlyMap<string, string>): string {
  // Sorted lines are sorted by name first (no name holds a NUL), then by
  // operation: the lines of one path are written in order ("dir" < "file" <
  // "stat") as the paths come by name, each line in pieces, instead of
  // building and sorting every line (a large tree has tens of thousands). Only
  // a name shared by several paths (a label spelled like a path) has its
  // lines built and sorted.
  const out = new LineHasher();
  const group: string[] = [];
  let groupName = '';
  const flush = () => {
    if (group.length === 1) writeAnswerLines(out, cache, groupName, group[0] as string);
    else {
      const lines: string[] = [];
      for (const abs of group) writeAnswerLines({ line: (name, tail) => lines.push(name + tail) }, cache, groupName, abs);
      for (const line of lines.sort()) out.line(line, '');
    }
    group.length = 0;
  };
  forEachPathByName(cache, base, labels, (name, abs) => {
    if (group.length > 0 && name !== groupName) flush();
    groupName = name;
    group.push(abs);
  });
  if (group.length > 0) flush();
  return out.digest();
}

/**
 * Every path of `cache`, by name in sorted order (code units, as Array#sort):
 * below the data root a path's name is its relative path, so these sort as
 * their absolute paths do; the root (".") and labelled files are merged in.
 */
function forEachPathByName(cache: IoCache, base: string, labels: ReadonlyMap<string, string>, visit: (name: string, abs: string) => void): void {
  const prefix = childPath(base, '');
  const below: string[] = [];
  const named: { name: string; abs: string }[] = [];
  const add = (abs: string) => {
    const label = labels.get(abs);
    if (label !== undefined) named.push({ name: `label:${label}`, abs });
    else if (abs === base) named.push({ name: '.', abs });
    else if (abs.startsWith(prefix)) below.push(abs);
    else throw new Error('crawlDigest: a path outside the data root has no label');
  };
  for (const p of cache.stats.keys()) add(p);
  for (const p of cache.dirs.keys()) if (!cache.stats.has(p)) add(p);
  for (const p of cache.files.keys()) if (!cache.stats.has(p) && !cache.dirs.has(p)) add(p);
  below.sort();
  named.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  let next = 0;
  /** The named paths not yet visited whose names sort before or at `bound` (null: all of them). */
  const visitNamed = (bound: string | null) => {
    for (let n = named[next]; n !== undefined && (bound === null || n.name <= bound); n = named[++next]) visit(n.name, n.abs);
  };
  for (const abs of below) {
    const name = abs.slice(prefix.length);
    visitNamed(name);
    visit(name, abs);
  }
  visitNamed(null);
}

/** The digest's lines of one path, as its name and the rest: its listing, its file digest and its kind, in that (sorted) order. */
function writeAnswerLines(out: { line(name: string, tail: string): void }, cache: IoCache, name: string, abs: string): void {
  const dir = cache.dirs.get(abs);
  if (dir !== undefined) {
    const body = isFailure(dir)
      ? failureText(dir.error)
      : dir.entries
          .map((e) => `${e.name}\u0001${String(e.kind)}${e.badName ? '\u0001bad' : ''}`)
          .sort()
          .join('\u0002');
    out.line(name, `\0dir\0${body}`);
  }
  const file = cache.files.get(abs);
  if (file !== undefined) out.line(name, `\0file\0${isFailure(file) ? failureText(file.error) : file.sha256}`);
  const stat = cache.stats.get(abs);
  if (stat !== undefined) out.line(name, `\0stat\0${isFailure(stat) ? failureText(stat.error) : String(stat.kind)}`);
}

/**
 * sha256 of lines, each followed by a newline, in UTF-8: what hashing
 * `lines.join('\n') + '\n'` gives, without building that string (tens of
 * megabytes for a large tree, slower to join than to hash). The lines are
 * encoded into a reused buffer and hashed a megabyte at a time.
 */
class LineHasher {
  private readonly h = createHash('sha256');
  private readonly chunk = Buffer.allocUnsafeSlow(1 << 20);
  private used = 0;

  /** One line, `head` then `tail`: written in two pieces, a line's path need not be copied into a new string first. */
  line(head: string, tail: string): void {
    // At most 3 UTF-8 bytes per UTF-16 code unit (a surrogate pair: 4 bytes for 2 units).
    const most = (head.length + tail.length) * 3 + 1;
    if (this.used + most > this.chunk.length) this.flush();
    if (most > this.chunk.length) this.h.update(`${head}${tail}\n`);
    else {
      this.used += this.chunk.write(head, this.used);
      this.used += this.chunk.write(tail, this.used);
      this.chunk[this.used++] = 0x0a;
    }
  }

  digest(): string {
    this.flush();
    return this.h.digest('hex');
  }

  private flush(): void {
    this.h.update(this.chunk.subarray(0, this.used));
    this.used = 0;
  }
}
