// What an LLM stage needs before its first request, checked for every
// answered stage that will run: its provider's key variables, endpoint and
// region, and batch support when batch mode is on. A missing one is a
// configuration error, not a provider failure: re-running cannot fix it, so
// the stage stops before it reads or sends anything, with one message naming
// the variable and the stages that need it, and the previous outputs stay.
import { createEnvLookup } from './env.ts';
import { LlmConfigError, MissingCredentialsError } from './errors.ts';
import { createProvider } from './providers/index.ts';
import type { LlmSettings } from './types.ts';

export interface StageSettingsToCheck {
  stage: string;
  settings: LlmSettings;
}

/** Problems of the stages' providers, one line per distinct problem, naming the stages it stops (empty: all can run). */
export async function preflightProblems(stages: readonly StageSettingsToCheck[], opts: { workspaceRoot: string; env?: NodeJS.ProcessEnv }): Promise<string[]> {
  const env = createEnvLookup({ env: opts.env, workspaceRoot: opts.workspaceRoot });
  const byProblem = new Map<string, string[]>();
  for (const { stage, settings } of stages) {
    if (settings.provider === 'offline') continue;
    try {
      await createProvider(settings, { env }).preflight();
    } catch (err) {
      if (!(err instanceof MissingCredentialsError) && !(err instanceof LlmConfigError)) throw err;
      const problem = err instanceof MissingCredentialsError
        ? `${err.variable} is not set (provider ${err.provider}${settings.api_key_env ? `, api_key_env: ${settings.api_key_env}` : ''}): set it in the environment or in the workspace's .env file, or use provider: offline`
        : err.message;
      byProblem.set(problem, [...(byProblem.get(problem) ?? []), stage]);
    }
  }
  return [...byProblem].map(([problem, names]) => `${problem} (needed by ${names.join(', ')})`);
}
