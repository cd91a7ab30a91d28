// The crawl of a large tree, split over worker threads: the top of the walk
// (data root, domains, task folders) runs here, then each worker crawls every
// k-th task folder with synchronous calls (task-list/crawl-worker.ts) and posts its
// answers back in a compact form. Concurrency is bounded by the thread count:
// min(4, the machine's cores, one per 300 task folders), so a small tree stays
// in this thread, where starting workers costs more than they save. Measured
// on the 2-core bench machine at 10,000 runs: with the tree in the page cache
// two threads cost about what one does (0.6 s for the fingerprint), and from a
// cold cache they take 2.9 s instead of 4.0-4.5 s (four: 2.2 s), the calls
// then waiting on the disk. The answers are the same as one thread's (merged
// by path), so the fingerprint and the selection do not depend on the thread count.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { addRecords, crawlTasks, crawlTop, nodeTreeIoSync } from './crawl.ts';
import type { CacheRecords, CrawlSpec, IoCache, TaskRef } from './crawl.ts';
import type { TreeIo } from '../util/fs.ts';

/** Below this many task folders the crawl stays in this thread. */
export const MIN_TASKS_PER_THREAD = 300;
const MAX_THREADS = 4;

/** Threads for a crawl of `tasks` task folders (META_ANALYSIS_CRAWL_THREADS overrides, for benchmarks). */
export function crawlThreads(tasks: number): number {
  const forced = Number(process.env['META_ANALYSIS_CRAWL_THREADS']);
  if (Number.isInteger(forced) && forced >= 1) return forced;
  return Math.max(1, Math.min(MAX_THREADS, availableParallelism(), Math.floor(tasks / MIN_TASKS_PER_THREAD)));
}

function crawlInWorker(spec: CrawlSpec, tasks: TaskRef[], keepBytes: boolean): Promise<CacheRecords> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./crawl-worker.ts', import.meta.url), { workerData: { spec, tasks, keepBytes } });
    let answered = false;
    worker.once('message', (records: CacheRecords) => {
      answered = true;
      resolve(records);
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (!answered) reject(new Error(`task-list crawl: a worker thread stopped (exit code ${code}) before it answered`));
    });
  });
}

/**
 * The whole crawl of one spec into `cache`. Node's file system is crawled
 * with synchronous calls, over worker threads when the tree is large; any
 * other TreeIo (the tests' in-memory trees) in this thread.
 */
export async function crawlParallel(spec: CrawlSpec, io: TreeIo, cache: IoCache): Promise<void> {
  const tasks = await crawlTop(spec, io, cache);
  const threads = io === nodeTreeIoSync ? crawlThreads(tasks.length) : 1;
  if (threads <= 1) {
    await crawlTasks(spec, tasks, io, cache);
    return;
  }
  const shards = Array.from({ length: threads }, (_, k) => tasks.filter((_, i) => i % threads === k));
  const records = await Promise.all(shards.map((shard) => crawlInWorker(spec, shard, cache.keepBytes)));
  for (const r of records) addRecords(cache, r);
}
