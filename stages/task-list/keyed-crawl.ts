// The crawl the task-list key computed its data fingerprint from, kept for the
// executor. On a change to the data, Nx runs the key, which crawls every
// folder and run file the selection reads; the executor then used to crawl
// the same tree again (at 100,000 runs each crawl read 200,000 files: 17 s and
// 18 s). Now the key's crawl keeps what selection reads (the run files'
// readings, the filter files' bytes), the key leaves it next to its record
// (.cache/keys/<analysis>/task-list.crawl), and the executor selects from it.
// What was hashed is then what was read, by construction: the selection is
// made from the very answers the fingerprint digests.
//
// The executor takes the file only when it names the record the executor was
// keyed with (its digest: the code that made the readings, the settings and
// the data fingerprint) and the data root the crawl's paths start with, and
// when the fingerprint of what it holds is the record's; anything else (no
// file, another record, a damaged file, a selection override) and it crawls
// the tree itself, as before.
import { readFileSync } from 'node:fs';
import { deserialize, serialize } from 'node:v8';
import { writeFileAtomicSync } from '../util/fs.ts';
import { collectGarbage } from '../util/memory.ts';
import { addRecords, cacheRecords, IoCache } from './crawl.ts';
import type { CacheRecords } from './crawl.ts';

const FORMAT = 2;

interface KeyedCrawl {
  format: number;
  /** The digest of the record the key printed (recordDigest). */
  record: string;
  /** The data root the crawled paths start with (crawlBase). */
  base: string;
  records: CacheRecords;
}

/** Leaves the key's crawl for the executor (written whole, atomically). */
export function writeKeyedCrawl(file: string, record: string, base: string, cache: IoCache): void {
  // What the crawl dropped goes first: at 100,000 runs the records and their bytes are another 80 MB each.
  collectGarbage();
  const kept: KeyedCrawl = { format: FORMAT, record, base, records: cacheRecords(cache).records };
  writeFileAtomicSync(file, serialize(kept));
}

/** The crawl the key left for the record `record` over the data root `base`, as a crawl cache; null when there is none that fits. */
export async function readKeyedCrawl(file: string, record: string, base: string): Promise<IoCache | null> {
  const records = recordsIn(file, record, base);
  if (records === null) return null;
  const cache = new IoCache(true);
  // The file's bytes go before the records are added (V8 frees an unreachable
  // buffer after a collection and a turn of the event loop; they were read in
  // a function of their own, whose frame no longer holds them), and each
  // section of the records once added (a collection after the folders, the
  // largest part): at 100,000 runs the bytes are 67 MB and the texts as much
  // again, on top of the crawl itself.
  collectGarbage();
  await new Promise((done) => setImmediate(done));
  try {
    addRecords(cache, records, { release: true, between: collectGarbage });
  } catch {
    return null;
  }
  collectGarbage();
  return cache;
}

/** The records of the file, when it is the key's crawl for `record` over `base`; typed arrays copied out of the file's bytes. */
function recordsIn(file: string, record: string, base: string): CacheRecords | null {
  let kept: Partial<KeyedCrawl>;
  try {
    kept = deserialize(readFileSync(file)) as Partial<KeyedCrawl>;
  } catch {
    return null;
  }
  if (kept === null || typeof kept !== 'object' || kept.format !== FORMAT || kept.record !== record || kept.base !== base || kept.records === undefined) return null;
  const r = kept.records;
  // v8.deserialize makes typed arrays views of the bytes read: copies let the bytes go.
  if (![r.statIndex, r.dirIndex, r.fileIndex].every((a) => a instanceof Uint32Array) || !(r.statKinds instanceof Uint8Array)) return null;
  return { ...r, statIndex: r.statIndex.slice(), statKinds: r.statKinds.slice(), dirIndex: r.dirIndex.slice(), fileIndex: r.fileIndex.slice() };
}
