// The task-list output's files as text made in pieces, written (or compared
// with a file) as it is made. At 100,000 runs the task lists and runs.json are
// about 170 MB of text; built whole, each was held in memory with the
// selection (and built out of millions of small appends, which cost several
// times the text's own size until it was written).
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';

/** A file's text: hands it to `write` in pieces, in order. */
export type FileText = (write: (text: string) => void) => void;

/**
 * JSON.stringify(value, null, 2) in pieces: each item of the top-level
 * object's arrays is one piece (the ledger's runs), anything else is
 * stringified whole. The pieces concatenated are JSON.stringify's text.
 */
export function jsonIndented2To(value: Record<string, unknown>, write: (text: string) => void): void {
  let first = true;
  for (const [key, v] of Object.entries(value)) {
    const whole = Array.isArray(v) ? null : (JSON.stringify(v, null, 2) as string | undefined);
    // JSON.stringify leaves out a property it cannot write (undefined, a function, a symbol).
    if (whole === undefined) continue;
    write(`${first ? '{' : ','}\n  ${JSON.stringify(key)}: `);
    first = false;
    if (whole !== null) write(whole.replaceAll('\n', '\n  '));
    else if ((v as unknown[]).length === 0) write('[]');
    else {
      const items = v as unknown[];
      for (let i = 0; i < items.length; i++) {
        // In an array, what JSON.stringify cannot write is null (and so is a hole).
        const item = (JSON.stringify(items[i], null, 2) as string | undefined) ?? 'null';
        write(`${i === 0 ? '[' : ','}\n    ${item.replaceAll('\n', '\n    ')}`);
      }
      write('\n  ]');
    }
  }
  write(first ? '{}' : '\n}');
}

/** UTF-16 code units encoded at a time: at most 3 bytes each, so a chunk fits the reused buffer. */
const CHUNK = 1 << 18;
let chunkBuffer: Buffer | null = null;

const isHighSurrogate = (unit: number) => unit >= 0xd800 && unit <= 0xdbff;

/**
 * Text pieces as UTF-8 bytes, a chunk at a time through one reused buffer
 * (`onBytes` gets a view of it, valid until it returns). A surrogate pair is
 * never split between chunks (each half would be encoded as U+FFFD), so the
 * bytes are those of the whole text encoded at once.
 */
class Utf8Chunks {
  private pending = '';
  private readonly onBytes: (bytes: Buffer) => void;
  constructor(onBytes: (bytes: Buffer) => void) {
    this.onBytes = onBytes;
  }

  write(text: string): void {
    this.pending += text;
    if (this.pending.length >= CHUNK) this.flush(false);
  }

  end(): void {
    this.flush(true);
  }

  private flush(final: boolean): void {
    const buf = (chunkBuffer ??= Buffer.allocUnsafeSlow(CHUNK * 3));
    const text = this.pending;
    let at = 0;
    while (at < text.length) {
      let end = Math.min(text.length, at + CHUNK);
      // A high surrogate last waits for the low one that may follow (in the next piece when not final).
      if (isHighSurrogate(text.charCodeAt(end - 1)) && (end < text.length || !final)) end--;
      if (end <= at) break;
      this.onBytes(buf.subarray(0, buf.write(text.slice(at, end))));
      at = end;
    }
    this.pending = text.slice(at);
  }
}

/**
 * Writes a file's text as it is made. Into the fresh folder buildOutputDir
 * swaps in whole, so a file needs no atomic write of its own. (writeFileSync
 * encoded each whole text into fresh memory first: on the bench machine ten
 * times slower than the writes.)
 */
export function writeFileText(path: string, text: FileText): void {
  const fd = openSync(path, 'w');
  try {
    const out = new Utf8Chunks((bytes) => {
      for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
    });
    text((piece) => out.write(piece));
    out.end();
  } finally {
    closeSync(fd);
  }
}

/** Whether the file at `path` holds exactly `text` (false when it cannot be read). */
export function fileHoldsText(path: string, text: FileText): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    const theirs = Buffer.allocUnsafe(CHUNK * 3);
    let position = 0;
    let same = true;
    const out = new Utf8Chunks((bytes) => {
      if (!same) return;
      let n = 0;
      try {
        while (n < bytes.length) {
          const got = readSync(fd, theirs, n, bytes.length - n, position + n);
          if (got === 0) break;
          n += got;
        }
      } catch {
        same = false;
        return;
      }
      if (n !== bytes.length || !theirs.subarray(0, n).equals(bytes)) same = false;
      position += n;
    });
    text((piece) => out.write(piece));
    out.end();
    if (!same) return false;
    try {
      return fstatSync(fd).size === position;
    } catch {
      return false;
    }
  } finally {
    closeSync(fd);
  }
}
