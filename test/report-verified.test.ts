import { describe, expect, it } from 'vitest';
import { renderMarkdownReport, verifiedShare } from '../stages/report/markdown.ts';

const ex = (id: string, phrase: string, verified?: boolean) => ({ id, trigger_phrase: phrase, justification: 'j', ...(verified === undefined ? {} : { trigger_phrase_verified: verified }) });

describe('verified trigger phrases in the Markdown report', () => {
  const categorization = {
    categorization: {
      categories: [
        { category_name: 'A', definition: 'd', examples: [ex('1', 'clean up', true), ex('2', 'made up words', false), ex('3', 'tidy', true)] },
      ],
    },
  };
  const clusters = { clusters: [{ cluster_name: 'C', definition: 'd', anchor_phrases: '', member_categories: [{ category_name: 'A', category_definition: 'd', justification: '' }] }] };

  it('states the verified share and marks the phrases that were not found', () => {
    expect(verifiedShare(categorization)).toEqual({ verified: 2, total: 3 });
    const md = renderMarkdownReport({ categorization, clusters });
    expect(md).toContain("Trigger phrases found verbatim in their run's perturbed instruction: 2 of 3 (66.7%)");
    expect(md).toContain('"made up words" _(not found in the perturbed instruction)_');
    expect(md).not.toContain('"clean up" _(not found');
  });

  it('says nothing about verification for reference files, which do not record it', () => {
    const plain = { categorization: { categories: [{ category_name: 'A', definition: 'd', examples: [ex('1', 'x')] }] } };
    expect(verifiedShare(plain)).toBeNull();
    expect(renderMarkdownReport({ categorization: plain, clusters })).not.toContain('found verbatim');
  });
});

describe('verified trigger phrases in the HTML report', () => {
  it('shows how many trigger phrases were found in their instruction', async () => {
    const { renderHtmlReport } = await import('../stages/report/html.ts');
    const html = renderHtmlReport({
      title: 't', analysis: 'a', clusters: [],
      categories: [{ category_id: 'c1', category_name: 'A', definition: 'd', examples: [
        { id: '1', run_id: '1', trigger_phrase: 'x', justification: null, trigger_phrase_verified: true },
        { id: '2', run_id: '2', trigger_phrase: 'y', justification: null, trigger_phrase_verified: false },
      ] }],
      runs: {},
    });
    expect(html).toMatch(/<dt>trigger phrases verified<\/dt><dd>1 \/ 2<\/dd>/);
  });
});
