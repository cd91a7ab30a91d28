// npm run budget:check -- --max-usd 20
//
// The CI gate before a run that may pay: every stage of every analysis that
// calls a provider must have `max_cost_usd` in pipeline.yaml (the client stops
// a stage before it would spend more), and their sum must not exceed
// --max-usd, so the whole run is bounded by it. Offline stages cost nothing.
// max_cost_usd is a throughput setting, outside every cache key: setting or
// changing it re-runs nothing.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { ConfigError, LLM_STAGES, loadPipeline, resolveAnalysis } from '../stages/config.ts';

export interface BudgetCheck {
  ok: boolean;
  lines: string[];
  /** Sum of max_cost_usd over the paying stages. */
  totalUsd: number;
}

export function checkBudget(workspaceRoot: string, maxUsd: number): BudgetCheck {
  const cfg = loadPipeline(workspaceRoot);
  const lines: string[] = [];
  const unbounded: string[] = [];
  let total = 0;
  for (const { name } of cfg.analyses) {
    const a = resolveAnalysis(cfg, name);
    for (const stage of LLM_STAGES) {
      const s = a[stage];
      if (s.provider === 'offline') continue;
      if (s.max_cost_usd === null || s.max_cost_usd === undefined) {
        unbounded.push(`${name}:${stage}`);
        lines.push(`  ${name}:${stage.padEnd(10)} ${s.provider}:${s.model}  no max_cost_usd`);
      } else {
        total += s.max_cost_usd;
        lines.push(`  ${name}:${stage.padEnd(10)} ${s.provider}:${s.model}  max_cost_usd ${s.max_cost_usd}`);
      }
    }
  }
  if (lines.length === 0) lines.push('  every stage uses the offline analyzer: nothing to pay');
  let ok = true;
  if (unbounded.length > 0) {
    ok = false;
    lines.push(`budget: ${unbounded.join(', ')} may pay without a limit: set max_cost_usd in pipeline.yaml (defaults, the stage, or the analysis' stages).`);
  }
  if (total > maxUsd) {
    ok = false;
    lines.push(`budget: the stages may spend up to $${total.toFixed(2)} together, more than the $${maxUsd.toFixed(2)} allowed here (--max-usd): lower their max_cost_usd.`);
  }
  if (ok) lines.push(`budget: at most $${total.toFixed(2)} for the whole run (limit $${maxUsd.toFixed(2)}).`);
  return { ok, lines, totalUsd: total };
}

export function main(argv: string[], cwd = process.cwd()): number {
  const { values } = parseArgs({ args: argv, options: { 'max-usd': { type: 'string' } } });
  const max = Number(values['max-usd']);
  if (values['max-usd'] === undefined || !Number.isFinite(max) || max < 0) {
    console.error('usage: npm run budget:check -- --max-usd <dollars>');
    return 2;
  }
  try {
    const res = checkBudget(cwd, max);
    for (const l of res.lines) (res.ok ? console.log : console.error)(l);
    return res.ok ? 0 : 1;
  } catch (err) {
    console.error(err instanceof ConfigError ? err.message : `budget: ${(err as Error).message}`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
