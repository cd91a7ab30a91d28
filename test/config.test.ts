import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, MAX_ALIAS_VALUES, parsePipeline, pipelineJsonSchema, resolveAnalysis, stageSettings } from '../stages/config.ts';

const minimal = `
data:
  root: examples/perturbed_queries
analyses:
  - name: a1
    agents: [agent-x]
`;

function errorOf(text: string): ConfigError {
  try {
    parsePipeline(text, 'pipeline.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('pipeline.yaml', () => {
  it('fills the reference defaults with the offline provider', () => {
    const a = resolveAnalysis(parsePipeline(minimal, 'pipeline.yaml'), 'a1');
    expect(a.summarize).toMatchObject({ provider: 'offline', model: 'gpt-5-2025-08-07', temperature: 1, max_tokens: 32768, concurrency: 10 });
    expect(a.categorize).toMatchObject({ max_tokens: 32768, initial_batch_size: 10, iterative_batch_size: 5 });
    expect(a.cluster.max_tokens).toBe(64000);
    expect(a.report.max_examples).toBe(3);
    expect(a.data.perturbation_model).toBe('o4-mini-2025-04-16');
    expect(a.domains).toBe('all');
  });

  it('applies defaults, then stage settings, then the analysis overrides', () => {
    const cfg = parsePipeline(
      `${minimal}
defaults: { provider: openai, model: m-default }
stages:
  cluster: { model: m-cluster }
`.replace('    agents: [agent-x]', '    agents: [agent-x]\n    stages: { cluster: { temperature: 0.2 } }'),
      'pipeline.yaml',
    );
    const a = resolveAnalysis(cfg, 'a1');
    expect(a.summarize.model).toBe('m-default');
    expect(a.cluster).toMatchObject({ provider: 'openai', model: 'm-cluster', temperature: 0.2 });
  });

  it('the shipped pipeline.yaml lets defaults.model reach every stage (no stage shadows it)', () => {
    const shipped = readFileSync(new URL('../pipeline.yaml', import.meta.url), 'utf8');
    const edited = shipped.replace(/^(defaults:\n(?:\s+.*\n)*?\s+model:) \S+/m, '$1 m-from-defaults');
    expect(edited).not.toBe(shipped);
    const a = resolveAnalysis(parsePipeline(edited, 'pipeline.yaml'), 'analysis');
    expect([a.summarize.model, a.categorize.model, a.cluster.model]).toEqual(['m-from-defaults', 'm-from-defaults', 'm-from-defaults']);
  });

  it('names the file, the key path and what was expected', () => {
    const err = errorOf(minimal.replace('agents: [agent-x]', 'agents: [agent-x]\n    stages: { summarize: { temperature: "hot" } }'));
    expect(err.message).toContain('pipeline.yaml');
    expect(err.issues.join('\n')).toMatch(/analyses\[0\]\.stages\.summarize\.temperature: .*number/i);
  });

  it('rejects unknown keys, naming them', () => {
    const err = errorOf(`${minimal}stages:\n  sumarize: { model: x }\n`);
    expect(err.issues.join('\n')).toContain('stages: unknown key "sumarize"');
  });

  it('rejects duplicate analysis names and YAML syntax errors', () => {
    expect(errorOf(`${minimal}  - name: a1\n    agents: [y]\n`).issues.join()).toContain('duplicate analysis name "a1"');
    expect(errorOf('data: [unclosed').issues.join()).toContain('YAML syntax');
  });

  // A "billion laughs": each level is a list of ten aliases to the level
  // before, so level n stands for about 10^n values.
  const bomb = (levels: number): string => {
    const lines = ['    domains:', '      - &l1 [' + Array(10).fill('*l0').join(', ') + ']'];
    for (let n = 2; n <= levels; n++) lines.push(`      - &l${n} [` + Array(10).fill(`*l${n - 1}`).join(', ') + ']');
    return minimal.replace('    agents: [agent-x]', `    agents: &l0 [${Array(10).fill('agent-x').join(', ')}]\n${lines.join('\n')}`);
  };

  it('rejects an alias bomb, naming the file, the alias and the limit', () => {
    const started = Date.now();
    const err = errorOf(bomb(9));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err.file).toBe('pipeline.yaml');
    // Running total: level 1 adds 10 x 11 values, level 2 10 x 111, and the
    // eighth alias of level 3 (1,111 each) passes 10,000.
    expect(err.issues).toEqual([
      `analyses[0].domains[2][7]: too many alias expansions (YAML aliases may stand for at most ${MAX_ALIAS_VALUES} values in all; *l2 brings them past it); write the values out`,
    ]);
    expect(err.message).toMatch(/^pipeline\.yaml: invalid configuration\n/);
  });

  it('accepts aliases that stay under the limit, however often an anchor is used', () => {
    const reused = `${minimal}  - name: a2\n    agents: *agents\n`.replace('agents: [agent-x]', 'agents: &agents [agent-x]');
    const cfg = parsePipeline(`${reused}defaults: { model: &m m1 }\nstages:\n${['summarize', 'categorize', 'cluster'].map((s) => `  ${s}: { model: *m }`).join('\n')}\n`, 'pipeline.yaml');
    expect(resolveAnalysis(cfg, 'a2').agents).toEqual(['agent-x']);
    expect(resolveAnalysis(cfg, 'a2').cluster.model).toBe('m1');
    // 300 uses of one anchor: the yaml library's own counter stops at 100.
    const many = `${minimal}  - name: a2\n    agents: [${Array(300).fill('*x').join(', ')}]\n`.replace('agents: [agent-x]', 'agents: [&x agent-x]');
    expect(resolveAnalysis(parsePipeline(many, 'pipeline.yaml'), 'a2').agents).toHaveLength(300);
    // Two levels of the bomb (1,220 values) pass the alias check; the schema then speaks.
    const schemaIssues = errorOf(bomb(2)).issues.join('\n');
    expect(schemaIssues).toMatch(/^analyses\[0\]\.domains: /);
    expect(schemaIssues).not.toMatch(/alias/);
  });

  it('rejects an alias before its anchor and an alias inside its own anchor, naming where', () => {
    expect(errorOf(`${minimal}defaults: { model: *m }\n`).issues).toEqual([
      'defaults.model: the alias *m comes before any anchor &m (an anchor must be set before its aliases)',
    ]);
    expect(errorOf(minimal.replace('agents: [agent-x]', 'agents: &a [agent-x, *a]')).issues).toEqual([
      'analyses[0].agents[1]: the alias *a is inside the value anchored as &a (a value cannot contain itself)',
    ]);
  });

  it('gives each stage a settings slice that ignores the other stages and throughput knobs', () => {
    const base = resolveAnalysis(parsePipeline(minimal, 'pipeline.yaml'), 'a1');
    const edited = resolveAnalysis(parsePipeline(`${minimal}stages:\n  cluster: { model: other, concurrency: 3 }\n  summarize: { concurrency: 50 }\n`, 'pipeline.yaml'), 'a1');
    expect(stageSettings(edited, 'summarize')).toEqual(stageSettings(base, 'summarize'));
    expect(stageSettings(edited, 'categorize')).toEqual(stageSettings(base, 'categorize'));
    expect(stageSettings(edited, 'cluster')).not.toEqual(stageSettings(base, 'cluster'));
  });

  it('ships a JSON Schema that matches the zod schema (run `npm run schema` after editing config.ts)', () => {
    expect(readFileSync(new URL('../pipeline.schema.json', import.meta.url), 'utf8')).toBe(pipelineJsonSchema());
  });

  it('accepts the shipped pipeline.yaml', () => {
    const cfg = parsePipeline(readFileSync(new URL('../pipeline.yaml', import.meta.url), 'utf8'), 'pipeline.yaml');
    const a = resolveAnalysis(cfg, 'analysis');
    expect(a.agents).toEqual(['claude-haiku-4-5-20251001', 'claude-opus-4-5-20251101']);
    expect(a.summarize.provider).toBe('offline');
  });
});

describe('checkNamedPaths', () => {
  it('names the key, the path and what was expected for every missing or wrong-kind path', async () => {
    const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { checkNamedPaths } = await import('../stages/config.ts');
    const root = mkdtempSync(join(tmpdir(), 'named-paths-'));
    try {
      mkdirSync(join(root, 'data'));
      mkdirSync(join(root, 'prompts'));
      for (const p of ['summarize', 'categorize-create', 'categorize-update', 'cluster']) writeFileSync(join(root, 'prompts', `${p}.md`), 'x');
      const cfg = parsePipeline('data: { root: data }\nanalyses: [{ name: a, agents: [x] }]\n', 'pipeline.yaml');
      const resolvePath = (p: string) => join(root, p);
      expect(() => checkNamedPaths(resolveAnalysis(cfg, 'a'), resolvePath)).not.toThrow();
      const bad = parsePipeline(
        'data: { root: nowhere, filters: { baseline_harm: prompts } }\nstages: { cluster: { prompt: prompts/nope.md } }\nanalyses: [{ name: a, agents: [x] }]\n',
        'pipeline.yaml',
      );
      let message = '';
      try {
        checkNamedPaths(resolveAnalysis(bad, 'a'), resolvePath);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        message = (err as Error).message;
      }
      expect(message).toContain('pipeline.yaml: invalid configuration');
      expect(message).toContain('data.root (analysis "a"): nowhere: not found; expected a folder: the elicitation output tree');
      expect(message).toContain('data.filters.baseline_harm (analysis "a"): prompts: a folder; expected a file');
      expect(message).toContain('stages.cluster.prompt (analysis "a"): prompts/nope.md: not found; expected a file: a prompt template');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
