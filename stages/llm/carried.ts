// Answers carried in a stage's own output. Each LLM stage writes
// `answers.jsonl` next to its results: one line per answer it used (from the
// store, carried, or bought), sorted by request hash, holding only what is
// the same on every run with the same inputs, so the file is byte-identical
// when they are. Nx caches and restores it with the rest of the output, so a
// clone whose targets came from the Nx cache (and whose response store is
// empty) still has every answer: on a store miss the stage takes the answer
// from there, copies it into the store, and pays only for what is new.
//
// withCarriedAnswers is also where the layers meet: the local store, these
// carried answers, then the team's shared store (remote-store.ts) when one is
// configured.
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { errorCode } from '../util/fs.ts';
import { jsonStringPieces } from '../util/json-pieces.ts';
import type { RemoteStore } from './remote-store.ts';
import type { ResponseStore, StoredAnswer } from './store.ts';
import type { Usage } from './types.ts';

export const ANSWERS_FILE = 'answers.jsonl';

/** One line of answers.jsonl. `text` is the whole answer as the store keeps it (raw text; JSON for offline answers). */
export interface AnswerRecord {
  request_hash: string;
  text: string;
  usage: Usage;
  /** USD when the answer was bought (null: the model has no price). */
  cost_usd: number | null;
}

const HASH = /^[0-9a-f]{64}$/;

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0;
}

/** One line, keys in a fixed order, in pieces: the text (one answer can be 45 MB) escaped a part at a time. */
function* answerLinePieces(r: AnswerRecord): Generator<string> {
  yield `{"request_hash":${JSON.stringify(r.request_hash)},"text":`;
  yield* jsonStringPieces(r.text);
  const usage = { input_tokens: r.usage.input_tokens, output_tokens: r.usage.output_tokens, total_tokens: r.usage.total_tokens };
  yield `,"usage":${JSON.stringify(usage)},"cost_usd":${JSON.stringify(r.cost_usd)}}`;
}

/** answers.jsonl: one line per request hash (the first record of each), sorted by hash. */
export function formatAnswers(records: Iterable<AnswerRecord>): string {
  return [...answerPieces(records)].join('');
}

/** formatAnswers in pieces, for writePiecesAtomicSync. */
export function* answerPieces(records: Iterable<AnswerRecord>): Generator<string> {
  const byHash = new Map<string, AnswerRecord>();
  for (const r of records) if (!byHash.has(r.request_hash)) byHash.set(r.request_hash, r);
  const hashes = [...byHash.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const h of hashes) {
    yield* answerLinePieces(byHash.get(h) as AnswerRecord);
    yield '\n';
  }
}

/** The record on one line, or why it cannot be used. */
function parseLine(line: string): AnswerRecord | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (err) {
    return `not JSON (${(err as Error).message})`;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'not a JSON object';
  const o = v as Record<string, unknown>;
  if (typeof o['request_hash'] !== 'string' || !HASH.test(o['request_hash'])) return 'request_hash is not a sha256 hex digest';
  if (typeof o['text'] !== 'string') return 'text is not a string';
  const u = o['usage'] as Record<string, unknown> | null | undefined;
  if (!u || typeof u !== 'object' || !isCount(u['input_tokens']) || !isCount(u['output_tokens']) || !isCount(u['total_tokens'])) {
    return 'usage is not {input_tokens, output_tokens, total_tokens}';
  }
  const cost = o['cost_usd'];
  if (cost !== null && !(typeof cost === 'number' && Number.isFinite(cost))) return 'cost_usd is not a number or null';
  return {
    request_hash: o['request_hash'],
    text: o['text'],
    usage: { input_tokens: u['input_tokens'], output_tokens: u['output_tokens'], total_tokens: u['total_tokens'] },
    cost_usd: cost,
  };
}

/** A line that cannot be used: its number (1-based) and why. */
interface DamagedLine {
  line: number;
  reason: string;
}

/** Parses answers.jsonl text; damaged lines are listed (1-based), never thrown. Blank lines are ignored. */
export function parseAnswers(text: string): { answers: Map<string, AnswerRecord>; damaged: DamagedLine[] } {
  const answers = new Map<string, AnswerRecord>();
  const damaged: DamagedLine[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const r = parseLine(line);
    if (typeof r === 'string') damaged.push({ line: i + 1, reason: r });
    else if (!answers.has(r.request_hash)) answers.set(r.request_hash, r);
  }
  return { answers, damaged };
}

function warnDamaged(file: string, damaged: readonly DamagedLine[], warn: (msg: string) => void): void {
  if (damaged.length === 0) return;
  const first = damaged[0]!;
  warn(
    `carried answers: skipped ${damaged.length} damaged line(s) of ${file} (line ${first.line}: ${first.reason}` +
      `${damaged.length > 1 ? `; lines ${damaged.map((d) => d.line).join(', ')}` : ''}); their answers are asked again if needed`,
  );
}

/** No answers carried, as when `file` cannot be read: a warning, unless it does not exist. */
function noneCarried(file: string, err: unknown, warn: (msg: string) => void): Map<string, AnswerRecord> {
  if (errorCode(err) !== 'ENOENT') warn(`carried answers: ignoring unreadable ${file}: ${(err as Error).message}`);
  return new Map();
}

/**
 * The answers carried in `file` (a stage's own answers.jsonl). A missing file
 * is an empty one; an unreadable file or damaged lines give one warning and
 * are skipped (their answers are misses).
 */
export function readCarriedAnswers(file: string, warn: (msg: string) => void): Map<string, AnswerRecord> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return noneCarried(file, err, warn);
  }
  const { answers, damaged } = parseAnswers(text);
  warnDamaged(file, damaged, warn);
  return answers;
}

/** Carried answers looked up by request hash: a Map, or an index of the file (indexCarriedAnswers). */
export interface CarriedAnswers {
  get(hash: string): AnswerRecord | undefined;
  /** Lets the file go (an index keeps it open between lookups); a later lookup opens it again. */
  close?(): void;
}

/** Lines are read from the file this many bytes at a time while it is indexed. */
const INDEX_BLOCK = 1 << 20;

/**
 * The answers carried in `file`, as readCarriedAnswers finds them (same
 * warnings, same answers), but kept on disk: every line is checked once,
 * then only its place in the file is kept, and a lookup reads its line
 * again. At 100,000 runs summarize's answers.jsonl is about 120 MiB, and a
 * stage whose answers are all in the local store never looks one up.
 * A line that no longer holds its answer when it is read (the file replaced
 * meanwhile) is a miss.
 */
export function indexCarriedAnswers(file: string, warn: (msg: string) => void): CarriedAnswers {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    return noneCarried(file, err, warn);
  }
  // Each answer's first line: where it starts and how many bytes it has.
  const at = new Map<string, { start: number; length: number }>();
  const damaged: DamagedLine[] = [];
  try {
    const block = Buffer.allocUnsafe(INDEX_BLOCK);
    // The line being read, when it began in an earlier block: those blocks' bytes (copied, the block is reused) and where it starts.
    let pending: Buffer[] = [];
    let pendingStart = 0;
    let lineNo = 0;
    const take = (bytes: Buffer, start: number) => {
      lineNo += 1;
      const line = bytes.toString('utf8').trim();
      if (line === '') return;
      const r = parseLine(line);
      if (typeof r === 'string') damaged.push({ line: lineNo, reason: r });
      else if (!at.has(r.request_hash)) at.set(r.request_hash, { start, length: bytes.length });
    };
    for (let pos = 0; ; ) {
      const n = readSync(fd, block, 0, INDEX_BLOCK, pos);
      if (n === 0) break;
      let from = 0;
      // Only the new block is searched: a line longer than a block costs one copy of each of its blocks and one join.
      for (let nl = block.indexOf(0x0a, from); nl !== -1 && nl < n; nl = block.indexOf(0x0a, from)) {
        if (pending.length > 0) {
          take(Buffer.concat([...pending, block.subarray(0, nl)]), pendingStart);
          pending = [];
        } else take(block.subarray(from, nl), pos + from);
        from = nl + 1;
      }
      if (from < n) {
        if (pending.length === 0) pendingStart = pos + from;
        pending.push(Buffer.from(block.subarray(from, n)));
      }
      pos += n;
    }
    if (pending.length > 0) take(Buffer.concat(pending), pendingStart);
  } catch (err) {
    warn(`carried answers: ignoring unreadable ${file}: ${(err as Error).message}`);
    at.clear();
  } finally {
    closeSync(fd);
  }
  warnDamaged(file, damaged, warn);
  // Open between lookups: a stage that keeps its previous results looks up every answer (100,000 at
  // 100,000 runs), and an open and a close per lookup cost more than the read.
  let open: number | null = null;
  return {
    get(hash) {
      const place = at.get(hash);
      if (!place) return undefined;
      const bytes = Buffer.alloc(place.length);
      try {
        open ??= openSync(file, 'r');
        readSync(open, bytes, 0, place.length, place.start);
      } catch {
        return undefined;
      }
      const r = parseLine(bytes.toString('utf8').trim());
      return typeof r !== 'string' && r.request_hash === hash ? r : undefined;
    },
    close() {
      try {
        if (open !== null) closeSync(open);
      } catch {
        // already closed: nothing to let go
      }
      open = null;
    },
  };
}

export interface CarriedStore extends ResponseStore {
  /** Lookups answered from the carried answers (each then copied into the local store). */
  readonly carriedHits: number;
  /** Lookups answered from the shared store (each then copied into the local store). */
  readonly remoteHits: number;
  /**
   * The end of the stage: waits (bounded) until the answers bought in this
   * run have reached the shared store (nothing to do without one), and lets
   * the carried answers' file go. Never throws.
   */
  flush(): void;
}

/**
 * The local store with the carried answers layered under it, and the shared
 * store (if any) under both: a lookup tries the local store, then the carried
 * answers, then the shared store; an answer found in a lower layer is copied
 * into the local store (with the request of the lookup) before it is
 * returned. Writes (answers bought in this run) go to the local store and,
 * in the background, to the shared store.
 */
export function withCarriedAnswers(local: ResponseStore, carried: CarriedAnswers, remote: RemoteStore | null = null): CarriedStore {
  let carriedHits = 0;
  let remoteHits = 0;
  return {
    dir: local.dir,
    get carriedHits() {
      return carriedHits;
    },
    get remoteHits() {
      return remoteHits;
    },
    get(hash, request) {
      const hit = local.get(hash, request);
      if (hit) return hit;
      const c = carried.get(hash);
      if (c) {
        const answer: StoredAnswer = { request: request ?? null, text: c.text, usage: { ...c.usage }, cost_usd: c.cost_usd };
        local.put(hash, answer);
        carriedHits += 1;
        return answer;
      }
      // Only lookups that name their canonical request go further (the shared store verifies entries against it).
      const shared = remote && request !== undefined ? remote.get(hash, request) : undefined;
      if (!shared) return undefined;
      const answer: StoredAnswer = { ...shared, request };
      local.put(hash, answer);
      remoteHits += 1;
      return answer;
    },
    put(hash, answer) {
      local.put(hash, answer);
      remote?.put(hash, answer);
    },
    async save(hash, answer) {
      await local.save(hash, answer);
      remote?.put(hash, answer);
    },
    flush() {
      remote?.flush();
      carried.close?.();
    },
  };
}
