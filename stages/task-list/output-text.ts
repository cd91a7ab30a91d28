// The task-list output's files as text made in pieces, written
// (util/fs.ts writeTextAtomicSync) or compared with a file as it is made. At 100,000 runs the task lists and runs.json are
// about 170 MB of text; built whole, each was held in memory with the
// selection (and built out of millions of small appends, which cost several
// times the text's own size until it was written).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { CHUNK, Utf8Chunks } from '../util/fs.ts';

/** A file's text: hands it to `write` in pieces, in order. */
export type FileText = (write: (text: string) => void) => void;

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
