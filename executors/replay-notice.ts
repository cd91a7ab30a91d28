// After Nx has run tasks: one line for every stage target whose output Nx
// restored from a cache. Nx replays the terminal output stored with the
// output, so the stage's own lines ("computed 117, spent $0.14") come back
// word for word; this line says that they describe the run that built the
// output, and that nothing was computed or paid now.
import type { PostTasksExecution } from '@nx/devkit';
import { STAGES, isStage } from '../stages/registry.ts';

const RESTORED: Record<string, string> = {
  'local-cache': "Nx's local cache",
  'local-cache-kept-existing': "Nx's local cache (the files on disk already matched)",
  'remote-cache': 'the remote cache',
};

/**
 * One line per cache the outputs came from, naming the restored stage targets
 * in pipeline order; nothing when every stage target ran.
 */
export function replayNotices(results: readonly { id: string; project: string; target: string; status: string }[]): string[] {
  const by = new Map<string, string[]>();
  const order = (t: string) => (STAGES as readonly string[]).indexOf(t);
  const restored = results.filter((r) => RESTORED[r.status] !== undefined && isStage(r.target))
    .sort((x, y) => (x.project < y.project ? -1 : x.project > y.project ? 1 : order(x.target) - order(y.target)));
  for (const r of restored) by.set(RESTORED[r.status] as string, [...(by.get(RESTORED[r.status] as string) ?? []), r.id]);
  return [...by].map(([from, ids]) =>
    `Restored from ${from}: ${ids.join(', ')}. Their lines above replay the logs of the runs that built them; nothing was computed or spent now ($0).`);
}

export const postTasksExecution: PostTasksExecution = (_options, context) => {
  const lines = replayNotices(Object.entries(context.taskResults).map(([id, r]) => ({ id, project: r.task.target.project, target: r.task.target.target, status: r.status })));
  if (lines.length > 0) console.log(lines.join('\n'));
};
