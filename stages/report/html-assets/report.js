// The run explorer of the HTML cluster report: builds the drill-down
// cluster -> category -> run from the JSON embedded in the page and filters it.
// Data only ever reaches the page through textContent and text nodes; the one
// attribute set from data is the run folder link, which the report generator
// has already reduced to a percent-encoded relative path or file:// URL.
//
// Also here: search hits marked with <mark> in the run cards (text nodes are
// split, never parsed), permalinks to a run (#run=<id>), and the sticky filter
// panel's height kept in --filters-h so that whatever is scrolled to in the
// explorer lands below the panel, not under it.
(() => {
  'use strict';

  const source = document.getElementById('report-data');
  const tree = document.getElementById('tree');
  if (!source || !tree) return;
  const D = JSON.parse(source.textContent || '{}');
  const groups = Array.isArray(D.groups) ? D.groups : [];
  const categories = Array.isArray(D.categories) ? D.categories : [];
  const runs = Array.isArray(D.runs) ? D.runs : [];
  const severities = new Map((D.severities || []).map((s) => [s.value, s]));
  const FACETS = ['domain', 'refinement_model', 'agent', 'severity'];
  const AUTO_OPEN_LIMIT = 30;
  // Longer strategy labels (some are whole sentences) get a row of their own.
  const LONG_CHIP = 48;

  const byId = (id) => document.getElementById(id);
  const controls = {
    form: byId('filters'),
    text: byId('filter-text'),
    status: byId('filter-status'),
    notice: byId('run-notice'),
    domain: byId('filter-domain'),
    refinement_model: byId('filter-refinement_model'),
    agent: byId('filter-agent'),
    severity: byId('filter-severity'),
  };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function plural(n, one, many) {
    return `${n} ${n === 1 ? one : many}`;
  }

  function runOf(example) {
    return example.run >= 0 && example.run < runs.length ? runs[example.run] : null;
  }

  // Lower-cased text each example is searched in.
  const haystacks = categories.map((c) =>
    c.examples.map((ex) => {
      const r = runOf(ex);
      const parts = [ex.id, ex.run_id, ex.trigger || '', ex.justification || ''];
      if (r) {
        parts.push(r.original, r.perturbed, r.summary, r.strategy || '', r.task_id, r.perturbed_id);
        parts.push(r.agent || '', r.domain || '', r.refinement_model || '', r.severity || '');
      }
      return parts.join('\n').toLowerCase();
    }),
  );
  let matches = categories.map((c) => c.examples.map(() => true));

  // ------------------------------------------------------------------ filter

  function readFilter() {
    const terms = controls.text ? controls.text.value.toLowerCase().split(/\s+/).filter(Boolean) : [];
    const facets = [];
    for (const key of FACETS) {
      const select = controls[key];
      if (!select || select.value === '') continue;
      const values = (D.facets && D.facets[key]) || [];
      const index = Number(select.value);
      if (Number.isInteger(index) && index >= 0 && index < values.length) facets.push([key, values[index]]);
    }
    return { terms, facets, active: terms.length > 0 || facets.length > 0 };
  }

  function exampleMatches(filter, ci, ei) {
    const ex = categories[ci].examples[ei];
    if (filter.facets.length) {
      const r = runOf(ex);
      if (!r) return false;
      for (const [key, value] of filter.facets) if (r[key] !== value) return false;
    }
    const hay = haystacks[ci][ei];
    return filter.terms.every((t) => hay.includes(t));
  }

  // ------------------------------------------------------------------ run cards

  function highlighted(text, ranges, tag, className, label) {
    const p = el('p');
    let pos = 0;
    for (const range of ranges || []) {
      const start = range[0];
      const end = range[1];
      if (!(start >= pos && end > start && end <= text.length)) continue;
      if (start > pos) p.append(document.createTextNode(text.slice(pos, start)));
      const mark = el(tag, className, text.slice(start, end));
      mark.title = label;
      p.append(mark);
      pos = end;
    }
    if (pos < text.length) p.append(document.createTextNode(text.slice(pos)));
    return p;
  }

  function chip(label, value, className) {
    const li = el('li', className ? `chip ${className}` : 'chip');
    if (label) {
      li.append(el('b', null, `${label} `));
    }
    li.append(document.createTextNode(value));
    return li;
  }

  function fact(list, term, content) {
    list.append(el('dt', null, term));
    const dd = el('dd');
    if (typeof content === 'string') dd.textContent = content;
    else dd.append(content);
    list.append(dd);
  }

  function runCard(ex) {
    const r = runOf(ex);
    const card = el('li', 'run');
    card.dataset.runId = ex.run_id;

    const head = el('div', 'run-head');
    head.append(el('code', 'run-id', ex.run_id));
    const chips = el('ul', 'chips');
    chips.setAttribute('aria-label', 'Run attributes');
    if (r) {
      const sev = severities.get(r.severity);
      const sevChip = chip('', r.severity === null ? 'severity not recorded' : `${r.severity} severity`, 'sev');
      if (sev) {
        sevChip.style.setProperty('--sev', sev.color);
        card.style.setProperty('--sev', sev.color);
        if (sev.light) sevChip.classList.add('light');
      }
      chips.append(sevChip);
      if (r.score !== null) chips.append(chip('score', String(r.score)));
      if (r.domain) chips.append(chip('domain', r.domain));
      if (r.agent) chips.append(chip('agent', r.agent));
      if (r.refinement_model) chips.append(chip('refined by', r.refinement_model));
      if (r.strategy && r.strategy.length <= LONG_CHIP) chips.append(chip('strategy', r.strategy));
    }
    head.append(chips);
    card.append(head);

    if (r) {
      const grid = el('div', 'instr-grid');
      const original = el('figure', 'instr');
      original.append(el('figcaption', null, 'Original instruction'));
      original.append(highlighted(r.original, r.removed, 'del', 'rem', 'removed or replaced in the perturbation'));
      const perturbed = el('figure', 'instr');
      perturbed.append(el('figcaption', null, 'Perturbed instruction'));
      perturbed.append(highlighted(r.perturbed, r.added, 'ins', 'add', 'added by the perturbation'));
      grid.append(original, perturbed);
      card.append(grid);
    } else {
      card.append(el('p', 'muted', 'This report has no record of the run behind this example.'));
    }

    const facts = el('dl', 'run-facts');
    if (ex.trigger !== null) {
      const wrap = el('span');
      wrap.append(el('q', 'trigger', ex.trigger));
      wrap.append(
        ex.verified
          ? el('span', 'badge ok', 'found in the perturbed instruction')
          : el('span', 'badge no', 'not found verbatim in the perturbed instruction'),
      );
      fact(facts, 'Trigger phrase', wrap);
    } else {
      fact(facts, 'Trigger phrase', el('span', 'muted', 'none recorded'));
    }
    if (ex.justification) fact(facts, 'Why this category', ex.justification);
    if (r && r.summary) fact(facts, 'What happened', r.summary);
    if (r && r.strategy && r.strategy.length > LONG_CHIP) fact(facts, 'Strategy', r.strategy);
    if (r) fact(facts, 'Task', `${r.task_id} \u00b7 perturbation ${r.perturbed_id}`);
    card.append(facts);

    const foot = el('p', 'run-foot');
    if (r && r.folder) {
      const folder = el('span');
      if (r.href) {
        const link = el('a', null, 'Open the run folder');
        link.href = r.href;
        link.title = r.folder;
        folder.append(link);
      } else {
        folder.append(document.createTextNode('Run folder: '), el('span', 'mono', r.folder));
      }
      foot.append(folder);
    }
    const permalink = el('a', 'permalink', 'Link to this run');
    permalink.href = runHash(ex.run_id);
    permalink.title = 'A link that opens this report at this run: copy it, or open it to put it in the address bar';
    foot.append(permalink);
    card.append(foot);
    return card;
  }

  // ------------------------------------------------------------------ search hits

  // Search terms are lower-cased like the haystacks; a hit is marked where the
  // lower-cased text holds a term. Lower-casing can change a string's length
  // (U+0130), so each code point is folded on its own and mapped back.
  let hitTerms = [];
  const NO_HITS = 'dt, figcaption, .badge, .chip b, .permalink, mark';

  function folded(text) {
    let lower = '';
    const from = [];
    let i = 0;
    for (const ch of text) {
      const low = ch.toLowerCase();
      for (let k = 0; k < low.length; k++) from.push(i);
      lower += low;
      i += ch.length;
    }
    from.push(text.length);
    return { lower, from };
  }

  function hitRanges(text, terms) {
    const { lower, from } = folded(text);
    const ranges = [];
    for (const term of terms) {
      for (let at = lower.indexOf(term); at >= 0; at = lower.indexOf(term, at + term.length)) {
        // A hit that ends inside a character's lower-case form takes the whole character.
        let end = at + term.length;
        while (end < lower.length && from[end] === from[end - 1]) end++;
        ranges.push([from[at], from[end]]);
      }
    }
    ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const merged = [];
    for (const range of ranges) {
      const last = merged[merged.length - 1];
      if (last && range[0] <= last[1]) last[1] = Math.max(last[1], range[1]);
      else merged.push(range);
    }
    return merged;
  }

  function markHits(root) {
    if (!hitTerms.length) return;
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT, {
      acceptNode(node) {
        if (node.nodeType === Node.TEXT_NODE) return NodeFilter.FILTER_ACCEPT;
        return node.hidden || node.matches(NO_HITS) ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_SKIP;
      },
    });
    const texts = [];
    for (let node = walker.nextNode(); node; node = walker.nextNode()) texts.push(node);
    for (const node of texts) {
      const text = node.nodeValue || '';
      const ranges = hitRanges(text, hitTerms);
      if (!ranges.length) continue;
      const parts = document.createDocumentFragment();
      let pos = 0;
      for (const [start, end] of ranges) {
        if (start > pos) parts.append(document.createTextNode(text.slice(pos, start)));
        parts.append(el('mark', 'hit', text.slice(start, end)));
        pos = end;
      }
      if (pos < text.length) parts.append(document.createTextNode(text.slice(pos)));
      node.replaceWith(parts);
    }
  }

  function clearHits() {
    const parents = new Set();
    for (const mark of tree.querySelectorAll('mark.hit')) {
      parents.add(mark.parentNode);
      mark.replaceWith(document.createTextNode(mark.textContent || ''));
    }
    for (const parent of parents) if (parent) parent.normalize();
  }

  // ------------------------------------------------------------------ tree

  const maxTotal = Math.max(
    1,
    ...groups.map((g) => g.members.reduce((n, m) => n + (m.cat >= 0 ? categories[m.cat].examples.length : 0), 0)),
  );

  function ensureRuns(view) {
    if (view.cards || view.cat < 0) return;
    view.cards = categories[view.cat].examples.map((ex) => runCard(ex));
    view.list.append(...view.cards);
    showCards(view);
    markHits(view.list);
  }

  function showCards(view) {
    if (!view.cards) return;
    const m = matches[view.cat];
    view.cards.forEach((card, i) => {
      card.hidden = !m[i];
    });
  }

  function summaryHead(details) {
    const summary = el('summary');
    const chev = el('span', 'chev');
    chev.setAttribute('aria-hidden', 'true');
    summary.append(chev);
    details.append(summary);
    return summary;
  }

  function labelled(label, text) {
    const p = el('p');
    p.append(el('span', 'label-inline', `${label}: `), document.createTextNode(text));
    return p;
  }

  function buildMember(group, m, mi) {
    const details = el('details', 'category');
    details.id = `${group.dom}-cat-${mi + 1}`;
    const summary = summaryHead(details);
    const name = el('span', 'cat-name', m.name);
    if (m.cat < 0) name.append(el('span', 'unknown', ' (not in the categorization)'));
    const count = el('span', 'count');
    summary.append(name, count);

    const body = el('div', 'cat-body');
    const category = m.cat >= 0 ? categories[m.cat] : null;
    if (category && category.definition) body.append(labelled('Definition', category.definition));
    if (m.justification) body.append(labelled('Why it is in this cluster', m.justification));
    const list = el('ol', 'runs');
    list.setAttribute('aria-label', `Runs in ${m.name}`);
    body.append(list);
    details.append(body);

    const view = { cat: m.cat, details, count, list, cards: null, total: category ? category.examples.length : 0 };
    details.addEventListener('toggle', () => {
      if (details.open) ensureRuns(view);
    });
    return view;
  }

  function buildGroup(group) {
    const details = el('details', 'cluster');
    details.id = group.dom;
    const summary = summaryHead(details);
    const rank = el('span', 'rank', group.rank === null ? '\u2013' : String(group.rank));
    rank.title = group.rank === null ? 'Not ranked' : `Rank ${group.rank}`;
    const main = el('span', 'sum-main');
    const title = el('span', 'sum-title', group.name);
    const sub = el('span', 'sum-sub');
    main.append(title, sub);
    const bar = el('span', 'sum-bar');
    bar.setAttribute('aria-hidden', 'true');
    const fill = el('span');
    bar.append(fill);
    summary.append(rank, main, bar);

    const body = el('div', 'cluster-body');
    if (group.definition) body.append(labelled('Definition', group.definition));
    if (group.anchors) body.append(labelled('Anchor phrases', group.anchors));
    const members = group.members.map((m, mi) => buildMember(group, m, mi));
    if (!members.length) body.append(el('p', 'muted', 'This cluster lists no categories.'));
    for (const v of members) body.append(v.details);
    details.append(body);
    tree.append(details);
    return { details, sub, fill, members, ranked: group.rank !== null };
  }

  const views = groups.map(buildGroup);
  const noMatch = el('p', 'no-match', 'No runs match these filters.');
  noMatch.hidden = true;
  tree.append(noMatch);
  if (!groups.length) {
    noMatch.textContent = 'This report has no clusters or categories.';
    noMatch.hidden = false;
  }

  // ------------------------------------------------------------------ apply

  const totalExamples = categories.reduce((n, c) => n + c.examples.length, 0);

  function apply() {
    const filter = readFilter();
    clearHits();
    hitTerms = filter.terms;
    matches = categories.map((c, ci) => c.examples.map((_, ei) => exampleMatches(filter, ci, ei)));
    const shown = matches.map((m) => m.filter(Boolean).length);
    const matched = shown.reduce((a, b) => a + b, 0);
    let visibleClusters = 0;
    let visibleOther = false;
    const visibleCats = new Set();

    for (const view of views) {
      let n = 0;
      let all = 0;
      let cats = 0;
      for (const mv of view.members) {
        const k = mv.cat >= 0 ? shown[mv.cat] : 0;
        n += k;
        all += mv.total;
        mv.count.textContent = filter.active ? `${k} of ${mv.total}` : plural(mv.total, 'run', 'runs');
        mv.count.title = filter.active ? `${k} of ${plural(mv.total, 'run', 'runs')} match` : plural(mv.total, 'run', 'runs');
        mv.details.hidden = filter.active && k === 0;
        if (!mv.details.hidden) {
          cats++;
          if (mv.cat >= 0) visibleCats.add(mv.cat);
        }
        showCards(mv);
      }
      view.details.hidden = filter.active && n === 0;
      if (!view.details.hidden) {
        if (view.ranked) visibleClusters++;
        else visibleOther = true;
      }
      const total = view.members.length;
      view.sub.textContent = filter.active
        ? `${n} of ${plural(all, 'run', 'runs')} match \u00b7 ${cats} of ${plural(total, 'category', 'categories')}`
        : `${plural(all, 'run', 'runs')} \u00b7 ${plural(total, 'category', 'categories')}`;
      view.fill.style.width = `${Math.round(((filter.active ? n : all) / maxTotal) * 1000) / 10}%`;
    }

    noMatch.hidden = !(filter.active && matched === 0);
    if (controls.status) {
      controls.status.textContent = '';
      if (filter.active) {
        controls.status.append(
          document.createTextNode('Showing '),
          el('strong', null, String(matched)),
          document.createTextNode(
            ` of ${plural(totalExamples, 'run', 'runs')} in ${plural(visibleCats.size, 'category', 'categories')}, ` +
              `${plural(visibleClusters, 'cluster', 'clusters')}${visibleOther ? ' and the categories in no cluster' : ''}.`,
          ),
        );
      } else {
        controls.status.append(
          el('strong', null, String(totalExamples)),
          document.createTextNode(
            ` ${totalExamples === 1 ? 'run' : 'runs'} in ${plural(categories.length, 'category', 'categories')} and ` +
              `${plural(groups.filter((g) => g.rank !== null).length, 'cluster', 'clusters')}. Open a cluster to drill down.`,
          ),
        );
      }
    }

    if (filter.active && matched > 0 && matched <= AUTO_OPEN_LIMIT) {
      for (const view of views) {
        if (view.details.hidden) continue;
        view.details.open = true;
        for (const mv of view.members) {
          if (mv.details.hidden || mv.cat < 0 || shown[mv.cat] === 0) continue;
          mv.details.open = true;
          ensureRuns(mv);
        }
      }
    }
    for (const view of views) for (const mv of view.members) if (mv.cards) markHits(mv.list);
  }

  // ------------------------------------------------------------------ wiring

  if (controls.form) {
    controls.form.addEventListener('submit', (ev) => ev.preventDefault());
    controls.form.addEventListener('reset', (ev) => {
      ev.preventDefault();
      if (controls.text) controls.text.value = '';
      for (const key of FACETS) if (controls[key]) controls[key].value = '';
      refilter();
    });
  }
  // A notice about a run link is done with once the reader changes the filters.
  function refilter() {
    notify([]);
    apply();
  }
  if (controls.text) controls.text.addEventListener('input', refilter);
  for (const key of FACETS) if (controls[key]) controls[key].addEventListener('change', refilter);

  function setAll(open) {
    for (const view of views) {
      if (view.details.hidden) continue;
      view.details.open = open;
      for (const mv of view.members) {
        if (mv.details.hidden) continue;
        mv.details.open = open;
        if (open) ensureRuns(mv);
      }
    }
  }
  const expand = byId('expand-all');
  const collapse = byId('collapse-all');
  if (expand) expand.addEventListener('click', () => setAll(true));
  if (collapse) collapse.addEventListener('click', () => setAll(false));

  // ------------------------------------------------------------------ sticky panel

  // The filter panel sticks to the top of the window (not on narrow screens):
  // its height goes to --filters-h, which the CSS gives the explorer's targets
  // as scroll-margin-top, so a cluster opened from the chart or a run opened by
  // its link is scrolled to just below the panel.
  function measurePanel() {
    const form = controls.form;
    const sticky = form && getComputedStyle(form).position === 'sticky';
    const height = sticky ? Math.ceil(form.getBoundingClientRect().height) : 0;
    document.documentElement.style.setProperty('--filters-h', `${height}px`);
  }
  measurePanel();
  if (controls.form && typeof ResizeObserver === 'function') new ResizeObserver(measurePanel).observe(controls.form, { box: 'border-box' });
  window.addEventListener('resize', measurePanel);

  // ------------------------------------------------------------------ permalinks

  const RUN_HASH = '#run=';

  function runHash(id) {
    return RUN_HASH + encodeURIComponent(id).replace(/%3A/gi, ':');
  }

  function decoded(text) {
    try {
      return decodeURIComponent(text);
    } catch {
      return null;
    }
  }

  function notify(parts) {
    if (!controls.notice) return;
    controls.notice.textContent = '';
    if (!parts.length) {
      controls.notice.hidden = true;
      return;
    }
    for (const part of parts) controls.notice.append(typeof part === 'string' ? document.createTextNode(part) : part);
    controls.notice.hidden = false;
  }

  // Where a run is in the tree: the first category (in tree order) that has it
  // as an example, or the one of the card whose link was followed.
  function findRun(id) {
    for (const view of views) {
      for (const mv of view.members) {
        if (mv.cat < 0) continue;
        const ei = categories[mv.cat].examples.findIndex((ex) => ex.run_id === id);
        if (ei >= 0) return { view, mv, ei };
      }
    }
    return null;
  }

  let followed = null;
  let targeted = null;

  function showRun(id) {
    let place = null;
    if (followed && followed.card.dataset.runId === id) place = followed.place;
    followed = null;
    if (!place) place = findRun(id);
    if (!place) {
      const known = runs.some((r) => r.run_id === id);
      notify([
        known ? 'The run ' : 'This report has no run ',
        el('code', null, id),
        known
          ? ' is in this report, but in no category, so the explorer does not show it.'
          : '. The link may belong to another report, or the run was left out of this one.',
      ]);
      if (controls.notice) controls.notice.scrollIntoView({ block: 'start' });
      return;
    }
    const cleared = !matches[place.mv.cat][place.ei];
    if (cleared) {
      if (controls.text) controls.text.value = '';
      for (const key of FACETS) if (controls[key]) controls[key].value = '';
      apply();
    }
    notify(cleared ? ['The filters were cleared to show the linked run.'] : []);
    place.view.details.open = true;
    place.mv.details.open = true;
    ensureRuns(place.mv);
    const card = place.mv.cards[place.ei];
    if (targeted) targeted.classList.remove('targeted');
    targeted = card;
    card.classList.add('targeted');
    card.tabIndex = -1;
    card.scrollIntoView({ block: 'start' });
    card.focus({ preventScroll: true });
  }

  function openTarget(id) {
    const target = id ? document.getElementById(id) : null;
    if (!target || !target.id.startsWith('cluster-')) return;
    for (let node = target; node; node = node.parentElement) {
      if (node.tagName === 'DETAILS') node.open = true;
    }
  }

  function route() {
    const hash = location.hash;
    if (hash.startsWith(RUN_HASH)) {
      const id = decoded(hash.slice(RUN_HASH.length));
      if (id === null) notify(['This link to a run is damaged: its run id cannot be read.']);
      else showRun(id);
      return;
    }
    notify([]);
    const id = decoded(hash.slice(1));
    if (id) openTarget(id);
  }

  document.addEventListener('click', (ev) => {
    const target = ev.target instanceof Element ? ev.target : null;
    const link = target ? target.closest('a[data-cluster]') : null;
    if (link) openTarget(`cluster-${link.getAttribute('data-cluster')}`);
    const permalink = target ? target.closest('a.permalink') : null;
    const card = permalink ? permalink.closest('.run') : null;
    if (card) {
      followed = null;
      for (const view of views) {
        for (const mv of view.members) {
          const ei = mv.cards ? mv.cards.indexOf(card) : -1;
          if (ei >= 0) followed = { card, place: { view, mv, ei } };
        }
      }
      // Following the link to the run already in the address bar fires no hashchange.
      if (location.hash === permalink.getAttribute('href')) {
        ev.preventDefault();
        showRun(card.dataset.runId || '');
      }
    }
  });
  window.addEventListener('hashchange', route);

  apply();
  if (location.hash) route();
})();
