// The entry of every cached target's key (see executors/key.ts), in plain
// JavaScript so that it starts with Node's compile cache on: this runs on every
// nx command that hashes a stage, and the cache spares it stripping the types
// of the TypeScript it loads (about 0.1 s per process). When nothing the last
// computation read has changed, the memo's line is printed and the record's
// code is never loaded (executors/key-memo.ts).
import module from 'node:module';

module.enableCompileCache?.();
const description = process.argv[2] ?? '';
const { memoHit, Witness } = await import('./key-memo.ts');
const line = await memoHit(description, process.cwd());
if (line !== null) {
  console.log(line);
} else {
  const witness = new Witness(process.cwd());
  witness.start();
  const { printKey } = await import('./key.ts');
  await printKey(description, witness);
}
