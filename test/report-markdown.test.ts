// Behaviour of our Markdown report beyond the reference numbers: escaping,
// no clock, provenance, coverage of runs, per-agent slices.

import { describe, expect, it } from 'vitest';
import type { Category, Cluster } from '../stages/formats.ts';
import { escapeMarkdown, renderMarkdownReport, unescapeMarkdown } from '../stages/report/markdown.ts';
import type { ReportInput } from '../stages/report/markdown.ts';

function category(name: string, phrases: (string | null | undefined)[]): Category {
  return {
    category_name: name,
    definition: `about ${name}`,
    examples: phrases.map((p, i) => {
      const ex: Record<string, unknown> = { id: `t:${i}`, justification: 'j' };
      if (p !== undefined) ex['trigger_phrase'] = p;
      return ex as unknown as Category['examples'][number];
    }),
  };
}

function cluster(name: string, members: string[], justification = 'fits'): Cluster {
  return {
    cluster_name: name,
    definition: `cluster ${name}`,
    anchor_phrases: '"now"',
    member_categories: members.map((m) => ({ category_name: m, category_definition: '', justification })),
  };
}

function input(categories: Category[], clusters: Cluster[], extra: Partial<ReportInput> = {}): ReportInput {
  return { categorization: { categorization: { categories } }, clusters: { clusters }, ...extra };
}

/** Number of cell separators in a table row: pipes not preceded by a backslash escape. */
function unescapedPipes(line: string): number {
  let n = 0;
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\\') i++;
    else if (line[i] === '|') n++;
  }
  return n;
}

function section(md: string, heading: string): string {
  const start = md.indexOf(`${heading}\n`);
  if (start < 0) throw new Error(`no section ${heading}`);
  const rest = md.slice(start + heading.length + 1);
  const level = heading.split(' ')[0] as string;
  const next = rest.search(new RegExp(`^#{1,${level.length}} `, 'm'));
  return next < 0 ? rest : rest.slice(0, next);
}

describe('escaping', () => {
  const hostile = 'A | B *bold* _em_ <script>alert(1)</script> [link](http://x) `code` #tag ~~s~~ &amp; $x$ \\ end\nsecond line';

  it('escapes every markup character and joins lines', () => {
    const escaped = escapeMarkdown(hostile);
    expect(escaped).not.toMatch(/\n/);
    expect(escaped).not.toMatch(/(^|[^\\])[|*_<>[\]`#~&$]/);
    expect(unescapeMarkdown(escaped)).toBe(hostile.replace('\n', ' '));
  });

  it('round-trips arbitrary single-line text', () => {
    const alphabet = 'ab |*_<>[]`#~&$\\!().-+é😀\u0000\u001b\u007f\u0085\u2028\u2029\u202e\u2066\u200f';
    for (let seed = 1; seed < 300; seed++) {
      let s = '';
      let x = seed;
      for (let i = 0; i < 12; i++) {
        x = (x * 1103515245 + 12345) % 2147483648;
        s += Array.from(alphabet)[x % Array.from(alphabet).length];
      }
      expect(unescapeMarkdown(escapeMarkdown(s))).toBe(s);
    }
  });

  it('shows control, separator and bidi characters as escapes in code spans', () => {
    const text = 'a\u0000b\u001bc\u2028d\u2029e\u202ef\u2066g\u0085h\vi\fj\tk';
    expect(escapeMarkdown(text)).toBe('a`\\u0000`b`\\u001b`c`\\u2028`d`\\u2029`e`\\u202e`f`\\u2066`g`\\u0085`h`\\u000b`i`\\u000c`j\tk');
    expect(unescapeMarkdown(escapeMarkdown(text))).toBe(text);
    // Text that looks like one of those escapes stays distinguishable from it.
    expect(unescapeMarkdown(escapeMarkdown('`\\u2028` \\u0000'))).toBe('`\\u2028` \\u0000');
  });

  it('no control, separator or bidi character of the data reaches the report raw', () => {
    const hidden = 'X\u0000\u001b\u2028\u2029\u202e\u2067Y';
    const md = renderMarkdownReport(
      input([category(hidden, [hidden, 'x']), category('plain', [])], [cluster(hidden, [hidden], hidden)], {
        byAgent: { [hidden]: { runs: 1, categories: { [hidden]: 2 } } },
        coverage: { in_task_list: 1, summarized: 1, categorized: 1, clustered: 0, failed: [{ run_id: hidden, stage: 'summarize', reason: hidden }] },
        provenance: { analysis: hidden, notes: [hidden], filters: { [hidden]: [hidden] } },
        files: { clusters: `out/${hidden}.json`, categorization: 'c.json' },
      }),
    );
    expect(md).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
    expect(md).toContain(`### 1. ${escapeMarkdown(hidden)}`);
    // Inside a code span (run ids, file names) the escape is written as it is.
    expect(md).toContain('`X\\u0000\\u001b\\u2028\\u2029\\u202e\\u2067Y`');
    expect(md).toContain('`X\\u0000\\u001b\\u2028\\u2029\\u202e\\u2067Y.json`');
  });

  it('hostile names and phrases cannot break a table or inject HTML', () => {
    const md = renderMarkdownReport(
      input([category(hostile, [hostile, 'x']), category('other | name', [])], [cluster(hostile, [hostile]), cluster(`${hostile} 2`, ['other | name'])], {
        byAgent: { [hostile]: { runs: 1, categories: { [hostile]: 2 } } },
        coverage: { in_task_list: 1, summarized: 1, categorized: 1, clustered: 0, failed: [{ run_id: 'a|b`c', stage: hostile, reason: hostile }] },
      }),
    );
    expect(md).not.toContain('<script>');
    expect(md).not.toMatch(/^second line/m);
    const tables = md.split('\n').filter((l) => l.startsWith('|'));
    expect(tables.length).toBeGreaterThan(10);
    // every row of a table has as many cell separators as its header row
    let expected = -1;
    for (const line of md.split('\n')) {
      if (!line.startsWith('|')) {
        expected = -1;
        continue;
      }
      if (expected < 0) expected = unescapedPipes(line);
      else expect(unescapedPipes(line), line).toBe(expected);
    }
    // the full name is kept in the detail heading, escaped
    expect(md).toContain(`### 1. ${escapeMarkdown(hostile)}`);
  });
});

describe('report content', () => {
  it('has no clock: identical input gives identical output and no date appears', () => {
    const make = (): string => renderMarkdownReport(input([category('A', ['p'])], [cluster('K', ['A'])]));
    const first = make();
    expect(make()).toBe(first);
    expect(first).not.toMatch(/\d{4}-\d{2}-\d{2}/);
    expect(first).not.toMatch(/Generated/);
    expect(first.endsWith('\n')).toBe(true);
    expect(first.endsWith('\n\n')).toBe(false);
  });

  it('prints only base names of the input files', () => {
    const md = renderMarkdownReport(
      input([], [], { files: { clusters: '/home/me/secret/llm_clusters.json', categorization: 'C:\\data\\cat.json' } }),
    );
    expect(md).toContain('`llm_clusters.json`');
    expect(md).toContain('`cat.json`');
    expect(md).not.toContain('/home/me');
    expect(md).not.toContain('C:');
  });

  it('shows trigger phrases up to maxExamples, then how many more', () => {
    const cats = [category('A', ['one', undefined, null, 'four', 'five'])];
    const md3 = renderMarkdownReport(input(cats, [cluster('K', ['A'])]));
    expect(md3).toContain('1. "one"\n2. _(no trigger phrase recorded)_\n3. _(no trigger phrase recorded)_\n');
    expect(md3).not.toContain('"four"');
    expect(md3).toContain('_... and 2 more trigger phrases_');
    const md5 = renderMarkdownReport(input(cats, [cluster('K', ['A'])], { maxExamples: 5 }));
    expect(md5).toContain('5. "five"');
    expect(md5).not.toContain('more trigger');
    const md0 = renderMarkdownReport(input(cats, [cluster('K', ['A'])], { maxExamples: 0 }));
    expect(md0).not.toContain('*Trigger phrases:*');
    expect(md0).toContain('_... and 5 more trigger phrases_');
    const md4 = renderMarkdownReport(input(cats, [cluster('K', ['A'])], { maxExamples: 4 }));
    expect(md4).toContain('_... and 1 more trigger phrase_');
  });

  it('rejects a bad maxExamples', () => {
    expect(() => renderMarkdownReport(input([], [], { maxExamples: -1 }))).toThrow(RangeError);
    expect(() => renderMarkdownReport(input([], [], { maxExamples: 1.5 }))).toThrow(RangeError);
  });

  it('shows a justification only when it is not empty, and flags unknown members', () => {
    const md = renderMarkdownReport(input([category('A', [])], [cluster('K', ['A', 'Nope'], '')]));
    expect(md).not.toContain('Why it belongs here');
    expect(md).toContain('**A**: 0 perturbations\n');
    expect(md).toContain('**Nope**: 0 perturbations (not in the categorization)');
    expect(md).toContain('Cluster members that name no category');
  });

  it('covers the empty case', () => {
    const md = renderMarkdownReport(input([], []));
    expect(md).toContain('- Categories in the taxonomy: 0');
    expect(md).toContain('Every category is listed by at least one cluster.');
    expect(md).not.toContain('How this report was produced');
  });
});

describe('provenance', () => {
  it('renders what is given, and says clearly when the offline analyzer was used', () => {
    const md = renderMarkdownReport(
      input([], [], {
        provenance: {
          analysis: 'sample',
          generated_at: 'build 7',
          stages: [
            { stage: 'summarize', analyzer: 'offline', provider: 'offline', prompts: { summary: 'sha256:aa' } },
            { stage: 'cluster', provider: 'anthropic', model: 'claude-opus-4-5', settings: { temperature: 0, max_tokens: 64000, tags: ['x', 'y'] } },
          ],
          filters: { domain: 'all', baseline_filter: null },
          notes: ['re-run after prompt edit'],
        },
      }),
    );
    const gen = section(md, '## How this report was produced');
    expect(gen).toContain('- Analysis: sample');
    expect(gen).toContain('- Generated: build 7');
    expect(gen).toMatch(/> \*\*Offline analyzer:\*\* the summarize stage was produced by the deterministic lexical analyzer/);
    expect(gen).toContain('| summarize | offline | offline | - | summary: `sha256:aa` | - |');
    expect(gen).toContain('| cluster | - | anthropic | claude-opus-4-5 | - | temperature: 0<br>max\\_tokens: 64000<br>tags: x, y |');
    expect(gen).toContain('- domain: all');
    expect(gen).toContain('- baseline\\_filter: (none)');
    expect(gen).toContain('- re-run after prompt edit');
  });

  it('has no offline line when every stage used a model', () => {
    const md = renderMarkdownReport(input([], [], { provenance: { stages: [{ stage: 'cluster', provider: 'openai', model: 'gpt-5' }] } }));
    expect(md).not.toContain('Offline analyzer');
  });
});

describe('coverage of runs', () => {
  it('tabulates the stages with shares of the task list and lists failures', () => {
    const md = renderMarkdownReport(
      input([], [], {
        coverage: {
          in_task_list: 8,
          summarized: 7,
          categorized: 6,
          clustered: 5,
          failed: [
            { run_id: 'task1:abc', stage: 'summarize', reason: 'provider error 500' },
            { run_id: 'task2:def', stage: 'categorize', reason: 'invalid answer after 3 tries' },
          ],
          unassigned: [{ run_id: 'task3:ghi', reason: 'no category fits' }],
        },
      }),
    );
    const cov = section(md, '## Coverage of runs');
    expect(cov).toContain('| In the task list | 8 | 100.0% |');
    expect(cov).toContain('| Summarized | 7 | 87.5% |');
    expect(cov).toContain('| Categorized | 6 | 75.0% |');
    expect(cov).toContain('| In a cluster | 5 | 62.5% |');
    expect(cov).toContain('| Failed | 2 | 25.0% |');
    expect(cov).toContain('| Unassigned | 1 | 12.5% |');
    expect(cov).toContain('| `task2:def` | categorize | invalid answer after 3 tries |');
    expect(cov).toContain('| `task3:ghi` | - | no category fits |');
    expect(cov).not.toContain('Warning');
  });

  it('warns when runs are not accounted for', () => {
    const md = renderMarkdownReport(input([], [], { coverage: { in_task_list: 10, summarized: 10, categorized: 9, clustered: 8, failed: [] } }));
    expect(md).toContain('**Warning:** 2 runs of the task list are neither clustered nor listed as failed or unassigned.');
    expect(md).not.toContain('| Unassigned |');
    expect(md).not.toContain('Failed runs');
  });

  it('prints "-" shares for an empty task list', () => {
    const md = renderMarkdownReport(input([], [], { coverage: { in_task_list: 0, summarized: 0, categorized: 0, clustered: 0, failed: [] } }));
    expect(md).toContain('| In the task list | 0 | - |');
  });
});

describe('by agent', () => {
  it('summarises each agent and splits clusters per agent', () => {
    const md = renderMarkdownReport(
      input(
        [category('A', ['a', 'a', 'a']), category('B', ['b'])],
        [cluster('KA', ['A']), cluster('KB', ['B'])],
        {
          byAgent: {
            zeta: { runs: 3, categories: { A: 2, B: 1 } },
            alpha: { runs: 1, categories: { A: 1, B: 0 } },
            'no-detail': { runs: 4 },
          },
        },
      ),
    );
    const agents = section(md, '## By agent');
    expect(agents).toContain('| Agent | Runs | Perturbations | Categories |');
    // agents in code-point order
    expect(agents.indexOf('| alpha |')).toBeLessThan(agents.indexOf('| no-detail |'));
    expect(agents.indexOf('| no-detail |')).toBeLessThan(agents.indexOf('| zeta |'));
    expect(agents).toContain('| alpha | 1 | 1 | 1 |');
    expect(agents).toContain('| zeta | 3 | 3 | 2 |');
    expect(agents).toContain('| no-detail | 4 | - | - |');
    expect(agents).toContain('| Rank | Cluster | alpha | zeta |');
    expect(agents).toContain('| 1 | KA | 1 (100.0%) | 2 (66.7%) |');
    expect(agents).toContain('| 2 | KB | 0 (0.0%) | 1 (33.3%) |');
  });

  it('omits the section for an empty map', () => {
    expect(renderMarkdownReport(input([], [], { byAgent: {} }))).not.toContain('## By agent');
  });
});
