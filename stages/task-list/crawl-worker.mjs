// The entry of a crawl worker thread (task-list/crawl-workers.ts), in plain
// JavaScript so that the thread starts with Node's compile cache on: a worker
// starts with none of the main thread's modules, and stripping the types of
// the crawl's TypeScript again cost each worker about 0.2 s (mostly loading
// the type stripper). Same pattern as executors/key.mjs.
import module from 'node:module';

module.enableCompileCache?.();
await import('./crawl-worker.ts');
