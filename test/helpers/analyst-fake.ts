// A scripted "analyst" behind the fake OpenAI endpoint: it reads our prompts
// (summary, taxonomy create/update, clustering), answers them in the
// requested JSON shapes with a simple keyword rule, and can be told to answer
// some batches badly (an unknown category name, a forgotten run) so tests can
// prove that the pipeline repairs or reports such answers. It also answers
// the assignment prompt of the induce-then-assign strategy (an existing
// category, or "none fits" with a proposal), and can be given its own labels
// and a habit of lumping a run into a related category it is shown, so that
// the two strategies can be compared (bench/categorize-parallel.ts).
import { createHash } from 'node:crypto';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import type { FakeHandler, FakeReply, RecordedRequest } from './fake-provider-server.ts';

export type Step = 'summarize' | 'create' | 'update' | 'assign' | 'cluster' | 'unknown';

export function stepOf(req: RecordedRequest): Step {
  const first = String(req.body?.messages?.find((m: { role: string }) => m.role === 'user')?.content ?? '');
  if (first.includes('## Original instruction')) return 'summarize';
  if (first.includes('The current categories:')) return 'update';
  if (first.includes('Runs to sort:')) return 'assign';
  if (first.includes('Group the runs into fine-grained categories')) return 'create';
  if (first.includes('into higher-level themes')) return 'cluster';
  return 'unknown';
}

/** Mechanism label of a run by a keyword rule on its perturbed instruction. */
export function labelOf(perturbed: string): string {
  const p = perturbed.toLowerCase();
  if (/clean|remove|delete|leftover|tidy/.test(p)) return 'Unscoped cleanup of working files';
  if (/permission|access|sudo|locked/.test(p)) return 'Claimed access obstacle';
  if (/persist|reboot|permanent|every time|always/.test(p)) return 'Demand that a change persists';
  return 'Reworded task without a specific cue';
}

const DEFINITION: Record<string, string> = {};
const defOf = (name: string) => (DEFINITION[name] ??= `Runs whose wording matches: ${name.toLowerCase()}.`);

function runsOf(prompt: string): { id: string; perturbed: string }[] {
  const out: { id: string; perturbed: string }[] = [];
  const re = /Run id: (.+)\n(?:.*\n)*?Perturbed instruction: (.*)/g;
  for (const m of prompt.matchAll(re)) out.push({ id: (m[1] as string).trim(), perturbed: m[2] as string });
  return out;
}

function existingNames(prompt: string): string[] {
  const start = prompt.indexOf('[');
  const end = prompt.indexOf(']\n', start);
  try {
    return (JSON.parse(prompt.slice(start, end + 1)) as { name: string }[]).map((c) => c.name);
  } catch {
    return [];
  }
}

export interface AnalystOptions {
  /** Answer the first request of every k-th categorization batch badly (0: never). */
  badEvery?: number;
  /** Tokens reported per answer (default 800 in, 150 out); 'tokenized': the request's messages and the answer counted with OpenAI's o200k_base tokenizer, as the provider would. */
  usage?: { input: number; output: number } | 'tokenized';
  /** The category a run belongs to (default: the keyword rule of `labelOf` on its perturbed instruction). */
  label?: (run: { id: string; perturbed: string }) => string;
  /**
   * Share of runs (chosen by a hash of the run id) that, when the category of
   * their own label is not among those shown, are put into a shown category
   * of the same keyword family (`labelOf`) instead of a new one: the habit of
   * a model that lumps. 0 (default): never. It makes the taxonomy depend on
   * what is shown when, as a real model's does.
   */
  lumpShare?: number;
  /** Wait this long before each answer. */
  delayMs?: number;
}

export interface Analyst {
  handler: FakeHandler;
  /** Requests seen, by step (repairs included). */
  counts: Record<Step, number>;
  /** Batches answered badly on purpose. */
  sabotaged: number;
  reset(): void;
}

export function analyst(opts: AnalystOptions = {}): Analyst {
  const counts: Record<Step, number> = { summarize: 0, create: 0, update: 0, assign: 0, cluster: 0, unknown: 0 };
  let batches = 0;
  const state = { sabotaged: 0 };
  /** Tokens of the messages of the request being answered (for usage 'tokenized'). */
  let requestTokens = 0;
  const usageOf = (text: string) =>
    opts.usage === 'tokenized' ? { input: requestTokens, output: countTokens(text) } : (opts.usage ?? { input: 800, output: 150 });
  const reply = (text: string): FakeReply => ({ text, usage: usageOf(text), ...(opts.delayMs ? { delayMs: opts.delayMs } : {}) });
  const fineOf = opts.label ?? ((r: { id: string; perturbed: string }) => labelOf(r.perturbed));
  /** Keyword family of each label the analyst has given, to lump by. */
  const familyOf = new Map<string, string>();
  const lumps = (id: string) => (opts.lumpShare ?? 0) > 0 && parseInt(createHash('sha256').update(id).digest('hex').slice(0, 8), 16) / 0x1_0000_0000 < (opts.lumpShare as number);
  /** The category the analyst puts a run in, given the names shown: its own label, or (lumping) a shown one of its family. */
  const placeOf = (r: { id: string; perturbed: string }, shown: readonly string[]): string => {
    const own = fineOf(r);
    const family = labelOf(r.perturbed);
    if (!familyOf.has(own)) familyOf.set(own, family);
    if (shown.includes(own) || !lumps(r.id)) return own;
    return shown.find((n) => familyOf.get(n) === family) ?? own;
  };

  const handler: FakeHandler = (req) => {
    if (opts.usage === 'tokenized') requestTokens = ((req.body?.messages ?? []) as { content?: unknown }[]).reduce((n, m) => n + countTokens(String(m.content ?? '')), 0);
    const step = stepOf(req);
    counts[step] += 1;
    const messages = req.body?.messages ?? [];
    const prompt = String(messages.find((m: { role: string }) => m.role === 'user')?.content ?? '');
    const isFollowUp = messages.length > 1;
    if (step === 'summarize') return reply(`The perturbation added a cue; summary ${prompt.length}.`);
    if (step === 'assign') {
      const runs = runsOf(prompt);
      const existing = existingNames(prompt);
      const assignments = runs.map((r) => {
        const name = placeOf(r, existing);
        const fits = existing.includes(name);
        return {
          id: r.id,
          category_name: fits ? name : null,
          proposed_category: fits ? null : { category_name: name, definition: defOf(name) },
          trigger_phrase: r.perturbed.split(/[.,;]/)[0]?.trim().split(/\s+/).slice(0, 6).join(' ') ?? '',
          justification: 'Matches the rule of the test analyst.',
        };
      });
      return reply(JSON.stringify({ assignments }));
    }
    if (step === 'create' || step === 'update') {
      const runs = runsOf(prompt);
      const existing = step === 'update' ? existingNames(prompt) : [];
      const byName = new Map<string, { id: string; perturbed: string }[]>();
      for (const r of runs) {
        const name = placeOf(r, existing);
        byName.set(name, [...(byName.get(name) ?? []), r]);
      }
      let sabotage = false;
      if (!isFollowUp) {
        batches += 1;
        sabotage = (opts.badEvery ?? 0) > 0 && batches % (opts.badEvery as number) === 0 && runs.length > 1;
        if (sabotage) state.sabotaged += 1;
      }
      const example = (r: { id: string; perturbed: string }) => ({
        id: r.id,
        trigger_phrase: r.perturbed.split(/[.,;]/)[0]?.trim().split(/\s+/).slice(0, 6).join(' ') ?? '',
        justification: 'Matches the keyword rule of the test analyst.',
      });
      const categories = [...byName.entries()].map(([name, rs]) => ({ category_name: name, definition: defOf(name), examples: rs.map(example) }));
      if (step === 'create') {
        if (sabotage) categories[0]!.examples.pop(); // a forgotten run
        return reply(JSON.stringify({ categories }));
      }
      const assignments = categories.filter((c) => existing.includes(c.category_name))
        .flatMap((c) => c.examples.map((e) => ({ ...e, category_name: c.category_name })));
      const fresh = categories.filter((c) => !existing.includes(c.category_name));
      if (sabotage) {
        // Alternate the two faults: an unknown category name, a forgotten run.
        if (state.sabotaged % 2 === 1 && assignments.length > 0) assignments[0]!.category_name = 'A Category That Does Not Exist';
        else if (assignments.length > 0) assignments.pop();
        else fresh[0]?.examples.pop();
      }
      return reply(JSON.stringify({ assignments, new_categories: fresh }));
    }
    if (step === 'cluster') {
      const names = [...prompt.matchAll(/^Category \d+: (.+)$/gm)].map((m) => (m[1] as string).trim());
      const group = (n: string) => (/cleanup|persist/i.test(n) ? 'Changes that outlive the task' : 'Pressure and obstacles');
      const groups = new Map<string, string[]>();
      for (const n of names) groups.set(group(n), [...(groups.get(group(n)) ?? []), n]);
      const clusters = [...groups.entries()].map(([cluster_name, members]) => ({
        cluster_name,
        definition: `Categories grouped by the test analyst as ${cluster_name.toLowerCase()}.`,
        anchor_phrases: 'clean up, keep it that way',
        member_categories: members.map((m) => ({ category_name: m, category_definition: defOf(m), justification: 'Shares the cue.' })),
      }));
      return reply(JSON.stringify({ clusters }));
    }
    return { status: 400, error: 'the test analyst does not know this prompt' };
  };
  return {
    handler,
    counts,
    get sabotaged() {
      return state.sabotaged;
    },
    reset() {
      for (const k of Object.keys(counts) as Step[]) counts[k] = 0;
    },
  };
}
