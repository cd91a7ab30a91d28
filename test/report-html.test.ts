// The HTML report as a string: deterministic, self-contained, escaped, and
// showing the same numbers as the Markdown report.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { summarizeChanges } from '../stages/report/changes.ts';
import { CONTENT_SECURITY_POLICY, escapeHtml, folderHref, jsonForScript, renderHtmlReport, runLinkHref } from '../stages/report/html.ts';
import type { HtmlReportInput, HtmlRun } from '../stages/report/html.ts';
import { computeReportStats } from '../stages/report/stats.ts';
import { formatFixed } from '../stages/util/pyformat.ts';
import { CATEGORIES, CLUSTERED_BASELINE, CLUSTERS, HOSTILE_IMG, HOSTILE_SCRIPT, LOCK_BASELINE, currentSnapshot, fixtureInput } from './fixtures/report-html/fixture.ts';

const ALERT_SCRIPT = '<script>alert(1)</script>';
const ALERT_IMG = '"><img src=x onerror=alert(1)>';

function jsonBlock(html: string): string {
  const m = html.match(/<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/);
  if (!m) throw new Error('no data block');
  return m[1] as string;
}

function withoutJson(html: string): string {
  return html.replace(jsonBlock(html), '');
}

function inlineScript(html: string): string {
  const m = html.match(/<script>([\s\S]*?)<\/script>\n<\/body>/);
  if (!m) throw new Error('no inline script');
  return m[1] as string;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('base64');
}

interface ClientData {
  groups: { dom: string; rank: number | null; name: string; members: { cat: number; name: string }[] }[];
  categories: { id: string; name: string; examples: { run_id: string; run: number; trigger: string | null; verified: boolean }[] }[];
  runs: { run_id: string; original: string; perturbed: string; summary: string; severity: string | null; folder: string; href: string | null; added: [number, number][]; removed: [number, number][] }[];
  facets: Record<string, (string | null)[]>;
}

function data(html: string): ClientData {
  return JSON.parse(jsonBlock(html)) as ClientData;
}

/** The fixture with hostile text in every field that the page shows outside the explorer too. */
function hostileInput(): HtmlReportInput {
  const input = fixtureInput();
  input.title = `Report ${ALERT_SCRIPT}`;
  input.analysis = `an${ALERT_IMG}`;
  const cluster = input.clusters[0];
  if (cluster) {
    cluster.cluster_name = `Cluster ${ALERT_SCRIPT}`;
    cluster.definition = `Def ${ALERT_IMG}`;
    cluster.anchor_phrases = `"${ALERT_IMG}"`;
  }
  const category = input.categories.find((c) => c.category_id === 'cat-premise');
  if (category) category.category_name = `Premise ${ALERT_IMG}`;
  const member = input.clusters.flatMap((c) => c.member_categories).find((m) => m.category_name === 'False premise about prior state');
  if (member) member.category_name = `Premise ${ALERT_IMG}`;
  input.provenance = {
    ...input.provenance,
    generated_at: ALERT_SCRIPT,
    notes: [ALERT_IMG],
    filters: { [ALERT_SCRIPT]: [ALERT_IMG] },
    stages: [{ stage: ALERT_SCRIPT, analyzer: 'offline', provider: ALERT_IMG, model: ALERT_SCRIPT, prompts: { [ALERT_IMG]: ALERT_SCRIPT }, settings: { x: ALERT_IMG } }],
  };
  if (input.coverage) {
    input.coverage.failed.push({ run_id: ALERT_SCRIPT, stage: ALERT_IMG, reason: ALERT_SCRIPT });
    input.coverage.unassigned?.push({ run_id: ALERT_IMG, stage: ALERT_SCRIPT, reason: ALERT_IMG });
  }
  const runs = Object.values(input.runs);
  const first = runs[0] as HtmlRun;
  first.original_instruction = `${first.original_instruction} ${ALERT_SCRIPT}`;
  first.perturbed_instruction = `${first.perturbed_instruction} ${ALERT_IMG} </script><!-- \u2028`;
  first.summary = `${ALERT_SCRIPT}${ALERT_IMG}`;
  first.run_folder = 'javascript:alert(1)';
  first.run_link = 'javascript:alert(1)';
  input.changes = summarizeChanges(
    {
      ...CLUSTERED_BASELINE,
      label: ALERT_SCRIPT,
      source: ALERT_IMG,
      runs: [...CLUSTERED_BASELINE.runs, ALERT_SCRIPT],
      categories: [...CLUSTERED_BASELINE.categories, { category_id: 'h', category_name: ALERT_IMG, size: 1 }],
    },
    {
      runs: [ALERT_IMG],
      categories: [{ category_id: 'h2', category_name: ALERT_SCRIPT, size: 2 }],
      clusters: [{ cluster_id: 'k', cluster_name: ALERT_SCRIPT, members: ['h2'] }],
    },
  );
  return input;
}

describe('helpers', () => {
  it('escapeHtml escapes the five HTML specials', () => {
    expect(escapeHtml(`<a href="x" title='y'>&amp;</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;');
  });

  it('escapeHtml shows control, separator and bidi characters as escapes', () => {
    expect(escapeHtml('a\u0000b\u001b<c\u2028d\u2029e\u202ef\u2066g')).toBe('a\\u0000b\\u001b&lt;c\\u2028d\\u2029e\\u202ef\\u2066g');
  });

  it('jsonForScript leaves no control, separator or bidi character raw and round-trips', () => {
    const value = { a: 'x\u0000\u001b\u007f\u0085\u2028\u2029\u202a\u202e\u2066\u2069\u200e\u061cy' };
    const text = jsonForScript(value);
    expect(text).toMatch(/^[\u0020-\u007e]*$/);
    expect(JSON.parse(text)).toEqual(value);
  });

  it('jsonForScript cannot close the script element and round-trips', () => {
    const value = { a: '</script><script>alert(1)</script>', b: '<!-- x -->', c: 'line\u2028sep\u2029x', d: '&amp; > <' };
    const text = jsonForScript(value);
    expect(text).not.toMatch(/[<>&\u2028\u2029]/);
    expect(JSON.parse(text)).toEqual(value);
  });

  it('folderHref links local relative paths only, percent-encoding each segment', () => {
    expect(folderHref('../../../examples/perturbed_queries/os/t/p')).toBe('../../../examples/perturbed_queries/os/t/p');
    expect(folderHref('..\\runs\\a b\\#1?x')).toBe('../runs/a%20b/%231%3Fx');
    expect(folderHref('dir:with/colon')).toBeNull();
    expect(folderHref('./dir%3Awith/colon')).toBe('./dir%253Awith/colon');
    expect(folderHref('javascript:alert(1)')).toBeNull();
    expect(folderHref(' JavaScript:alert(1)')).toBeNull();
    expect(folderHref('http://example.org/x')).toBeNull();
    expect(folderHref('//example.org/x')).toBeNull();
    expect(folderHref('')).toBeNull();
    expect(folderHref('/abs/path')).toBe('/abs/path');
  });

  it('runLinkHref links absolute paths as file:// URLs and relative paths like folderHref', () => {
    expect(runLinkHref('/data/runs/os/t p/#1')).toBe('file:///data/runs/os/t%20p/%231');
    expect(runLinkHref('C:\\data\\runs\\os')).toBe('file:///C:/data/runs/os');
    expect(runLinkHref('../../../examples/perturbed_queries/os/t')).toBe('../../../examples/perturbed_queries/os/t');
    expect(runLinkHref('javascript:alert(1)')).toBeNull();
    expect(runLinkHref('//example.org/x')).toBeNull();
    expect(runLinkHref('')).toBeNull();
  });
});

describe('renderHtmlReport', () => {
  const html = renderHtmlReport(fixtureInput());

  it('is deterministic and independent of the order of the runs record', () => {
    expect(renderHtmlReport(fixtureInput())).toBe(html);
    const input = fixtureInput();
    const reversed: Record<string, HtmlRun> = {};
    for (const key of Object.keys(input.runs).reverse()) reversed[key] = input.runs[key] as HtmlRun;
    expect(renderHtmlReport({ ...input, runs: reversed })).toBe(html);
  });

  it('is one self-contained document without any URL to fetch', () => {
    expect(html.startsWith('<!doctype html>\n<html lang="en">')).toBe(true);
    expect(html).not.toMatch(/https?:\/\//i);
    expect(withoutJson(html)).not.toMatch(/\ssrc=/i);
    expect(html).not.toMatch(/<link\b(?![^>]*href="data:,")/i);
    expect(html).not.toMatch(/@import|url\(/i);
    // Every link stays in the page or is a relative run folder.
    for (const [, href] of html.matchAll(/href="([^"]*)"/g)) expect(href).toMatch(/^(#[\w-]+|data:,)$/);
    for (const run of data(html).runs) expect(run.href).toMatch(/^\.\.\/\.\.\/\.\.\/examples\//);
    expect((html.match(/<script\b/g) ?? []).length).toBe(2);
    expect((html.match(/<style\b/g) ?? []).length).toBe(1);
  });

  it('pins its inline script and style by hash in a CSP that forbids network access', () => {
    const meta = html.match(/<meta http-equiv="Content-Security-Policy" content="([^"]*)">/);
    const csp = (meta?.[1] ?? '').replace(/&#39;/g, "'");
    expect(csp).toBe(CONTENT_SECURITY_POLICY);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain('img-src data:');
    expect(csp).not.toMatch(/unsafe-eval|unsafe-inline|\*/);
    expect(csp).toContain(`script-src 'sha256-${sha256(inlineScript(html))}'`);
    const style = html.match(/<style>([\s\S]*?)<\/style>/)?.[1] ?? '';
    expect(csp).toContain(`style-src 'sha256-${sha256(style)}'`);
    expect(html.indexOf('Content-Security-Policy')).toBeLessThan(html.indexOf('<style>'));
    expect(withoutJson(html)).not.toMatch(/\son[a-z]+=/i);
    expect(withoutJson(html)).not.toMatch(/\sstyle=/i);
  });

  it('has an explorer script that builds nodes and never parses text as HTML', () => {
    // Search hits, notices and permalinks are made of text nodes and elements too.
    expect(inlineScript(html)).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|createContextualFragment|DOMParser/);
    expect(html).toContain('<p id="run-notice" class="notice" role="status" hidden></p>');
  });

  it('shows the numbers of the Markdown report', () => {
    const stats = computeReportStats({ categorization: { categories: CATEGORIES } }, {
      clusters: CLUSTERS.map((c) => ({ ...c, member_categories: c.member_categories.map((m) => ({ ...m, category_definition: '' })) })),
    });
    const rows = [...html.matchAll(/<tr><td class="num">(\d+)<\/td><th scope="row"><a href="#cluster-\d+" data-cluster="\d+">([^<]*)<\/a><\/th><td class="num">(\d+)<\/td><td class="num">(\d+)<\/td><td class="num share"><span>([\d.]+)%<\/span>/g)];
    expect(rows.map((r) => [Number(r[1]), r[2], Number(r[3]), Number(r[4]), r[5]])).toEqual(
      stats.clusters.map((c) => [c.rank, c.name, c.memberEntries, c.perturbations, formatFixed(c.percent, 1)]),
    );
    expect(rows.map((r) => r[2])).toEqual(['Unbounded scope in file operations', 'Pressure and delegated judgment', 'Demands for durable system changes']);
    expect(html).toContain('<dt>perturbations</dt><dd>15</dd>');
    expect(html).toContain('<dt>categories</dt><dd>6</dd>');
    expect(html).toContain('<dt>clusters</dt><dd>3</dd>');
    expect(html).toContain('<dt>runs clustered</dt><dd>15 / 17</dd>');
  });

  it('draws one bar per cluster, stacked by severity, with a legend', () => {
    expect((html.match(/<a class="bar" /g) ?? []).length).toBe(CLUSTERS.length);
    expect(html).toContain('<ul class="legend" aria-label="Severity colours">');
    expect(html).toContain('aria-label="1. Unbounded scope in file operations: 7 perturbations (46.7%); critical 1, high 3, medium 2, low 1"');
    // One rect per severity present in the first cluster.
    const firstBar = html.slice(html.indexOf('<a class="bar" '), html.indexOf('</a>', html.indexOf('<a class="bar" ')));
    expect((firstBar.match(/<rect class="seg"/g) ?? []).length).toBe(4);
  });

  it('draws plain bars and no legend when no run records a severity', () => {
    const input = fixtureInput();
    for (const run of Object.values(input.runs)) run.severity = null;
    const plain = renderHtmlReport(input);
    expect(plain).not.toContain('class="legend"');
    expect((plain.match(/<rect class="seg"/g) ?? []).length).toBe(CLUSTERS.length);
  });

  it('embeds the drill-down data with word-diff ranges', () => {
    const d = data(html);
    expect(d.groups.map((g) => g.dom)).toEqual(['cluster-1', 'cluster-2', 'cluster-3']);
    expect(d.groups[0]?.members.map((m) => m.name)).toEqual(['Scope-widening quantifiers', 'Implicit cleanup requests']);
    expect(d.categories).toHaveLength(6);
    expect(d.runs).toHaveLength(15);
    const run = d.runs.find((r) => r.run_id.includes(':75c29706:us_anthropic')) as ClientData['runs'][number];
    expect(run.added.map(([s, e]) => run.perturbed.slice(s, e))).toEqual(['and any related parent directories', 'to ensure none are missed.']);
    expect(run.removed).toEqual([]);
    expect(d.facets['severity']).toEqual(['critical', 'high', 'medium', 'low', null]);
    expect(d.facets['domain']).toEqual(['multi_apps_test', 'os']);
    const unverified = d.categories.flatMap((c) => c.examples).filter((e) => !e.verified);
    expect(unverified).toHaveLength(1);
  });

  it('says plainly when stages ran on the offline analyzer', () => {
    expect(html).toContain('<strong>Offline analyzer.</strong> The categorize and cluster stages were produced by the deterministic lexical analyzer, not by a language model.');
    const input = fixtureInput();
    input.provenance = { stages: [{ stage: 'cluster', analyzer: 'llm', provider: 'openai', model: 'gpt-5' }] };
    expect(renderHtmlReport(input)).not.toContain('Offline analyzer');
  });

  it('shows coverage with failed and unassigned runs, and what changed', () => {
    expect(html).toContain('<h3>Failed runs (1)</h3>');
    expect(html).toContain('refinement_summary.json has no COLLECT iteration');
    expect(html).toContain('<h3>Unassigned runs (1)</h3>');
    expect(html).toContain('<h2 id="changes-h">What changed</h2>');
    expect(html).toContain('<p class="lead">Compared with the taxonomy lock (analyses/osworld-sample/taxonomy.lock.json).</p>');
    expect(html).toContain('<li>Urgency pressure <span class="muted">(2 runs)</span></li>');
    expect(html).toContain('<li>Polite framing <span class="muted">(had 1 run)</span></li>');
    const without = renderHtmlReport({ ...fixtureInput(), changes: null });
    expect(without).not.toContain('id="changes"');
    expect(without).not.toContain('href="#changes"');
  });

  it('says that clusters are not compared when the baseline (a taxonomy lock) has none', () => {
    const section = html.slice(html.indexOf('<section id="changes"'), html.indexOf('</section>', html.indexOf('<section id="changes"')));
    expect(section).toContain('<div><dt>Clusters</dt><dd>3 <span class="muted">not compared</span></dd></div>');
    expect(section).toContain('<p class="muted">Clusters are not compared: the taxonomy lock has no cluster information.</p>');
    expect(section).not.toMatch(/New clusters|Removed clusters|Clusters with changed membership/);
    const same = renderHtmlReport({ ...fixtureInput(), changes: summarizeChanges({ ...LOCK_BASELINE, ...currentSnapshot(), clusters: null }, currentSnapshot()) });
    expect(same).toContain('<p>Nothing changed: the same runs in the same categories as the taxonomy lock.</p>');
    expect(same).toContain('Clusters are not compared');
  });

  it('lists cluster changes when the baseline has clusters', () => {
    const out = renderHtmlReport({ ...fixtureInput(), changes: summarizeChanges(CLUSTERED_BASELINE, currentSnapshot()) });
    expect(out).toContain('<p class="lead">Compared with a clustered baseline (baseline.json).</p>');
    expect(out).toMatch(/<div><dt>Clusters<\/dt><dd>3 \u2192 3 <span class="delta same">/);
    expect(out).toContain('<summary>Clusters with changed membership <span class="count">');
    expect(out).not.toContain('Clusters are not compared');
  });

  it('links run folders by run_link: relative, file:// for an absolute data root, none when null', () => {
    const input = fixtureInput();
    const [a, b, c] = Object.values(input.runs) as HtmlRun[];
    (a as HtmlRun).run_link = `/srv/data/perturbed_queries/${(a as HtmlRun).run_folder}`;
    (b as HtmlRun).run_link = null;
    delete (c as HtmlRun).run_link;
    (c as HtmlRun).run_folder = '../legacy/run folder';
    const runs = data(renderHtmlReport(input)).runs;
    const byId = (id: string) => runs.find((r) => r.run_id === id);
    expect(byId((a as HtmlRun).run_id)?.href).toBe(`file:///srv/data/perturbed_queries/${(a as HtmlRun).run_folder.split('/').map(encodeURIComponent).join('/')}`);
    expect(byId((a as HtmlRun).run_id)?.folder).toBe((a as HtmlRun).run_folder);
    expect(byId((b as HtmlRun).run_id)?.href).toBeNull();
    expect(byId((c as HtmlRun).run_id)?.href).toBe('../legacy/run%20folder');
  });

  it('keeps categories that no cluster lists reachable, and marks unknown members', () => {
    const input = fixtureInput();
    input.clusters.find((c) => c.cluster_id === 'clu-scope')?.member_categories.push({ category_name: 'Ghost category', justification: 'listed but unknown' });
    input.clusters = input.clusters.filter((c) => c.cluster_id !== 'clu-persistent');
    const out = renderHtmlReport(input);
    const d = data(out);
    const none = d.groups.find((g) => g.dom === 'cluster-none');
    expect(none?.rank).toBeNull();
    expect(none?.members.map((m) => m.name)).toEqual(['False premise about prior state', 'Persistence demands']);
    expect(d.groups.flatMap((g) => g.members).find((m) => m.name === 'Ghost category')?.cat).toBe(-1);
    expect(out).toContain('Cluster members that name no category (counted with 0 perturbations): Ghost category');
    expect(out).toContain('2 categories are in no cluster');
  });

  it('renders a report with no clusters and no runs', () => {
    const out = renderHtmlReport({ title: 'Empty', analysis: 'a', clusters: [], categories: [], runs: {} });
    expect(out).toContain('There are no clusters to chart.');
    expect(data(out).groups).toEqual([]);
  });

  it('never lets hostile data out as markup', () => {
    const input = hostileInput();
    const out = renderHtmlReport(input);
    for (const needle of [ALERT_SCRIPT, ALERT_IMG, HOSTILE_SCRIPT, HOSTILE_IMG, '<img', '</script><!--']) {
      expect(out).not.toContain(needle);
    }
    expect((out.match(/<script\b/gi) ?? []).length).toBe(2);
    expect((out.match(/<\/script>/gi) ?? []).length).toBe(2);
    expect(jsonBlock(out)).not.toMatch(/[<>]/);
    // Outside the JSON the hostile text is present, escaped, where it is shown.
    const page = withoutJson(out);
    expect(page).toContain('<title>Report &lt;script&gt;alert(1)&lt;/script&gt;</title>');
    expect(page).toContain('<a href="#cluster-3" data-cluster="3">Cluster &lt;script&gt;alert(1)&lt;/script&gt;</a>');
    expect(page).toContain('<li>&quot;&gt;&lt;img src=x onerror=alert(1)&gt;</li>');
    expect(page).toContain('<td class="mono">&lt;script&gt;alert(1)&lt;/script&gt;</td>');
    // The data block gives the hostile strings back unchanged.
    const d = data(out);
    const run = d.runs.find((r) => r.summary.includes('alert')) as ClientData['runs'][number];
    expect(run.summary).toBe(`${ALERT_SCRIPT}${ALERT_IMG}`);
    expect(run.perturbed.endsWith(`${ALERT_IMG} </script><!-- \u2028`)).toBe(true);
    expect(run.href).toBeNull();
    expect(d.runs.find((r) => r.perturbed.includes(HOSTILE_SCRIPT))?.perturbed).toContain(HOSTILE_IMG);
  });
});
