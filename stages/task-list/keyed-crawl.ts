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
import { addRecords, cacheRecords, IoCache } from './crawl.ts';
import type { CacheRecords } from './crawl.ts';

const FORMAT = 1;

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
  const kept: KeyedCrawl = { format: FORMAT, record, base, records: cacheRecords(cache).records };
  writeFileAtomicSync(file, serialize(kept));
}

/** The crawl the key left for the record `record` over the data root `base`, as a crawl cache; null when there is none that fits. */
export function readKeyedCrawl(file: string, record: string, base: string): IoCache | null {
  let kept: Partial<KeyedCrawl>;
  try {
    kept = deserialize(readFileSync(file)) as Partial<KeyedCrawl>;
  } catch {
    return null;
  }
  if (kept === null || typeof kept !== 'object' || kept.format !== FORMAT || kept.record !== record || kept.base !== base || kept.records === undefined) return null;
  const cache = new IoCache(true);
  try {
    addRecords(cache, kept.records);
  } catch {
    return null;
  }
  return cache;
}
