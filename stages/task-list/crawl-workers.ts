// The crawl of a large tree, split over worker threads: the top of the walk
// (data root, domains, task folders) runs here, then this thread and the
// workers each crawl every k-th task folder with synchronous calls
// (task-list/crawl-worker.mjs) and the workers post their answers back in a
// compact form. The answers are the same as one thread's (merged by path), so
// the fingerprint and the selection do not depend on the thread count.
//
// Threads: min(4, one core fewer than the machine has, one per 300 task
// folders). A worker costs about 0.1 s to start and about 0.3 s of CPU per
// 5,000 task folders to post and merge its answers, which only pays where
// there are cores to spare. Measured on the 2-core bench machine at 10,000
// runs (median wall of the crawl): in the page cache one thread took 1.3-1.5 s
// and two 1.5-1.9 s (with 35% more CPU); with the files' pages evicted one
// thread took 3.2-3.9 s and two 3.0-4.4 s. So a 2-core machine crawls in one thread.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { addRecords, crawlTasks, crawlTop, nodeTreeIoSync } from './crawl.ts';
import type { CacheRecords, CrawlSpec, IoCache, TaskRef } from './crawl.ts';
import type { TreeIo } from '../util/fs.ts';

/** Below this many task folders per thread, fewer threads crawl. */
export const MIN_TASKS_PER_THREAD = 300;
const MAX_THREADS = 4;

/** Threads for a crawl of `tasks` task folders (META_ANALYSIS_CRAWL_THREADS overrides, for benchmarks). */
export function crawlThreads(tasks: number): number {
  const forced = Number(process.env['META_ANALYSIS_CRAWL_THREADS']);
  if (Number.isInteger(forced) && forced >= 1) return forced;
  return Math.max(1, Math.min(MAX_THREADS, availableParallelism() - 1, Math.floor(tasks / MIN_TASKS_PER_THREAD)));
}

function crawlInWorker(spec: CrawlSpec, tasks: TaskRef[], keepBytes: boolean): Promise<CacheRecords> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./crawl-worker.mjs', import.meta.url), { workerData: { spec, tasks, keepBytes } });
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
 * with synchronous calls, shared with worker threads when the tree is large
 * and the machine has cores to spare; any other TreeIo (the tests' in-memory
 * trees) in this thread.
 */
export async function crawlParallel(spec: CrawlSpec, io: TreeIo, cache: IoCache): Promise<void> {
  const tasks = await crawlTop(spec, io, cache);
  const threads = io === nodeTreeIoSync ? crawlThreads(tasks.length) : 1;
  if (threads <= 1) {
    await crawlTasks(spec, tasks, io, cache);
    return;
  }
  const shards = Array.from({ length: threads }, (_, k) => tasks.filter((_, i) => i % threads === k));
  // This thread crawls the first share while workers crawl the others: one
  // thread fewer to start, and this one does not sit idle. (Its crawl is
  // synchronous, so the workers' answers wait in the event loop until it ends.)
  const others = Promise.all(shards.slice(1).map((shard) => crawlInWorker(spec, shard, cache.keepBytes)));
  await crawlTasks(spec, shards[0] ?? [], io, cache);
  for (const r of await others) addRecords(cache, r);
}
