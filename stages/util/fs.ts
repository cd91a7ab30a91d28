// File helpers shared by the stages: atomic writes, writes that keep mtimes when
// nothing changed, a JSON reader whose failures say what went wrong and where,
// and the tree-reading interface the task-list stage scans through.
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, fstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import type { Dirent } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { jsonPieces } from './json-pieces.ts';
import { isHighSurrogate, pairSafeEnd } from './utf16.ts';

// Temporary names: the pid and a random nonce drawn once (pids repeat across
// machines sharing a folder), then a counter; no random bytes per write.
const processNonce = `${process.pid}.${randomBytes(6).toString('hex')}`;
let tempCounter = 0;

/** A temporary file next to `path`, unique to this process and call. */
function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${processNonce}.${(tempCounter++).toString(36)}.tmp`);
}

/**
 * Write `data` to `path` through a temporary file in the same folder and a
 * rename; creates the folder when the first write finds it missing (the
 * response store writes thousands of answers into existing folders: a mkdir
 * per write cost more than the write).
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    await writeFile(tmp, data).catch(async (err: unknown) => {
      if (errorCode(err) !== 'ENOENT') throw err;
      await mkdir(dirname(path), { recursive: true });
      await writeFile(tmp, data);
    });
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** The synchronous twin of `writeFileAtomic`, for executors and the response store. */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  const tmp = tempPathFor(path);
  try {
    try {
      writeFileSync(tmp, data);
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(tmp, data);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * `writeFileAtomicSync` for a text given piece by piece: `fill` calls `write`
 * with the pieces in order; they are encoded (UTF-8, Utf8Chunks) through one
 * reused buffer and written out as it fills, so the whole text is never in
 * memory, as one string or as bytes.
 */
export function writeTextAtomicSync(path: string, fill: (write: (text: string) => void) => void): void {
  const tmp = tempPathFor(path);
  let fd: number | null = null;
  try {
    try {
      fd = openSync(tmp, 'w');
    } catch (err) {
      if (errorCode(err) !== 'ENOENT') throw err;
      mkdirSync(dirname(path), { recursive: true });
      fd = openSync(tmp, 'w');
    }
    const out = fd;
    const chunks = new Utf8Chunks((bytes) => {
      for (let done = 0; done < bytes.length; ) done += writeSync(out, bytes, done, bytes.length - done);
    });
    fill((text) => chunks.write(text));
    chunks.end();
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== null) closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** UTF-16 code units a chunk of bytes holds at least (at most 3 bytes each): `onBytes` is given at most CHUNK * 3 bytes at a time. */
export const CHUNK = 1 << 18;
/** The buffer of a writer that ended, for the next one (a writer holds its own while it runs: two may be open at once). */
let spareBuffer: Buffer | null = null;

/**
 * Text pieces as UTF-8 bytes, a chunk at a time through one reused buffer
 * (`onBytes` gets a view of it, valid until it returns). Each piece is
 * encoded into the buffer as it comes, so a piece is garbage as soon as it is
 * written (never joined to the next, which at 100,000 runs kept a stage's
 * written text alive long enough to reach the old generation). A surrogate
 * pair is never split (each half would be encoded as U+FFFD), so the bytes
 * are those of the whole text encoded at once.
 */
export class Utf8Chunks {
  private readonly onBytes: (bytes: Buffer) => void;
  private buffer: Buffer | null = null;
  private used = 0;
  /** A high surrogate that ended the last piece: encoded with the low one that may begin the next. */
  private held = '';
  constructor(onBytes: (bytes: Buffer) => void) {
    this.onBytes = onBytes;
  }

  write(piece: string): void {
    let text = this.held === '' ? piece : this.held + piece;
    this.held = '';
    if (text.length > 0 && isHighSurrogate(text.charCodeAt(text.length - 1))) {
      this.held = text.slice(-1);
      text = text.slice(0, -1);
    }
    this.encode(text);
  }

  end(): void {
    // A high surrogate last in the text stays alone: encoded as U+FFFD, as the whole text would be.
    this.encode(this.held);
    this.held = '';
    this.emit();
    spareBuffer = this.buffer;
    this.buffer = null;
  }

  private encode(text: string): void {
    let at = 0;
    while (at < text.length) {
      if (this.buffer === null) {
        this.buffer = spareBuffer ?? Buffer.allocUnsafeSlow(CHUNK * 3);
        spareBuffer = null;
      }
      const room = Math.floor((this.buffer.length - this.used) / 3);
      const end = pairSafeEnd(text, Math.min(text.length, at + room));
      if (end <= at) {
        this.emit();
        continue;
      }
      this.used += this.buffer.write(at === 0 && end === text.length ? text : text.slice(at, end), this.used);
      at = end;
    }
  }

  private emit(): void {
    if (this.buffer === null || this.used === 0) return;
    this.onBytes(this.buffer.subarray(0, this.used));
    this.used = 0;
  }
}

/** `writeTextAtomicSync` for a text given as an iterable of pieces (stages/util/json-pieces.ts makes the pieces of a JSON file). */
export function writePiecesAtomicSync(path: string, pieces: Iterable<string>): void {
  writeTextAtomicSync(path, (write) => {
    for (const piece of pieces) write(piece);
  });
}

/** JSON with 2-space indent and a trailing newline: the format of our own files. */
export function writeJson(file: string, value: unknown): void {
  // In pieces: categorization.json holds every run's example (87 MB at 100,000 runs), never one string.
  writePiecesAtomicSync(file, jsonPieces(value));
}

function toBytes(data: string | Uint8Array): Uint8Array {
  return typeof data === 'string' ? new TextEncoder().encode(data) : data;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Write `data` atomically unless `path` already holds exactly these bytes (then
 * the file, and its mtime, are left alone). Returns whether it wrote.
 */
export async function writeIfChanged(path: string, data: string | Uint8Array): Promise<boolean> {
  const bytes = toBytes(data);
  try {
    const current = await readFile(path);
    if (sameBytes(current, bytes)) return false;
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw err;
  }
  await writeFileAtomic(path, bytes);
  return true;
}

/** The `code` of a Node system error (ENOENT, EACCES, ...), or undefined. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** A short description of an I/O error that names no path (Node's messages embed absolute paths). */
export function describeIoError(err: unknown): string {
  const code = errorCode(err);
  switch (code) {
    case 'EISDIR':
      return 'is a folder, not a file (EISDIR)';
    case 'ENOTDIR':
      return 'is not a folder (ENOTDIR)';
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${code})`;
    case 'ENOENT':
      return 'not found (ENOENT)';
    case 'ELOOP':
      return 'too many symbolic links (ELOOP)';
    case undefined:
      return err instanceof Error ? err.name : 'unknown error';
    default:
      return `I/O error (${code})`;
  }
}

export type JsonTopLevel = 'object' | 'array' | 'any';
export type ReadJsonErrorKind = 'missing' | 'io' | 'utf8' | 'syntax' | 'type';

export type ReadJsonResult<T> =
  | { ok: true; value: T; bytes: Uint8Array }
  | { ok: false; kind: ReadJsonErrorKind; message: string; code?: string };

export interface ReadJsonOptions {
  /** Required top-level type; default 'object'. */
  expect?: JsonTopLevel;
  /** Parser; default JSON.parse. Use `pyJsonParse` to read as Python does. */
  parse?: (text: string) => unknown;
  /** How the file is named in messages; default the path as given. */
  label?: string;
  /** Larger files are refused with a clear message instead of being read (default MAX_JSON_BYTES). */
  maxBytes?: number;
}

/** The largest JSON file the readers accept by default: far above any real run file, far below what would exhaust memory. */
export const MAX_JSON_BYTES = 64 * 1024 * 1024;

/** The JSON type name of a parsed value: object, array, string, number, boolean or null. */
export function jsonTypeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'object') {
    // PyFloat / PyInt from pyJsonParse, and anything else with a numeric toJSON.
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
      return 'number';
    }
    return 'object';
  }
  if (typeof v === 'bigint') return 'number';
  return typeof v;
}

/** Byte offset of the first invalid UTF-8 sequence, or -1 when the bytes are valid UTF-8. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    let cp: number;
    if (b >= 0xc2 && b <= 0xdf) [need, min, cp] = [1, 0x80, b & 0x1f];
    else if (b >= 0xe0 && b <= 0xef) [need, min, cp] = [2, 0x800, b & 0x0f];
    else if (b >= 0xf0 && b <= 0xf4) [need, min, cp] = [3, 0x10000, b & 0x07];
    else return i;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}

/**
 * Decode and parse JSON bytes (pure). The text must be strict UTF-8; a byte
 * order mark is kept and so makes the JSON invalid, as in Python's `json.load`.
 */
export function parseJsonBytes<T = unknown>(bytes: Uint8Array, label: string, options: ReadJsonOptions = {}): ReadJsonResult<T> {
  const expect = options.expect ?? 'object';
  const parse = options.parse ?? ((text: string): unknown => JSON.parse(text));
  const bad = firstInvalidUtf8(bytes);
  if (bad >= 0) {
    return { ok: false, kind: 'utf8', message: `${label}: not valid UTF-8 (first bad byte at offset ${bad})` };
  }
  const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  if (text.trim() === '') {
    return { ok: false, kind: 'syntax', message: `${label}: invalid JSON: the file is empty` };
  }
  if (text.charCodeAt(0) === 0xfeff) {
    return { ok: false, kind: 'syntax', message: `${label}: invalid JSON: starts with a byte order mark (U+FEFF)` };
  }
  let value: unknown;
  try {
    value = parse(text);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    return { ok: false, kind: 'syntax', message: `${label}: invalid JSON: ${detail}` };
  }
  const found = jsonTypeName(value);
  if (expect !== 'any' && found !== expect) {
    return {
      ok: false,
      kind: 'type',
      message: `${label}: expected a JSON ${expect} at the top level, found ${found === 'array' || found === 'object' ? 'an' : 'a'} ${found}`,
    };
  }
  return { ok: true, value: value as T, bytes };
}

/**
 * Read and parse a JSON file. Failures are returned, not thrown, as one of:
 * missing (ENOENT, or a parent that is not a folder), io (any other read
 * error, a file that is not a regular file, or one above `maxBytes`), utf8,
 * syntax (including an empty file) and type (wrong top-level type; default
 * expectation: an object). Every message starts with the file's label and
 * never quotes the file's content. Only a regular file is read: a FIFO,
 * socket or device is opened non-blocking and refused, so it cannot hang.
 */
export function readJsonFileSync<T = unknown>(path: string, options: ReadJsonOptions = {}): ReadJsonResult<T> {
  const label = options.label ?? path;
  let bytes: Uint8Array;
  let fd: number | null = null;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
    const st = fstatSync(fd);
    if (!st.isFile()) return { ok: false, kind: 'io', message: `${label}: not a regular file (${st.isFIFO() ? 'a named pipe' : st.isDirectory() ? 'a folder' : 'a special file'}); not read` };
    const max = options.maxBytes ?? MAX_JSON_BYTES;
    if (st.size > max) return { ok: false, kind: 'io', message: `${label}: ${st.size} bytes, above the ${max}-byte limit for a JSON file; not read` };
    bytes = readFileSync(fd);
  } catch (err) {
    return readFailure(err, label);
  } finally {
    if (fd !== null) closeSync(fd);
  }
  return parseJsonBytes<T>(bytes, label, options);
}

function readFailure(err: unknown, label: string): { ok: false; kind: ReadJsonErrorKind; message: string; code?: string } {
  const code = errorCode(err);
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return { ok: false, kind: 'missing', message: `${label}: file not found`, code };
  }
  return { ok: false, kind: 'io', message: `${label}: cannot read: ${describeIoError(err)}`, ...(code ? { code } : {}) };
}

// ---------------------------------------------------------------------------
// Reading a tree

/**
 * What a path is once symbolic links are followed. When the caller names the
 * data root a path belongs to, a symbolic link is not followed out of it:
 * `link-out` is a link whose target lies outside the data root, `link-loop`
 * one that cannot be resolved (ELOOP) or points at one of its own ancestors.
 */
export type EntryKind = 'dir' | 'file' | 'other' | 'link-out' | 'link-loop';

export interface DirEntry {
  name: string;
  /** null for a dangling symbolic link. */
  kind: EntryKind | null;
  /** True when the name on disk is not valid UTF-8 (`name` is then a lossy rendering). */
  badName?: boolean;
}

/**
 * The read-only file-system access the task-list scan needs. Methods throw
 * Node-style errors (with `code`) for anything but "does not exist".
 */
export interface TreeIo {
  /** Kind of the entry (following links), or null when it does not exist (ENOENT, ENOTDIR, ELOOP). */
  stat(path: string, root?: string): Promise<EntryKind | null>;
  /** The entries of a folder, in any order. `root`: the data root links may not leave (see EntryKind). */
  readDir(path: string, root?: string): Promise<DirEntry[]>;
  readFile(path: string): Promise<Uint8Array>;
}

/** What a stat result (or a folder entry that is no link) is. */
export function kindOfStats(s: { isDirectory(): boolean; isFile(): boolean }): 'dir' | 'file' | 'other' {
  return s.isDirectory() ? 'dir' : s.isFile() ? 'file' : 'other';
}

/** An error that says the path is not there (missing, under a file, or a link loop): a null kind, not a failure. */
export function isNoPathError(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP';
}

async function kindOf(path: string | Buffer): Promise<EntryKind | null> {
  try {
    return kindOfStats(await stat(path));
  } catch (err) {
    if (isNoPathError(err)) return null;
    throw err;
  }
}

/** A folder entry's name as text; `badName` when the bytes are not valid UTF-8 (the name is then a lossy rendering). */
export function decodeEntryName(raw: Uint8Array): { name: string; badName: boolean } {
  try {
    return { name: new TextDecoder('utf-8', { fatal: true }).decode(raw), badName: false };
  } catch {
    return { name: new TextDecoder('utf-8').decode(raw), badName: true };
  }
}

/**
 * An entry of a folder listed as bytes: its name, and its kind unless it is a
 * symbolic link, whose kind the caller finds by following `linkPath`.
 */
export function listedEntry(dir: string, d: Dirent<Buffer>): { name: string; badName: boolean; kind: EntryKind; linkPath: null } | { name: string; badName: boolean; kind: null; linkPath: Buffer } {
  const { name, badName } = decodeEntryName(d.name);
  if (d.isSymbolicLink()) return { name, badName, kind: null, linkPath: Buffer.concat([Buffer.from(`${dir}/`), d.name]) };
  return { name, badName, kind: kindOfStats(d), linkPath: null };
}

/** A DirEntry (`badName` only where it is true). */
export function dirEntry(name: string, kind: EntryKind | null, badName: boolean): DirEntry {
  return badName ? { name, kind, badName } : { name, kind };
}

/** TreeIo on the real file system. */
export const nodeTreeIo: TreeIo = {
  stat: (path) => kindOf(path),
  async readDir(path) {
    const dirents = await readdir(path, { withFileTypes: true, encoding: 'buffer' });
    const out: DirEntry[] = [];
    for (const d of dirents) {
      const e = listedEntry(path, d);
      out.push(dirEntry(e.name, e.linkPath ? await kindOf(e.linkPath) : e.kind, e.badName));
    }
    return out;
  },
  readFile: (path) => readFile(path),
};
