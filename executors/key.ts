// The one runtime input of every cached stage target: its whole Nx key, apart
// from the upstream files Nx hashes itself (dependentTasksOutputFiles, which
// also makes Nx hash the target only after its upstream targets ran).
//   node executors/key.mjs '<the stage's KeyDescription as JSON>'   (key.mjs turns on Node's compile cache, then loads this)
// The plugin writes the description (stages/stage-inputs.ts plus the code
// closure); this computes the record of it (stages/input-record.ts), prints
// one line, `<stage> inputs <sha256 of the record>`, and leaves the record it
// hashed in .cache/keys/<analysis>/<stage>.json, where the stage's runner checks
// what it reads against it and takes the output's inputs.json from it.
// key.mjs prints the memo's line instead when nothing this read has changed
// (executors/key-memo.ts); the witness it passes has watched this from its start.
//
// When the record cannot be computed it prints a line that is new on every
// call (the target then never comes from the cache) and says why on stderr.
import { randomUUID } from 'node:crypto';
import { formatInputRecord, inputRecord, keyedCrawlFile, keyedRecordFile, recordDigest } from '../stages/input-record.ts';
import type { DataCrawl, KeyDescription } from '../stages/input-record.ts';
import { writeFileAtomicSync } from '../stages/util/fs.ts';
import type { Witness } from './key-memo.ts';

/** `root`: the workspace (Nx runs the key there). */
export async function printKey(description: string, witness: Witness | null, root = process.cwd()): Promise<void> {
  let stage = 'stage';
  try {
    const d = JSON.parse(description) as KeyDescription;
    stage = d.stage;
    let crawl = null as DataCrawl | null;
    const record = await inputRecord(d, root, root, process.env, undefined, (c) => {
      witness?.add(c.paths);
      crawl = c;
    });
    writeFileAtomicSync(keyedRecordFile(root, d), formatInputRecord(record));
    const digest = recordDigest(record);
    // task-list: what the crawl read, for the executor to select from instead of crawling again.
    if (crawl !== null) {
      const { cache, base } = crawl;
      const { writeKeyedCrawl } = await import('../stages/task-list/keyed-crawl.ts');
      writeKeyedCrawl(keyedCrawlFile(root, d), digest, base, cache);
    }
    const line = `${d.stage} inputs ${digest}`;
    console.log(line);
    witness?.write(description, line);
  } catch (err) {
    console.log(`${stage} inputs unavailable ${randomUUID()}`);
    console.error(`${stage}: its inputs could not be recorded (${err instanceof Error ? err.message : String(err)}); it is not taken from the cache`);
    process.exitCode = 1;
  }
}
