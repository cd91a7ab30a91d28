// report's settings: how many trigger phrases each category shows. It also
// states the data and selection it describes, and compares with the lock.
import { z } from 'zod';
import { lockPath } from '../categorize/lock-path.ts';
import { pick } from '../stage-settings.ts';
import type { StageSettings } from '../stage-settings.ts';

const section = z.strictObject({
  max_examples: z.int().min(0).optional().describe('Trigger phrases shown per category.'),
});

export interface ReportSettings {
  max_examples: number;
}

export const reportSettings: StageSettings<typeof section, ReportSettings> = {
  section,
  resolve: (layers) => ({ max_examples: pick(layers, 'max_examples') ?? 3 }),
  // The report states the data and selection it describes.
  slice: (s, a) => ({ ...s, data: a.data, agents: a.agents, domains: a.domains, refinement_models: a.refinement_models }),
  promptFiles: () => [],
  // Its "what changed" compares with the lock.
  otherFiles: (_s, a) => [lockPath(a.name)],
  paths: () => [],
};
