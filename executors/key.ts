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
import { formatInputRecord, inputRecord, keyedRecordFile, recordDigest } from '../stages/input-record.ts';
import type { KeyDescription } from '../stages/input-record.ts';
import { writeFileAtomicSync } from '../stages/util/fs.ts';
import type { Witness } from './key-memo.ts';

export async function printKey(description: string, witness: Witness | null): Promise<void> {
  const root = process.cwd();
  let stage = 'stage';
  try {
    const d = JSON.parse(description) as KeyDescription;
    stage = d.stage;
    const record = await inputRecord(d, root, root, process.env, undefined, (paths) => witness?.add(paths));
    writeFileAtomicSync(keyedRecordFile(root, d), formatInputRecord(record));
    const line = `${d.stage} inputs ${recordDigest(record)}`;
    console.log(line);
    witness?.write(description, line);
  } catch (err) {
    console.log(`${stage} inputs unavailable ${randomUUID()}`);
    console.error(`${stage}: its inputs could not be recorded (${err instanceof Error ? err.message : String(err)}); it is not taken from the cache`);
    process.exitCode = 1;
  }
}
