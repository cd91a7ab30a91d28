// The reference script's default output file name for a task list.
import { isAllDomains } from './crawl.ts';


export interface TaskListNameOptions {
  domain: string;
  agent: string;
  refinementModel: string | null;
  /** The filter paths as typed (only whether they are non-empty matters). */
  dataFilter: string | null;
  humanAnnotationFilter: string | null;
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

/** `YYYYmmdd_HHMMSS` in local time, as Python's `strftime("%Y%m%d_%H%M%S")`. */
export function formatTimestamp(d: Date): string {
  return `${String(d.getFullYear()).padStart(4, '0')}${two(d.getMonth() + 1)}${two(d.getDate())}_${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}`;
}

/**
 * The reference's default output name:
 * `task_list_<domain | all_domains>_<agent, - as _>_<refinement model | all_refinement_models>[_0pct_baseline][_human_filtered]_<timestamp>.json`.
 * `_0pct_baseline` is added whenever a data filter is given, even with all domains.
 * A string timestamp is used as is; a Date is formatted in local time.
 */
export function defaultTaskListFileName(options: TaskListNameOptions, timestamp: Date | string): string {
  const stamp = typeof timestamp === 'string' ? timestamp : formatTimestamp(timestamp);
  const domain = isAllDomains(options.domain) ? 'all_domains' : options.domain;
  const agent = options.agent.replaceAll('-', '_');
  const rm = options.refinementModel ? `_${options.refinementModel}` : '_all_refinement_models';
  const filter = options.dataFilter ? '_0pct_baseline' : '';
  const human = options.humanAnnotationFilter ? '_human_filtered' : '';
  return `task_list_${domain}_${agent}${rm}${filter}${human}_${stamp}.json`;
}
