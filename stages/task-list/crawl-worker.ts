// One worker thread of a crawl (task-list/crawl-workers.ts): crawls its share of
// the task folders with synchronous calls and posts the answers back.
import { parentPort, workerData } from 'node:worker_threads';
import { cacheRecords, crawlTasks, IoCache, nodeTreeIoSync } from './crawl.ts';
import type { CrawlSpec, TaskRef } from './crawl.ts';

const { spec, tasks, keepBytes } = workerData as { spec: CrawlSpec; tasks: TaskRef[]; keepBytes: boolean };
const cache = new IoCache(keepBytes);
await crawlTasks(spec, tasks, nodeTreeIoSync, cache);
const { records, transfer } = cacheRecords(cache);
parentPort?.postMessage(records, transfer);
