// What every executor needs: the resolved analysis, its folders, a logger that
// stays readable in CI logs, and the one error handler that turns typed
// errors into a message and `{ success: false }` instead of a stack trace.
import { isAbsolute, join, resolve } from 'node:path';
import { ConfigError, loadPipeline, resolveAnalysis } from '../../stages/config.ts';
import type { ResolvedAnalysis, StageName } from '../../stages/config.ts';
import { writeJson } from './io.ts';

export interface BaseOptions {
  analysis: string;
  outDir?: string;
}

export interface ExecutorContextLike {
  root: string;
  projectName?: string;
}

export interface StageContext {
  workspaceRoot: string;
  analysis: ResolvedAnalysis;
  /** Absolute output folder of a stage of this analysis. */
  outputOf(stage: StageName): string;
  /** Absolute folder for run logs: never an Nx output, never hashed. */
  logDir: string;
  /** Absolute path of the data root. */
  dataRoot: string;
  /** Absolute path of the response store. */
  storeDir: string;
  resolvePath(p: string): string;
}

export function stageContext(options: BaseOptions, context: ExecutorContextLike): StageContext {
  const workspaceRoot = context.root;
  const cfg = loadPipeline(workspaceRoot);
  const name = options.analysis ?? context.projectName;
  const analysis = resolveAnalysis(cfg, name);
  const outDir = options.outDir ?? 'out';
  const resolvePath = (p: string) => (isAbsolute(p) ? p : resolve(workspaceRoot, p));
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

/** Writes a run log (may hold timestamps: it is not an output any target hashes). */
export function writeRunLog(ctx: StageContext, stage: StageName, log: unknown): string {
  const file = join(ctx.logDir, `${stage}.json`);
  writeJson(file, { finished_at: new Date().toISOString(), ...(log as object) });
  return file;
}

/** One line per update; in CI (no TTY) only every ~10% so logs stay short. */
export function progressPrinter(label: string, total: number): (done: number, extra: string) => void {
  const tty = process.stdout.isTTY === true;
  let lastShown = -1;
  return (done, extra) => {
    const step = Math.max(1, Math.ceil(total / 10));
    const line = `${label}: ${done}/${total}${extra ? `  ${extra}` : ''}`;
    if (tty) {
      process.stdout.write(`\r${line}\u001b[K${done === total ? '\n' : ''}`);
    } else if (done === total || done - lastShown >= step || lastShown < 0) {
      lastShown = done;
      console.log(line);
    }
  };
}

/** Runs an executor body; typed errors become one readable message and `{ success: false }`. */
export async function runExecutor(name: string, body: () => Promise<boolean>): Promise<{ success: boolean }> {
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
  }
}
