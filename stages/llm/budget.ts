// One budget for one invocation: `budget.max_cost_usd` in pipeline.yaml caps
// what one `nx run` / `nx run-many` spends across all its stages and analyses.
// Each stage process records its own spend in its own file under
// `.cache/budget/<invocation>/<pid>-<n>.json` (written atomically after every
// paid answer, so no lock is needed); the invocation's spend is the sum of
// those files. The invocation is the outermost nx process
// (NX_INVOCATION_ANCESTOR_PIDS, with its start time against pid reuse), or
// this process when an executor runs outside nx.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../util/fs.ts';

export interface InvocationBudget {
  readonly limitUsd: number;
  /** What other stage processes of this invocation have spent so far. */
  spentByOthers(): number;
  /** This process' spend so far (recorded for the others). */
  record(spentUsd: number): void;
}

/** The id of this nx invocation: the outermost nx pid and its start time (Linux), else this process. */
export function invocationId(env: NodeJS.ProcessEnv = process.env): string {
  const pids = (env['NX_INVOCATION_ANCESTOR_PIDS'] ?? '').split(',').map(Number).filter((p) => Number.isInteger(p) && p > 0);
  const pid = pids[0] ?? process.pid;
  let started = '';
  try {
    // Field 22 of /proc/<pid>/stat: start time in clock ticks since boot.
    started = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[19] ?? '';
  } catch {
    // not Linux: the pid alone
  }
  return started ? `${pid}-${started}` : String(pid);
}

let opened = 0;

export function invocationBudget(limitUsd: number, dir: string, id = invocationId()): InvocationBudget {
  const folder = join(dir, id);
  // One file per budget user (a stage's client), even when several share a process.
  const own = `${process.pid}-${++opened}.json`;
  return {
    limitUsd,
    spentByOthers() {
      let total = 0;
      let names: string[] = [];
      try {
        names = readdirSync(folder);
      } catch {
        return 0;
      }
      for (const name of names) {
        if (name === own || !name.endsWith('.json')) continue;
        try {
          const v = (JSON.parse(readFileSync(join(folder, name), 'utf8')) as { spent_usd?: unknown }).spent_usd;
          if (typeof v === 'number' && Number.isFinite(v)) total += v;
        } catch {
          // a file being replaced: its previous value was read by the last check; the next one reads the new
        }
      }
      return total;
    },
    record(spentUsd) {
      writeFileAtomicSync(join(folder, own), `${JSON.stringify({ spent_usd: spentUsd })}\n`);
    },
  };
}
