// The key's memo: Nx runs every cached stage's runtime input
// (executors/key.mjs) on every command that hashes it, and computing the record
// reads every file it names, the code, the packages and, for task-list, every
// folder and answer file of the data tree. On a no-op nothing of that changed.
//
// So key.ts watches what its computation reads (this Witness: every path
// node:fs is asked about, every module loaded, every environment variable
// looked up, and every folder and file the data crawl touched) and leaves,
// next to the record, a memo: the key line it printed and the stat signature
// of each path (mode, inode, device, size, mtime, ctime; a missing path as
// missing). The next run prints the memo's line when every signature, the
// description, the workspace, Node and those variables are unchanged, without
// loading the record's code; anything else computes the record again.
//
// This is the trust git's index puts in stat data: a write changes ctime, which
// no tool can set back. Two guards keep it sound:
// - a path changed while the record was computed, or shortly before (within
//   2 s of the start, by the file system's own clock), could have been read
//   in one state and signed in another, or changed again within one tick of
//   the clock: no memo is written, and the next run computes again;
// - the record file it vouches for must still be the one it wrote.
// Upstream outputs are the exception: Nx rewrites them when it restores them,
// so they are checked by content against the record's own digests.
// META_ANALYSIS_KEY_MEMO=off turns it off (file systems whose stat data cannot
// be trusted, such as some network mounts with attribute caching).
//
// Only node: modules and stages/keyed-record.ts are imported: the fast path
// is most of what a no-op costs.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { registerHooks, syncBuiltinESMExports } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { decodePaths, encodePaths, fileDigest, keyedRecordFile, keyMemoFile, keysDir, sha256, stageOutputDir } from '../stages/keyed-record.ts';

const FORMAT = 4;
/**
 * A path whose mtime or ctime is this close to the computation's start (or
 * later) is not trusted: 2 s covers the coarsest clocks of common file systems.
 * META_ANALYSIS_KEY_MEMO_RACY_MS is for tests, which cannot wait 2 s per edit.
 */
const racyMs = (): number => {
  const v = Number(process.env['META_ANALYSIS_KEY_MEMO_RACY_MS']);
  return Number.isFinite(v) && v >= 0 ? v : 2000;
};

interface Memo {
  format: number;
  /** The workspace the paths are in: a copied workspace (with its .cache) computes again. */
  root: string;
  /** sha256 of the description (the runtime input's argument). */
  description: string;
  node: string;
  /** The environment variables the computation looked up, and the sha256 of their values. */
  env: { names: string[]; digest: string };
  /** The line the key printed. */
  line: string;
  /** sha256 of the record file it left. */
  record: string;
  /** How many paths follow the header, and the sha256 of their stat signatures, in order. */
  count: number;
  signatures: string;
}

// The memo file: the header (JSON) on the first line, then the paths, sorted
// and front-coded (`<length of the prefix shared with the previous path>\t<rest>`):
// a data tree's paths share most of their characters, and at 100,000 runs the
// list is what the fast path reads.

const memoOff = (): boolean => process.env['META_ANALYSIS_KEY_MEMO'] === 'off';

const NO_THROW = { throwIfNoEntry: false } as const;
const errorCode = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? 'error';

/** stat (following links) of a symbolic link's target, in one string. */
function targetSignature(path: string): { sig: string; time: number } {
  try {
    const t = fs.statSync(path, NO_THROW);
    if (t === undefined) return { sig: '!ENOENT', time: 0 };
    return { sig: `${t.mode}:${t.dev}:${t.ino}:${t.size}:${t.mtimeMs}:${t.ctimeMs}`, time: Math.max(t.mtimeMs, t.ctimeMs) };
  } catch (err) {
    return { sig: `!${errorCode(err)}`, time: 0 };
  }
}

/** What lstat says of paths, as signaturesOf puts it into its digest: six numbers each, and text for errors and links. */
interface Signed {
  numbers: Float64Array;
  /** `<index> <text>` for each path that could not be stat'ed or is a symbolic link, by index. */
  text: string[];
  latest: number;
}

/** Signs the next `count` of `paths`, the paths of indices `first`, `first + 1`, ..., into `into` (whose `numbers` start at index `first`). */
function signInto(paths: Iterator<string>, first: number, count: number, into: Signed): void {
  for (let i = first; i < first + count; i++) {
    const next = paths.next();
    if (next.done) throw new Error(`key memo: fewer paths than the ${first + count} said`);
    const path = next.value;
    const j = (i - first) * 6;
    const numbers = into.numbers;
    let s: fs.Stats | undefined;
    try {
      s = fs.lstatSync(path, NO_THROW);
    } catch (err) {
      numbers[j] = -2;
      into.text.push(`${i} !${errorCode(err)}`);
      continue;
    }
    if (s === undefined) {
      numbers[j] = -1;
      continue;
    }
    numbers[j] = s.mode;
    numbers[j + 1] = s.dev;
    numbers[j + 2] = s.ino;
    numbers[j + 3] = s.size;
    numbers[j + 4] = s.mtimeMs;
    numbers[j + 5] = s.ctimeMs;
    into.latest = Math.max(into.latest, s.mtimeMs, s.ctimeMs);
    if (s.isSymbolicLink()) {
      const t = targetSignature(path);
      into.text.push(`${i} ${t.sig}`);
      into.latest = Math.max(into.latest, t.time);
    }
  }
}

const digestOf = (signed: Signed): string => createHash('sha256').update(signed.numbers).update(signed.text.join('\n')).digest('hex');

/**
 * What lstat says of each of `count` paths, in order, as one digest, and the
 * latest mtime or ctime among them. Six numbers per path (mode, device, inode,
 * size, mtime, ctime; -1 when missing, -2 when it cannot be stat'ed) go into
 * one buffer (turning them into strings cost a third of the time at 500,000
 * paths); the error codes and the stat of symbolic links' targets follow as
 * text. The paths are taken one at a time: the memo's are decoded as they are
 * signed, never all held at once.
 */
function signaturesOf(paths: Iterable<string>, count: number): { digest: string; latest: number } {
  const signed: Signed = { numbers: new Float64Array(count * 6), text: [], latest: 0 };
  const it = paths[Symbol.iterator]();
  signInto(it, 0, count, signed);
  if (!it.next().done) throw new Error(`key memo: more than the ${count} paths said`);
  return { digest: digestOf(signed), latest: signed.latest };
}

/**
 * Below this many paths the memo is signed in one thread: a worker thread
 * costs about 0.15 s to start and load this module, and two threads' lstat
 * calls contend in the kernel. Measured on the 2-core bench machine, quiet:
 * at 10,000 runs (about 50,000 paths) one thread took 0.45-0.65 s and two
 * 0.56-0.72 s; at 100,000 runs (about 500,000 paths) one 3.1-3.2 s and two
 * 2.66-2.73 s. The two cross near 120,000 paths.
 */
export const PARALLEL_SIGNING_FROM = 150_000;

/** What a signing worker is given: the memo's path lines (front-coded, from the first path), and which of them it signs. */
export interface SigningShare {
  lines: string;
  from: number;
  count: number;
}

/** In a signing worker (key-memo-worker.mjs): its share, signed. */
export function signShare(share: SigningShare): Signed {
  const lines = share.lines.split('\n');
  const paths = decodePaths(lines, 0);
  for (let i = 0; i < share.from; i++) paths.next();
  const signed: Signed = { numbers: new Float64Array(share.count * 6), text: [], latest: 0 };
  signInto(paths, share.from, share.count, signed);
  return signed;
}

/**
 * signaturesOf of the memo's paths (`lines` from index 1), the same digest,
 * with the second half signed by a worker thread while this one signs the
 * first (the worker decodes the first half's paths to reach its own, without
 * signing them). A worker that fails leaves its half to this thread.
 */
export async function memoSignatures(lines: readonly string[], count: number, parallelFrom = PARALLEL_SIGNING_FROM): Promise<{ digest: string; threads: number }> {
  if (count < parallelFrom || availableParallelism() < 2 || process.env['META_ANALYSIS_KEY_MEMO_THREADS'] === '1') return { digest: signaturesOf(decodePaths(lines, 1), count).digest, threads: 1 };
  const mine = Math.ceil(count / 2);
  const share: SigningShare = { lines: lines.slice(1).join('\n'), from: mine, count: count - mine };
  const worker = new Worker(new URL('./key-memo-worker.mjs', import.meta.url), { workerData: share });
  const theirs = new Promise<Signed | null>((done) => {
    worker.once('message', (signed: Signed) => done(signed));
    worker.once('error', () => done(null));
    worker.once('exit', () => done(null));
  });
  const signed: Signed = { numbers: new Float64Array(count * 6), text: [], latest: 0 };
  const paths = decodePaths(lines, 1);
  signInto(paths, 0, mine, signed);
  const other = await theirs;
  void worker.terminate();
  if (other === null) signInto(paths, mine, count - mine, { ...signed, numbers: signed.numbers.subarray(mine * 6) });
  else {
    signed.numbers.set(other.numbers, mine * 6);
    signed.text.push(...other.text);
  }
  return { digest: digestOf(signed), threads: other === null ? 1 : 2 };
}

/**
 * Credentials are left out: no record holds one (an endpoint's identity never
 * does), so a new key cannot change a record, and no digest of a secret is
 * written anywhere.
 */
const CREDENTIAL = /KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL/i;

function envDigest(names: readonly string[]): string {
  return sha256(JSON.stringify(names.filter((n) => !CREDENTIAL.test(n)).map((n) => [n, process.env[n] ?? null])));
}

/** What the memo needs of a description: where its record is, and the upstream files it reads. */
interface Described {
  analysis: string;
  stage: string;
  outDir: string;
  reads: [string, string][];
}

/** The description's parts the memo uses, or null when the argument is not a description. */
function stageOf(description: string): Described | null {
  try {
    const d = JSON.parse(description) as Partial<Described>;
    if (typeof d.analysis !== 'string' || typeof d.stage !== 'string' || typeof d.outDir !== 'string' || !Array.isArray(d.reads)) return null;
    return { analysis: d.analysis, stage: d.stage, outDir: d.outDir, reads: d.reads };
  } catch {
    return null;
  }
}

/**
 * The upstream files a stage reads, by path, with the name its record gives
 * them. Nx writes them anew whenever it restores an upstream output from its
 * cache (on every command without the daemon), so their stat data changes
 * while their bytes do not: the memo checks them by content, against the
 * digests in the record itself.
 */
function upstreamFiles(root: string, d: Described): Map<string, string> {
  return new Map(d.reads.map(([stage, file]) => [join(stageOutputDir(root, d, stage), file), `${stage}/${file}`]));
}

/** The key line the memo vouches for, or null (no memo, or something it covers changed): then compute. */
export async function memoHit(description: string, root: string): Promise<string | null> {
  if (memoOff()) return null;
  const d = stageOf(description);
  if (d === null) return null;
  let text: string;
  try {
    text = fs.readFileSync(keyMemoFile(root, d), 'utf8');
  } catch {
    return null;
  }
  const lines = text.split('\n');
  let m: Memo;
  try {
    m = JSON.parse(lines[0]!) as Memo;
  } catch {
    return null;
  }
  if (m.format !== FORMAT || m.root !== root || m.description !== sha256(description) || m.node !== process.version) return null;
  if (lines.length !== m.count + 1 || envDigest(m.env.names) !== m.env.digest) return null;
  let record: { upstream?: Record<string, string> };
  try {
    const bytes = fs.readFileSync(keyedRecordFile(root, d));
    if (sha256(bytes) !== m.record) return null;
    record = JSON.parse(bytes.toString('utf8')) as typeof record;
  } catch {
    return null;
  }
  for (const [path, name] of upstreamFiles(root, d)) if (record.upstream?.[name] === undefined || fileDigest(path) !== record.upstream[name]) return null;
  return (await memoSignatures(lines, m.count)).digest === m.signatures ? m.line : null;
}

type Wrapped = Record<string, (...args: unknown[]) => unknown>;

/** Replaces each function of `target` named in `names` by one that first tells `note` the path it reads (an open for writing is not a read). */
function wrapReads(target: Wrapped, names: readonly string[], note: (path: unknown) => void): void {
  for (const name of names) {
    const original = target[name];
    if (typeof original !== 'function') continue;
    const opens = name === 'open' || name === 'openSync';
    target[name] = Object.assign(function (this: unknown, ...args: unknown[]) {
      if (!opens || !opensForWriting(args[1])) note(args[0]);
      return original.apply(this, args);
    }, original);
  }
}

/**
 * An absolute path path.resolve would return unchanged: no empty, `.` or `..`
 * component and no trailing slash.
 */
const NOT_RESOLVED = /\/\/|\/\.\.?(?:\/|$)|.\/$/;

/**
 * The absolute path of an fs path argument (string, Buffer, file URL); null for
 * a file descriptor. A path already resolved is kept as it is: path.resolve
 * builds a new string out of a slice per component, and at 100,000 runs the
 * data crawl's 500,000 paths built that way held about 350 MiB.
 */
function pathOf(p: unknown): string | null {
  if (typeof p === 'string') return p.startsWith('/') && !NOT_RESOLVED.test(p) ? p : resolve(p);
  if (Buffer.isBuffer(p)) return resolve(p.toString());
  if (p instanceof URL) return p.protocol === 'file:' ? fileURLToPath(p) : null;
  return null;
}

/**
 * Watches what the key's computation reads, from `start()` (before its code is
 * loaded) to `write()`. Reads only: opening for writing is not an input.
 */
export class Witness {
  private readonly paths = new Set<string>();
  private readonly envNames = new Set<string>();
  private recording = false;
  /** The file system's clock at the start (the mtime of a file written then), ms. */
  private startedAt = 0;

  private readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  start(): void {
    if (memoOff()) return;
    this.startedAt = this.clock();
    this.recording = true;
    const note = (p: unknown) => {
      if (!this.recording) return;
      const abs = pathOf(p);
      if (abs !== null) this.paths.add(abs);
    };
    // Each read, callback and synchronous; existsSync has no callback twin worth watching.
    const reads = ['readFile', 'stat', 'lstat', 'readdir', 'opendir', 'access', 'realpath', 'readlink', 'open'];
    wrapReads(fs as unknown as Wrapped, [...reads, ...reads.map((n) => `${n}Sync`), 'existsSync'], note);
    wrapReads(fs.promises as unknown as Wrapped, reads, note);
    syncBuiltinESMExports();
    registerHooks({
      load: (url, context, nextLoad) => {
        if (url.startsWith('file:')) note(new URL(url));
        return nextLoad(url, context);
      },
    });
    const env = process.env;
    const envNames = this.envNames;
    const recording = () => this.recording;
    process.env = new Proxy(env, {
      get(t, k) {
        if (typeof k === 'string' && recording()) envNames.add(k);
        return Reflect.get(t, k);
      },
      has(t, k) {
        if (typeof k === 'string' && recording()) envNames.add(k);
        return Reflect.has(t, k);
      },
    });
  }

  /** Paths read outside node:fs (the data crawl's worker threads report theirs). */
  add(paths: Iterable<string>): void {
    if (!this.recording) return;
    for (const p of paths) this.paths.add(p);
  }

  /**
   * Leaves the memo of `line` (the key printed) for the record just written,
   * unless something read changed during the computation or too close to its start.
   */
  write(description: string, line: string): void {
    if (!this.recording) return;
    this.recording = false;
    const d = stageOf(description);
    if (d === null) return;
    const file = keyMemoFile(this.root, d);
    this.paths.delete(file);
    for (const path of upstreamFiles(this.root, d).keys()) this.paths.delete(path);
    const paths = [...this.paths].sort();
    const { digest, latest } = signaturesOf(paths, paths.length);
    // A path with a line break cannot be written one per line; a racy one cannot be trusted.
    if (latest >= this.startedAt - racyMs() || paths.some((p) => p.includes('\n'))) {
      fs.rmSync(file, { force: true });
      return;
    }
    const names = [...this.envNames].sort();
    const memo: Memo = {
      format: FORMAT,
      root: this.root,
      description: sha256(description),
      node: process.version,
      env: { names, digest: envDigest(names) },
      line,
      record: sha256(fs.readFileSync(keyedRecordFile(this.root, d))),
      count: paths.length,
      signatures: digest,
    };
    writeAtomic(file, [JSON.stringify(memo), ...encodePaths(paths)].join('\n'));
  }

  /** The file system's current time, ms: the mtime of a file written now (stat times come from it, not from Date). */
  private clock(): number {
    const probe = join(keysDir(this.root), `.clock-${process.pid}`);
    fs.mkdirSync(dirname(probe), { recursive: true });
    fs.writeFileSync(probe, '');
    try {
      const s = fs.statSync(probe);
      return Math.min(s.mtimeMs, s.ctimeMs);
    } finally {
      fs.rmSync(probe, { force: true });
    }
  }
}

function opensForWriting(flags: unknown): boolean {
  if (typeof flags === 'string') return !flags.startsWith('r');
  if (typeof flags === 'number') return (flags & (fs.constants.O_WRONLY | fs.constants.O_RDWR)) !== 0;
  return false;
}

function writeAtomic(file: string, text: string): void {
  fs.mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  } catch {
    fs.rmSync(tmp, { force: true });
  }
}
