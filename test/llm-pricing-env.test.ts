import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createEnvLookup, parseDotEnv } from '../stages/llm/env.ts';
import { costUsd, normalizeModelId, priceOf } from '../stages/llm/pricing.ts';

describe('pricing', () => {
  it('has the reference rates (USD per 1M input/output tokens)', () => {
    const table: [string, number, number][] = [
      ['gpt-5-2025-08-07', 1.25, 10],
      ['gpt-5', 1.25, 10],
      ['gpt-5-mini', 0.25, 2],
      ['gpt-5-mini-2025-08-07', 0.25, 2],
      ['gpt-5-nano', 0.05, 0.4],
      ['gpt-5-pro', 15, 120],
      ['o4-mini', 1, 4],
      ['claude-opus-4-5', 5, 25],
      ['claude-opus-4-5-20251101', 5, 25],
      ['claude-sonnet-4-5-20250929', 3, 15],
      ['claude-haiku-4-5-20251001', 1, 5],
      ['claude-opus-4-1-20250805', 15, 75],
      ['claude-sonnet-4-20250514', 3, 15],
      ['claude-opus-4-6', 5, 25],
      ['us.anthropic.claude-sonnet-4-5-20250929-v1:0', 3, 15],
      ['us.anthropic.claude-haiku-4-5-20251001-v1:0', 1, 5],
      ['us.anthropic.claude-opus-4-6-v1', 5, 25],
      ['anthropic.claude-opus-4-1-20250805-v1:0', 15, 75],
    ];
    for (const [model, input, output] of table) expect(priceOf(model), model).toEqual({ input, output });
  });

  it('does not confuse neighbouring names', () => {
    expect(normalizeModelId('gpt-5-pro-2025-10-06')).toBe('gpt-5-pro');
    expect(priceOf('gpt-5-pro')).not.toEqual(priceOf('gpt-5'));
    expect(priceOf('claude-sonnet-4')).toEqual({ input: 3, output: 15 });
    expect(priceOf('claude-opus-4-5')).not.toEqual(priceOf('claude-opus-4-1'));
  });

  it('computes cost, and null (not 0) for unknown models', () => {
    expect(costUsd('gpt-5-2025-08-07', { input_tokens: 1_000_000, output_tokens: 100_000 })).toBeCloseTo(2.25, 10);
    expect(costUsd('us.anthropic.claude-opus-4-5-20251101-v1:0', { input_tokens: 2000, output_tokens: 1000 })).toBeCloseTo(0.035, 10);
    expect(costUsd('llama-3.1-70b-instruct', { input_tokens: 10, output_tokens: 10 })).toBeNull();
    expect(costUsd('my-azure-deployment', { input_tokens: 0, output_tokens: 0 })).toBeNull();
    expect(priceOf('constructor')).toBeNull();
  });
});

describe('env', () => {
  it('parses KEY=VALUE with comments, quotes and export', () => {
    const parsed = parseDotEnv(
      [
        '# comment',
        '',
        'PLAIN=abc',
        'export EXPORTED=1',
        'SPACED = x y ',
        'INLINE=value # trailing comment',
        'HASH_IN=a#b',
        'DQ="with \\"quotes\\" and\\nnewline"',
        "SQ='literal \\n # not a comment'",
        'MULTI="line1',
        'line2"',
        'EMPTY=',
        'not a line',
      ].join('\n'),
    );
    expect(parsed).toEqual({
      PLAIN: 'abc',
      EXPORTED: '1',
      SPACED: 'x y',
      INLINE: 'value',
      HASH_IN: 'a#b',
      DQ: 'with "quotes" and\nnewline',
      SQ: 'literal \\n # not a comment',
      MULTI: 'line1\nline2',
      EMPTY: '',
    });
  });

  it('prefers the environment, falls back to <root>/.env, treats empty as unset', () => {
    const dir = mkdtempSync(join(tmpdir(), 'llm-env-'));
    try {
      writeFileSync(join(dir, '.env'), 'A=from-file\nB=from-file\nC=\n');
      const env = createEnvLookup({ env: { A: 'from-env', B: '' }, workspaceRoot: dir });
      expect(env('A')).toBe('from-env');
      expect(env('B')).toBe('from-file');
      expect(env('C')).toBeUndefined();
      expect(env('D')).toBeUndefined();
      expect(createEnvLookup({ env: {}, workspaceRoot: join(dir, 'missing') })('A')).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
