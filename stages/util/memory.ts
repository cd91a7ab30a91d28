// A full garbage collection, on request. V8 leaves the old generation alone
// until it reaches a limit it sets from the heap's maximum (about half of it
// before the first full collection: 2 GB on a machine with 16 GB or more), so
// a stage that parses hundreds of MB of upstream files, keeps a fraction and
// drops the rest would otherwise carry everything it dropped to its end. After
// a collection the limit follows what is live. Called between a stage's
// phases, after its largest transient data is dropped.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | null = null;

export function collectGarbage(): void {
  if (gc === null) {
    // Exposes `gc` to contexts created from now on; the process keeps its other flags.
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}
