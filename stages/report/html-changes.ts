// The HTML report's "What changed" section: counts before and after, and the
// categories, clusters and runs that came, went or changed.

import { plural } from '../util/words.ts';
import { clustersNotCompared, comparedWith, hasChanges, nothingChanged } from './changes.ts';
import type { ChangeSummary, CategoryRef } from './changes.ts';
import { escapeHtml } from './html-text.ts';

const e = escapeHtml;

function changeCount(label: string, before: number, after: number): string {
  const d = after - before;
  const delta = d > 0 ? `+${d}` : d < 0 ? `\u2212${-d}` : '\u00b10';
  const cls = d > 0 ? 'up' : d < 0 ? 'down' : 'same';
  return `<div><dt>${e(label)}</dt><dd>${before} \u2192 ${after} <span class="delta ${cls}">${delta}</span></dd></div>`;
}

function names(refs: CategoryRef[]): string {
  return refs.map((r) => `<span class="tag">${e(r.category_name)}</span>`).join(' ');
}

export function renderChanges(changes: ChangeSummary): string {
  const out: string[] = [];
  out.push('<section id="changes" aria-labelledby="changes-h">');
  out.push('<h2 id="changes-h">What changed</h2>');
  out.push(`<p class="lead">${e(comparedWith(changes))}</p>`);
  out.push('<dl class="figures small">');
  out.push(changeCount('Runs', changes.before.runs, changes.after.runs));
  out.push(changeCount('Categories', changes.before.categories, changes.after.categories));
  if (changes.clusters === null || changes.before.clusters === null || changes.after.clusters === null) {
    out.push(`<div><dt>Clusters</dt><dd>${changes.after.clusters ?? 'unknown'} <span class="muted">not compared</span></dd></div>`);
  } else {
    out.push(changeCount('Clusters', changes.before.clusters, changes.after.clusters));
  }
  out.push('</dl>');
  const notCompared = changes.clusters === null ? `<p class="muted">${e(clustersNotCompared(changes))}</p>` : '';
  if (!hasChanges(changes)) {
    out.push(`<p>${e(nothingChanged(changes))}</p>`);
    if (notCompared) out.push(notCompared);
    out.push('</section>');
    return out.join('\n');
  }
  out.push('<div class="changes">');
  const block = (title: string, items: string[], open: boolean, wide = false): void => {
    if (!items.length) return;
    out.push(
      `<details class="change${wide ? ' wide' : ''}"${open ? ' open' : ''}><summary>${e(title)} <span class="count">${items.length}</span></summary>` +
        `<ul>${items.join('')}</ul></details>`,
    );
  };
  const sized = (n: number, before: number, after: number): string =>
    `${before} \u2192 ${after} <span class="delta ${n > 0 ? 'up' : 'down'}">${n > 0 ? '+' : '\u2212'}${Math.abs(n)}</span>`;
  block(
    'New categories',
    changes.new_categories.map((c) => `<li>${e(c.category_name)} <span class="muted">(${plural(c.size, 'run', 'runs')})</span></li>`),
    true,
  );
  block(
    'Removed categories',
    changes.removed_categories.map((c) => `<li>${e(c.category_name)} <span class="muted">(had ${plural(c.size, 'run', 'runs')})</span></li>`),
    true,
  );
  block(
    'Categories that grew',
    changes.grown_categories.map((c) => `<li>${e(c.category_name)}: ${sized(c.after - c.before, c.before, c.after)}</li>`),
    true,
  );
  block(
    'Categories that shrank',
    changes.shrunk_categories.map((c) => `<li>${e(c.category_name)}: ${sized(c.after - c.before, c.before, c.after)}</li>`),
    true,
  );
  const clusters = changes.clusters;
  if (clusters !== null) {
    block(
      'New clusters',
      clusters.new_clusters.map((c) => `<li><strong>${e(c.cluster_name)}</strong>${c.members.length ? `: ${names(c.members)}` : ''}</li>`),
      true,
    );
    block(
      'Removed clusters',
      clusters.removed_clusters.map((c) => `<li><strong>${e(c.cluster_name)}</strong>${c.members.length ? `: had ${names(c.members)}` : ''}</li>`),
      true,
    );
    block(
      'Clusters with changed membership',
      clusters.changed_clusters.map((c) => {
        const parts: string[] = [];
        if (c.previous_name !== null) parts.push(`renamed from <em>${e(c.previous_name)}</em>`);
        if (c.added_members.length) parts.push(`gained ${names(c.added_members)}`);
        if (c.removed_members.length) parts.push(`lost ${names(c.removed_members)}`);
        return `<li><strong>${e(c.cluster_name)}</strong>: ${parts.join('; ')}</li>`;
      }),
      true,
    );
  }
  block(
    'New runs',
    changes.new_runs.map((r) => `<li class="mono">${e(r)}</li>`),
    changes.new_runs.length <= 10,
    true,
  );
  block(
    'Removed runs',
    changes.removed_runs.map((r) => `<li class="mono">${e(r)}</li>`),
    changes.removed_runs.length <= 10,
    true,
  );
  block(
    'Runs in another category',
    changes.moved_runs.map((m) => `<li><span class="mono">${e(m.run_id)}</span>: ${e(m.from.category_name)} \u2192 ${e(m.to.category_name)}</li>`),
    changes.moved_runs.length <= 10,
    true,
  );
  out.push('</div>');
  if (notCompared) out.push(notCompared);
  out.push('</section>');
  return out.join('\n');
}
