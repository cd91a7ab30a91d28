// npm run plan:summary [-- --out-dir out]
//
// The last plan of every analysis in pipeline.yaml, as Markdown: which targets
// run and why, what each LLM stage would buy and about what it costs. It reads
// the plan's run log (out/<analysis>/logs/plan.json, written by
// `nx run <analysis>:plan`), so it runs after the plan and never plans again.
// In GitHub Actions it appends to the run's summary page ($GITHUB_STEP_SUMMARY);
// elsewhere it prints. Exit 1 when an analysis has no plan log.
import { appendFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { ConfigError, loadPipeline } from '../stages/config.ts';
import { formatUsd } from '../stages/llm/pricing.ts';
import { readJsonFileSync } from '../stages/util/fs.ts';

/** The fields of the plan's run log (executors/plan/executor.ts) this page shows. */
export const PlanLog = z.object({
  finished_at: z.string(),
  analysis: z.string(),
  runs: z.number(),
  targets: z.array(z.object({ target: z.string(), verdict: z.string(), why: z.array(z.string()) })),
  stages: z.array(
    z.object({
      stage: z.string(),
      provider: z.string(),
      model: z.string(),
      reused: z.number(),
      toPay: z.number(),
      cost_usd_low: z.number().nullable(),
      cost_usd_high: z.number().nullable(),
      exact: z.boolean(),
      batch: z.boolean(),
      note: z.string(),
    }),
  ),
  total: z.object({ calls: z.number(), stored: z.number(), cost_usd_low: z.number().nullable(), cost_usd_high: z.number().nullable() }),
});
export type PlanLog = z.infer<typeof PlanLog>;

/** A table cell: one line, no column break. */
const cell = (s: string) => s.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|') || ' ';
const range = (low: number | null, high: number | null) => `${formatUsd(low)} to ${formatUsd(high)}`;

export function planMarkdown(log: PlanLog): string {
  const t = log.total;
  const lines = [
    `### Plan: ${cell(log.analysis)}`,
    '',
    `${t.calls} call(s) to pay${t.calls ? `, about ${range(t.cost_usd_low, t.cost_usd_high)}` : ''}; ${t.stored} answer(s) already stored; ${log.runs} runs selected. ` +
      `No provider was called to find this out (planned ${log.finished_at}).`,
    '',
    '| target | verdict | why |',
    '|---|---|---|',
    ...log.targets.map((x) => `| ${cell(x.target)} | ${cell(x.verdict)} | ${cell(x.why.join('; '))} |`),
    '',
    '| stage | analyzer | stored | to pay | about |',
    '|---|---|---:|---:|---|',
    ...log.stages.map((x) => {
      const who = x.provider === 'offline' ? 'offline analyzer' : `${x.provider}:${x.model}${x.batch ? ' (batch)' : ''}`;
      const cost = x.provider === 'offline' ? 'no cost' : x.toPay ? `${range(x.cost_usd_low, x.cost_usd_high)}${x.exact ? '' : ' (estimated)'}` : '$0';
      return `| ${cell(x.stage)} | ${cell(who)} | ${x.reused} | ${x.toPay} | ${cell(cost)}${x.note ? `; ${cell(x.note)}` : ''} |`;
    }),
    '',
  ];
  return lines.join('\n');
}

/** The page for every analysis of pipeline.yaml, and the analyses that have no readable plan log. */
export function planSummary(workspaceRoot: string, outDir = 'out'): { markdown: string; missing: string[] } {
  const parts: string[] = [];
  const missing: string[] = [];
  for (const { name } of loadPipeline(workspaceRoot).analyses) {
    const file = join(workspaceRoot, outDir, name, 'logs', 'plan.json');
    const read = readJsonFileSync<unknown>(file, { expect: 'object' });
    const log = read.ok ? PlanLog.safeParse(read.value) : null;
    if (log?.success) {
      parts.push(planMarkdown(log.data));
    } else {
      missing.push(name);
      parts.push(`### Plan: ${cell(name)}\n\nNo plan: \`nx run ${name}:plan\` did not write ${outDir}/${name}/logs/plan.json${log ? ' in the expected form' : ''}.\n`);
    }
  }
  return { markdown: parts.join('\n'), missing };
}

export function main(argv: string[], cwd = process.cwd(), env: NodeJS.ProcessEnv = process.env): number {
  const { values } = parseArgs({ args: argv, options: { 'out-dir': { type: 'string', default: 'out' } } });
  let res: { markdown: string; missing: string[] };
  try {
    res = planSummary(cwd, values['out-dir']);
  } catch (err) {
    console.error(err instanceof ConfigError ? err.message : `plan summary: ${(err as Error).message}`);
    return 1;
  }
  const page = env['GITHUB_STEP_SUMMARY'];
  if (page) {
    appendFileSync(page, `${res.markdown}\n`);
    console.log(`plan summary: ${res.markdown.split('\n').length} line(s) written to the run's summary page`);
  } else {
    process.stdout.write(`${res.markdown}\n`);
  }
  if (res.missing.length) console.error(`plan summary: no plan for ${res.missing.join(', ')}`);
  return res.missing.length ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = main(process.argv.slice(2));
}
