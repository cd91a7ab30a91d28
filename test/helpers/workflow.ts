// The CI workflow (.github/workflows/analysis.yml) as data, for the tests:
// - workflowTrustProblems: the trust model the workflow promises (see its
//   header and docs/team-cache.md), as a list of broken rules;
// - jobRuns: a job's `run` steps, each with the environment GitHub would give
//   it (workflow, job and step `env:`), so a test can run the same commands.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';

export const WORKFLOW_FILE = '.github/workflows/analysis.yml';
/** The GitHub Environment that holds the write token and the provider key; its deployment branch rule admits main only. */
export const GATE_ENVIRONMENT = 'analysis-main';
/** The only secrets a job outside the gate may read: they cannot write to the cache nor pay a provider. */
export const READ_ONLY_SECRETS: readonly string[] = ['NX_CACHE_READ_TOKEN'];

export interface Step {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  env?: Record<string, unknown>;
  with?: Record<string, unknown>;
}
export interface Job {
  name?: string;
  if?: string;
  environment?: string | { name?: string; url?: string };
  env?: Record<string, unknown>;
  permissions?: string | Record<string, string>;
  secrets?: unknown;
  steps?: Step[];
  [key: string]: unknown;
}
export interface Workflow {
  on: unknown;
  env?: Record<string, unknown>;
  permissions?: string | Record<string, string>;
  jobs: Record<string, Job>;
}

export function readWorkflow(root: string): Workflow {
  return YAML.parse(readFileSync(join(root, WORKFLOW_FILE), 'utf8')) as Workflow;
}

/** Names of the secrets an expression text reads (`secrets.X` or `secrets['X']`). */
export function secretsIn(text: string): string[] {
  const names = new Set<string>();
  for (const expr of text.matchAll(/\$\{\{([\s\S]*?)\}\}/g)) {
    for (const m of (expr[1] as string).matchAll(/\bsecrets\s*(?:\.\s*([A-Za-z_][\w-]*)|\[\s*['"]([^'"]+)['"]\s*\])/g)) names.add((m[1] ?? m[2]) as string);
    if (/\bsecrets\b(?!\s*[.[])/.test(expr[1] as string)) names.add('*'); // the whole secrets context, e.g. toJSON(secrets)
  }
  return [...names];
}

/** Every string in a YAML value, with its path. */
function strings(value: unknown, path: string, out: [string, string][] = []): [string, string][] {
  if (typeof value === 'string') out.push([path, value]);
  else if (Array.isArray(value)) value.forEach((v, i) => strings(v, `${path}[${i}]`, out));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) strings(v, path ? `${path}.${k}` : k, out);
  return out;
}

const triggers = (on: unknown): string[] => (typeof on === 'string' ? [on] : Array.isArray(on) ? on.map(String) : on && typeof on === 'object' ? Object.keys(on) : []);
const environmentOf = (job: Job): string | null => (typeof job.environment === 'string' ? job.environment : job.environment?.name ?? null);
/** A step that installs packages: their install scripts run there. */
export const installs = (step: Step): boolean => typeof step.run === 'string' && /\b(npm\s+(ci|install|i)|yarn(\s+install)?|pnpm\s+(i|install))\b/.test(step.run);

/** The job holds the gate: it names the environment and runs on main only. */
export function isGated(job: Job, environment = GATE_ENVIRONMENT): boolean {
  return environmentOf(job) === environment && /github\.ref\s*==\s*'refs\/heads\/main'/.test(job.if ?? '');
}

/**
 * The rules the workflow promises, each broken one as a sentence:
 * - no trigger that runs with the base repository's secrets on untrusted input
 *   (pull_request_target, workflow_run);
 * - every secret is read in a step's `env:` (not the workflow's or a job's,
 *   not `with:`, not inline in `run:`), never by a step that installs packages
 *   nor by an action (`uses:`), and no job passes `secrets: inherit`;
 * - a secret other than the read-only ones only in the gated job;
 * - no write permission but `id-token` (for a data step's OIDC login).
 */
export function workflowTrustProblems(wf: Workflow, opts: { environment?: string; readOnly?: readonly string[] } = {}): string[] {
  const environment = opts.environment ?? GATE_ENVIRONMENT;
  const readOnly = new Set(opts.readOnly ?? READ_ONLY_SECRETS);
  const problems: string[] = [];

  for (const t of triggers(wf.on)) {
    if (t === 'pull_request_target' || t === 'workflow_run') problems.push(`on.${t}: runs with this repository's secrets on code a pull request controls`);
  }

  const stepEnv = /^jobs\.([^.]+)\.steps\[(\d+)\]\.env\.[^.]+$/;
  for (const [path, text] of strings(wf, '')) {
    for (const name of secretsIn(text)) {
      const m = stepEnv.exec(path);
      if (!m) {
        problems.push(`${path}: secrets.${name} outside a step's env (a secret goes to the step that needs it)`);
        continue;
      }
      const jobName = m[1] as string;
      const job = wf.jobs[jobName] as Job;
      const step = (job.steps ?? [])[Number(m[2])] as Step;
      const label = `jobs.${jobName}.steps[${m[2]}]${step.name ? ` (${step.name})` : ''}`;
      if (installs(step)) problems.push(`${label}: secrets.${name} given to a step that installs packages (their install scripts would see it)`);
      if (step.uses) problems.push(`${label}: secrets.${name} given to an action (${step.uses})`);
      if (!readOnly.has(name) && !isGated(job, environment)) {
        problems.push(`${label}: secrets.${name} in job ${jobName}, which is not gated (environment ${environment} and if: github.ref == 'refs/heads/main')`);
      }
    }
  }

  for (const [name, job] of Object.entries(wf.jobs)) {
    if (job.secrets !== undefined) problems.push(`jobs.${name}.secrets: passes secrets to a called workflow`);
    if (environmentOf(job) === environment && !isGated(job, environment)) problems.push(`jobs.${name}: names ${environment} but does not run on main only`);
  }

  const perms: [string, unknown][] = [['permissions', wf.permissions], ...Object.entries(wf.jobs).map(([n, j]) => [`jobs.${n}.permissions`, j.permissions] as [string, unknown])];
  if (wf.permissions === undefined) problems.push('permissions: not set (the default token may write)');
  for (const [path, p] of perms) {
    if (typeof p === 'string' && p !== 'read-all' && p !== '{}') problems.push(`${path}: ${p}`);
    if (p && typeof p === 'object') for (const [scope, level] of Object.entries(p)) if (level === 'write' && scope !== 'id-token') problems.push(`${path}.${scope}: write`);
  }
  return problems;
}

/** `${{ vars.X }}`, `${{ secrets.X }}` and `${{ a || 'b' }}`: the only expressions the workflow's env uses. */
export function evaluate(value: string, ctx: Record<string, Record<string, string>>): string {
  const m = /^\$\{\{\s*(.+?)\s*\}\}$/.exec(value);
  if (!m) return value;
  for (const alt of (m[1] as string).split('||').map((s) => s.trim())) {
    const lit = /^'(.*)'$/.exec(alt);
    if (lit) return lit[1] as string;
    const [scope, name] = alt.split('.');
    const v = ctx[scope as string]?.[name as string];
    if (v) return v;
  }
  return '';
}

/** A job's `run` steps in order, each with the environment GitHub gives that step. */
export function jobRuns(wf: Workflow, jobName: string, ctx: Record<string, Record<string, string>>): { name: string; run: string; env: Record<string, string> }[] {
  const job = wf.jobs[jobName];
  if (!job) throw new Error(`${WORKFLOW_FILE}: no job ${jobName}`);
  return (job.steps ?? [])
    .filter((s) => typeof s.run === 'string')
    .map((s) => {
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries({ ...wf.env, ...job.env, ...s.env })) env[k] = evaluate(String(v), ctx);
      return { name: s.name ?? (s.run as string).trim(), run: (s.run as string).trim(), env };
    });
}
