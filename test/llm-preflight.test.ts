// What an answered stage checks before any request: its provider's keys and
// settings (stages/llm/preflight.ts), through the real provider modules.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { preflightProblems } from '../stages/llm/preflight.ts';
import { testLlmSettings } from './helpers/llm-over-fake.ts';

const root = mkdtempSync(join(tmpdir(), 'preflight-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const check = (stages: Parameters<typeof preflightProblems>[0], env: NodeJS.ProcessEnv = {}) => preflightProblems(stages, { workspaceRoot: root, env });

describe('preflightProblems', () => {
  it('names the missing variable once, with every stage it stops', async () => {
    const openai = testLlmSettings('openai', 'gpt-5-mini');
    const problems = await check([{ stage: 'summarize', settings: openai }, { stage: 'categorize', settings: openai }, { stage: 'cluster', settings: testLlmSettings('offline', 'x') }]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^OPENAI_API_KEY is not set \(provider openai\).*\(needed by summarize, categorize\)$/);
  });

  it('is empty when the keys are there, and for the offline analyzer', async () => {
    expect(await check([{ stage: 'summarize', settings: testLlmSettings('openai', 'gpt-5-mini') }], { OPENAI_API_KEY: 'sk-preflight' })).toEqual([]);
    expect(await check([{ stage: 'summarize', settings: testLlmSettings('offline', 'x') }])).toEqual([]);
  });

  it('follows api_key_env and each provider\'s own variables', async () => {
    const custom = { ...testLlmSettings('anthropic', 'claude-x'), api_key_env: 'TEAM_ANTHROPIC_KEY' };
    expect((await check([{ stage: 'cluster', settings: custom }]))[0]).toMatch(/^TEAM_ANTHROPIC_KEY is not set \(provider anthropic, api_key_env: TEAM_ANTHROPIC_KEY\)/);
    expect((await check([{ stage: 'cluster', settings: testLlmSettings('anthropic', 'claude-x') }]))[0]).toMatch(/^ANTHROPIC_API_KEY is not set/);
    // openai_compatible needs a base_url, not a key: an impossible setting is named as such.
    const compatible = await check([{ stage: 'summarize', settings: { ...testLlmSettings('openai_compatible', 'llama'), base_url: null } }]);
    expect(compatible).toHaveLength(1);
    expect(compatible[0]).toContain('base_url');
  });
});
