// The stage registry (stages/registry.ts) is the one place that says which
// stages exist; what Nx reads from files (executors.json, each schema.json)
// must say the same, and what the plugin derives from it must keep its value.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { braceGlob, upstreamGlob } from '../executors/plugin.ts';
import { BUILTIN_LLM, parsePipeline, resolveAnalysis, stagePromptFiles } from '../stages/config.ts';
import { EXPORT_DIR } from '../stages/summarize/export.ts';
import { SUMMARY_FILE_NAME } from '../stages/summarize/summaries.ts';
import { COMMAND_INFO, COMMANDS, isLlmStage, LLM_STAGES, STAGE_INFO, STAGES, upstreamStages } from '../stages/registry.ts';
import { lockPath } from '../stages/categorize/taxonomy-lock.ts';

const REPO = resolve(import.meta.dirname, '..');
const readJson = (rel: string) => JSON.parse(readFileSync(join(REPO, rel), 'utf8')) as Record<string, unknown>;

type Entry = { implementation: string; schema: string; description: string };
const manifest = readJson('executors/executors.json')['executors'] as Record<string, Entry>;
const described: Record<string, string> = Object.fromEntries([
  ...STAGES.map((s) => [s, STAGE_INFO[s].description]),
  ...COMMANDS.map((c) => [c, COMMAND_INFO[c].description]),
]);

describe('the stage registry', () => {
  it('has an executor for every stage and command, and no executor it does not know', () => {
    expect(Object.keys(manifest).sort()).toEqual(Object.keys(described).sort());
  });

  it.each(Object.keys(described))('%s: executors.json and schema.json say what the registry says', (name) => {
    const entry = manifest[name]!;
    expect(entry.implementation).toBe(`./${name}/executor.ts`);
    expect(existsSync(join(REPO, 'executors', entry.implementation))).toBe(true);
    expect(entry.description).toBe(described[name]);
    const schema = readJson(join('executors', entry.schema));
    expect(schema['title']).toBe(`${name} executor`);
    expect(schema['description']).toBe(described[name]);
  });

  it('is a chain: the first stage reads nothing, each other one the stage before it', () => {
    // The plan (executors/plan/targets.ts) walks the stages in this order and carries one upstream verdict.
    STAGES.forEach((s, i) => expect(STAGE_INFO[s].dependsOn, s).toBe(i === 0 ? null : STAGES[i - 1]));
    expect(upstreamStages('report')).toEqual(['task-list', 'summarize', 'categorize', 'cluster']);
    expect(upstreamStages('task-list')).toEqual([]);
    for (const c of COMMANDS) {
      const after = COMMAND_INFO[c].dependsOn;
      if (after !== null) expect(STAGES).toContain(after);
    }
  });

  it('derives the upstream glob each target hashes from the files the stage reads, all upstream', () => {
    expect(upstreamGlob(STAGE_INFO.categorize)).toBe('**/{evaluations,index,runs}.json');
    expect(upstreamGlob(STAGE_INFO.cluster)).toBe('**/categorization.json');
    for (const s of STAGES) for (const [from] of STAGE_INFO[s].reads) expect(upstreamStages(s)).toContain(from);
    expect(braceGlob(['a.json'])).toBe('**/a.json');
    expect(braceGlob(['a.json', 'b.md'])).toBe('**/{a.json,b.md}');
  });

  it('names as LLM stages exactly those with LLM settings, and only they read prompts', () => {
    expect(LLM_STAGES).toEqual(['summarize', 'categorize', 'cluster']);
    expect([...LLM_STAGES].sort()).toEqual(Object.keys(BUILTIN_LLM).sort());
    expect(isLlmStage('report')).toBe(false);
    expect(isLlmStage('plan')).toBe(false);
    const a = resolveAnalysis(parsePipeline('data: { root: examples/perturbed_queries }\nanalyses: [{ name: a1, agents: [x] }]\n', 'pipeline.yaml'), 'a1');
    for (const s of STAGES) {
      const prompts = stagePromptFiles(a, s);
      if (isLlmStage(s)) expect(prompts.length, s).toBeGreaterThan(0);
      else expect(prompts, s).toEqual([]);
      for (const p of prompts) expect(existsSync(join(REPO, p)), `${s}: ${p}`).toBe(true);
    }
  });

  it('states the lock path the lock module writes, and the folder the export writes', () => {
    expect(COMMAND_INFO['lock-taxonomy'].description).toContain(`(${lockPath('<name>')})`);
    expect(COMMAND_INFO['export-summaries'].description).toContain(`(out/<name>/${EXPORT_DIR}/`);
    expect(COMMAND_INFO['export-summaries'].description).toContain(`/${SUMMARY_FILE_NAME})`);
  });

  it('imports only the stages\' settings modules (and types), so no stage logic and no import cycle', () => {
    const source = readFileSync(join(REPO, 'stages/registry.ts'), 'utf8');
    const imports = source.match(/^\s*(?:import|export)\b[^;]*?\bfrom\s*['"][^'"]+['"]/gm) ?? [];
    expect(imports.length).toBeGreaterThan(0);
    const allowed = /from '\.\/(?:[a-z-]+\/settings|categorize\/lock-path|input-record)\.ts'$/;
    for (const i of imports) if (!/^import type\b/.test(i.trim())) expect(i.trim()).toMatch(allowed);
    expect(source).not.toMatch(/\bimport\s*\(/);
    // Each settings module is a leaf of the stage: it imports no stage logic.
    for (const s of STAGES) {
      const file = s === 'task-list' ? 'stages/task-list/settings.ts' : `stages/${s}/settings.ts`;
      const text = readFileSync(join(REPO, file), 'utf8');
      for (const i of text.match(/^\s*import\b(?!\s+type)[^;]*?\bfrom\s*['"]([^'"]+)['"]/gm) ?? []) {
        expect(i, `${file}: ${i}`).toMatch(/from '(?:zod|\.\.\/llm\/settings\.ts|\.\.\/stage-settings\.ts|\.\/lock-path\.ts|\.\.\/categorize\/lock-path\.ts|\.\/data-root-files\.ts)'/);
      }
    }
  });
});
