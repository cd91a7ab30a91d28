// The one description of what a stage's output depends on, said once per
// stage from pipeline.yaml and the registry: its settings slice, the files
// pipeline.yaml names for it, the upstream files it reads, the endpoint the
// environment may choose, and (task-list) the selection its data fingerprint
// crawls. The plugin adds the code (executors/code-closure.ts) and passes the
// whole to the target's one runtime input (executors/key.mjs); the runner
// checks what the stage reads against it; the plan computes the same record
// from it (stages/input-record.ts).
import { namedFiles, stageSettings } from './config.ts';
import type { ResolvedAnalysis } from './config.ts';
import { ENDPOINT_ENV_VARS } from './llm/endpoint.ts';
import { requestHash } from './llm/store.ts';
import { isLlmStage, STAGE_INFO } from './registry.ts';
import type { StageName } from './registry.ts';
import type { StageDescription } from './input-record.ts';
import { selectionSettings } from './task-list/settings.ts';

export function describeStage(a: ResolvedAnalysis, stage: StageName, outDir: string): StageDescription {
  let endpoint: StageDescription['endpoint'] = null;
  if (isLlmStage(stage)) {
    const s = a[stage];
    if (ENDPOINT_ENV_VARS[s.provider].length > 0) endpoint = { provider: s.provider, base_url: s.base_url };
  }
  return {
    analysis: a.name,
    stage,
    outDir,
    settings: requestHash(stageSettings(a, stage)),
    files: namedFiles(a, stage),
    reads: STAGE_INFO[stage].reads.map(([s, f]) => [s, f] as const),
    endpoint,
    selection: stage === 'task-list' ? selectionSettings(a) : null,
  };
}
