// A worker thread of the key's memo check (executors/key-memo.ts,
// memoSignatures): signs its share of the memo's paths and posts the numbers
// back. Plain JavaScript so that the thread starts with Node's compile cache
// on, as executors/key.mjs does.
import module from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

module.enableCompileCache?.();
const { signShare } = await import('./key-memo.ts');
const signed = signShare(workerData);
parentPort?.postMessage(signed, [signed.numbers.buffer]);
