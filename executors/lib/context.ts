// What every executor needs: the resolved analysis, its folders, a logger that
// stays readable in CI logs, and the one error handler that turns typed
// errors into a message and `{ success: false }` instead of a stack trace.
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import lockfile from 'proper-lockfile';
import { checkNamedPaths, ConfigError, LLM_STAGES, loadPipeline, resolveAnalysis } from '../../stages/config.ts';
import type { StageName } from '../../stages/config.ts';
import { describeInputChange, endpointOf, formatInputRecord, INPUT_RECORD_FILE, InputsChangedError, keyedRecordFile, readParts } from '../../stages/input-record.ts';
import type { InputRecord } from '../../stages/input-record.ts';
import { describeStage } from '../../stages/stage-inputs.ts';
import { isAlive, setOutputExtras, writeJson } from './io.ts';
import { readJsonFileSync } from '../../stages/util/fs.ts';

import type { BaseOptions, ExecutorContextLike, StageContext } from '../../stages/stage-context.ts';
import { plural } from '../../stages/util/words.ts';

export type { BaseOptions, ExecutorContextLike, StageContext };

/**
 * The context of one target. Unless `lock` is false (the plan, which writes
 * nothing), it first takes the analysis' writer lock: one writer per analysis
 * at a time, so two `nx run` in one workspace wait for each other instead of
 * deleting or mixing each other's outputs. Released when the executor ends
 * (runExecutor), or by the process exit.
 */
export function stageContext(options: BaseOptions, context: ExecutorContextLike, opts: { lock?: boolean } = {}): StageContext {
  const workspaceRoot = context.root;
  const cfg = loadPipeline(workspaceRoot);
  const name = options.analysis ?? context.projectName;
  const analysis = resolveAnalysis(cfg, name);
  const outDir = options.outDir ?? 'out';
  const resolvePath = (p: string) => (isAbsolute(p) ? p : resolve(workspaceRoot, p));
  // Before anything is read or written: a configuration mistake leaves every output as it was.
  checkNamedPaths(analysis, resolvePath);
  if (opts.lock !== false) lockAnalysis(join(workspaceRoot, outDir, analysis.name), workspaceRoot);
  return {
    workspaceRoot,
    analysis,
    outputOf: (stage) => join(workspaceRoot, outDir, analysis.name, stage),
    logDir: join(workspaceRoot, outDir, analysis.name, 'logs'),
    dataRoot: resolvePath(analysis.data.root),
    storeDir: resolvePath(process.env['META_ANALYSIS_STORE_DIR'] ?? '.cache/llm-store'),
    resolvePath,
  };
}

/**
 * What was hashed is what is read. Under Nx (NX_TASK_HASH set), the stage's
 * key script (executors/key.mjs) left the record it hashed; after the writer
 * lock is taken, the files the stage reads (named files, upstream outputs),
 * its settings, its endpoint and Node are compared with it, and again when the
 * output is complete, before it is swapped in. Any difference fails the stage
 * (nothing written, nothing cached: Nx would store this output under a key
 * that does not describe it). The output carries the record as inputs.json.
 * Outside Nx (a test calling an executor), nothing is checked and no record
 * is written. Returns the record (null outside Nx), for what only the stage
 * can check (task-list's data fingerprint).
 */
export async function guardInputs(ctx: StageContext, stage: StageName, outDir: string): Promise<InputRecord | null> {
  if ((process.env['NX_TASK_HASH'] ?? '') === '') return null;
  const d = describeStage(ctx.analysis, stage, outDir);
  const file = keyedRecordFile(ctx.workspaceRoot, d);
  const keyed = readJsonFileSync<InputRecord>(file, { expect: 'object' });
  if (!keyed.ok) {
    throw new InputsChangedError(`${relative(ctx.workspaceRoot, file)}: no record of the inputs Nx hashed for ${stage} (${keyed.message}); run the target through nx again`);
  }
  const endpoint = await endpointOf(d, ctx.workspaceRoot);
  const check = (when: string) => {
    const why = describeInputChange(keyed.value, { ...keyed.value, ...readParts(d, ctx.workspaceRoot, endpoint) });
    if (why.length > 0) {
      throw new InputsChangedError(
        `its inputs changed ${when}: ${why.join('; ')}. Nothing was written or cached (the output would not match its key); run it again.`,
      );
    }
  };
  check('after Nx hashed them');
  const own = ctx.outputOf(stage);
  setOutputExtras((dir) => {
    if (dir !== own) return [];
    check('while it ran');
    return [[INPUT_RECORD_FILE, formatInputRecord(keyed.value)]];
  });
  return keyed.value;
}

/** Writes a run log (may hold timestamps: it is not an output any target hashes). */
export function writeRunLog(ctx: StageContext, stage: StageName | 'plan', log: unknown): string {
  const file = join(ctx.logDir, `${stage}.json`);
  const record = log as Record<string, unknown>;
  const vsPlan = stage === 'plan' ? null : againstPlan(ctx, stage, record);
  if (vsPlan) console.log(`${stage}: ${vsPlan.sentence}`);
  writeJson(file, { finished_at: new Date().toISOString(), ...record, ...(vsPlan ? { plan_vs_actual: vsPlan.entry } : {}) });
  return file;
}

interface PlanLog {
  finished_at?: string;
  stages?: { stage: string; toPay: number; cost_usd_low: number | null; cost_usd_high: number | null; exact: boolean }[];
}

function readLog<T>(file: string): T | null {
  const r = readJsonFileSync<T>(file, { expect: 'object' });
  return r.ok ? r.value : null;
}

/**
 * The last plan's prediction for this stage next to what this run paid, when
 * the plan was made after the stage's previous run (a plan older than that
 * was for another state of the inputs).
 */
function againstPlan(ctx: StageContext, stage: StageName, log: Record<string, unknown>): { entry: unknown; sentence: string } | null {
  if (typeof log['computed'] !== 'number') return null;
  const plan = readLog<PlanLog>(join(ctx.logDir, 'plan.json'));
  const planned = plan?.stages?.find((x) => x.stage === stage);
  if (!plan?.finished_at || !planned) return null;
  const previous = readLog<{ finished_at?: string }>(join(ctx.logDir, `${stage}.json`));
  if (previous?.finished_at && previous.finished_at > plan.finished_at) return null;
  const calls = log['computed'] as number;
  const cost = typeof log['paid_cost_usd'] === 'number' ? (log['paid_cost_usd'] as number) : null;
  const usd = (x: number | null) => (x === null ? 'unknown' : `$${x.toFixed(4)}`);
  return {
    entry: {
      planned_at: plan.finished_at,
      planned: { calls: planned.toPay, exact: planned.exact, cost_usd_low: planned.cost_usd_low, cost_usd_high: planned.cost_usd_high },
      actual: { calls, cost_usd: cost },
    },
    sentence:
      `the plan of ${plan.finished_at} said ${plural(planned.toPay, 'call', 'calls')}${planned.exact ? '' : ' (estimated)'}, ${usd(planned.cost_usd_low)} to ${usd(planned.cost_usd_high)}; ` +
      `this run made ${calls}, ${usd(cost)}.`,
  };
}

/** For the plan: each LLM stage's last run against the plan made before it (from the run logs). */
export function lastRunAgainstItsPlan(ctx: StageContext): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const stage of LLM_STAGES) {
    const log = readLog<{ finished_at?: string; plan_vs_actual?: unknown }>(join(ctx.logDir, `${stage}.json`));
    if (log?.plan_vs_actual) out[stage] = { finished_at: log.finished_at, ...(log.plan_vs_actual as object) };
  }
  return out;
}

/**
 * One line per update with done/total, the caller's counters and the time
 * left (from the pace so far); on a TTY a live line, in CI (no TTY) only
 * every ~10% so logs stay short.
 */
export function progressPrinter(label: string, total: number, now: () => number = () => performance.now(), unit?: string): (done: number, extra: string) => void {
  const tty = process.stdout.isTTY === true;
  const started = now();
  let lastShown = -1;
  return (done, extra) => {
    const step = Math.max(1, Math.ceil(total / 10));
    const elapsedS = (now() - started) / 1000;
    const left = done > 0 && done < total ? `, ~${formatDuration((elapsedS / done) * (total - done))} left` : '';
    const line = `${label}: ${done}/${total}${unit ? ` ${unit}` : ''}${extra ? `  ${extra}` : ''}${left}`;
    if (tty) {
      process.stdout.write(`\r${line}\u001b[K${done === total ? '\n' : ''}`);
    } else if (done === total || done - lastShown >= step || lastShown < 0) {
      lastShown = done;
      console.log(line);
    }
  };
}

function formatDuration(s: number): string {
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Writer locks this process holds, released when its executor ends. */
const heldLocks: (() => void)[] = [];

/** How long a lock whose holder stopped refreshing it blocks others, when nothing says its holder is gone (another host). */
const LOCK_STALE_MS = 120_000;
/** proper-lockfile's shortest stale time: a lock whose holder is known dead is taken over once its last refresh is this old. */
const DEAD_HOLDER_STALE_MS = 2_000;

/** Who holds the writer lock, written beside it (`<dir>.lock.owner`) once taken: pid and host. */
const ownerFile = (dir: string) => `${dir}.lock.owner`;

function readOwner(dir: string): { pid: number; host: string } | null {
  const r = readJsonFileSync<{ pid?: unknown; host?: unknown }>(ownerFile(dir), { expect: 'object' });
  return r.ok && typeof r.value.pid === 'number' && typeof r.value.host === 'string' ? { pid: r.value.pid, host: r.value.host } : null;
}

/**
 * Takes the writer lock of an analysis' output folder (proper-lockfile: an
 * atomic `mkdir` of `<dir>.lock`, refreshed while held). Waits, with one
 * message, while another process holds it. A lock whose holder is gone (same
 * host, its pid no longer running: a killed run) is taken over at once, as
 * soon as its last refresh is 2 s old (a live holder, which may have taken
 * the lock meanwhile, refreshed it more recently); a holder on another host
 * is waited for until its lock is stale (2 minutes without a refresh).
 */
export function lockAnalysis(dir: string, workspaceRoot: string): void {
  mkdirSync(dir, { recursive: true });
  const shown = relative(workspaceRoot, dir) || dir;
  let announced = false;
  const take = (stale: number) => {
    heldLocks.push(
      lockfile.lockSync(dir, {
        stale,
        realpath: false,
        onCompromised: (err) => {
          // Another process took the lock over (this one stalled past the stale time): stop rather than write beside it.
          console.error(`${shown}: lost the writer lock (${err.message}); stopping so two runs never write at once. Run the command again.`);
          process.exit(1);
        },
      }),
    );
    writeJson(ownerFile(dir), { pid: process.pid, host: hostname() });
  };
  for (;;) {
    try {
      take(LOCK_STALE_MS);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
    }
    const owner = readOwner(dir);
    if (owner && owner.host === hostname() && owner.pid !== process.pid && !isAlive(owner.pid)) {
      try {
        take(DEAD_HOLDER_STALE_MS);
        console.error(`${shown}: took over the writer lock of a run that ended without releasing it (pid ${owner.pid}).`);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
      }
    }
    if (!announced) {
      console.error(`${shown}: another run is writing this analysis' outputs; waiting for it to finish.`);
      announced = true;
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250);
  }
}

function releaseLocks(): void {
  for (const release of heldLocks.splice(0)) {
    try {
      release();
    } catch {
      // already released or taken over: nothing left to do
    }
  }
}

/** The executor running in this process (runExecutor's name). */
let runningStage: string | null = null;

/** Runs an executor body; typed errors become one readable message and `{ success: false }`. */
export async function runExecutor(name: string, body: () => Promise<boolean>): Promise<{ success: boolean }> {
  runningStage = name;
  try {
    return { success: await body() };
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
    } else if (err instanceof Error) {
      console.error(`${name} failed: ${err.message}`);
      if (process.env['META_ANALYSIS_DEBUG']) console.error(err.stack);
    } else {
      console.error(`${name} failed: ${String(err)}`);
    }
    return { success: false };
  } finally {
    runningStage = null;
    setOutputExtras(null);
    releaseLocks();
  }
}
