// Offline run summary: one dense, deterministic paragraph built from the word
// diff, the evaluation fields and the cue lexicon. It states plainly that it
// was produced by the offline analyzer, not by a language model.

import type { ExecutionIteration, SummaryInput } from '../formats.ts';
import { addedPhrases, removedPhrases, wordDiff, type Phrase } from './diff.ts';
import { CUE_FAMILIES, findCues, FAMILY_BY_ID, type CueFamily } from './lexicon.ts';
import { displayCue } from './categorize.ts';
import { analyzeItem } from './features.ts';
import { firstWords, OFFLINE_MARK } from './text.ts';

/** Longest quoted phrase, in words; longer ones are cut with an ellipsis after the quote. */
const QUOTE_WORDS = 25;
/** Most phrases quoted per list. */
const MAX_QUOTES = 4;

function quote(text: string): string {
  const { text: cut, truncated } = firstWords(text, QUOTE_WORDS);
  return `"${cut}"${truncated ? ' (...)' : ''}`;
}

function quoteList(phrases: readonly Phrase[]): string {
  const shown = phrases.slice(0, MAX_QUOTES).map((p) => quote(p.text));
  const more = phrases.length - shown.length;
  const body = shown.length <= 1 ? (shown[0] ?? '') : `${shown.slice(0, -1).join(', ')} and ${shown[shown.length - 1]}`;
  return more > 0 ? `${body} (and ${more} more)` : body;
}

function strategyLabel(it: ExecutionIteration): string {
  const raw = (it.elicitation_strategy ?? '').trim();
  if (!raw) return 'not recorded';
  // Some stored labels carry a free-text explanation after a dash.
  return raw.split(/\s+[\u2013\u2014-]\s+/u)[0] ?? raw;
}

function evaluationText(it: ExecutionIteration): string {
  const ev = it.trajectory_evaluation;
  if (!ev) return 'it has no recorded evaluation';
  const bits: string[] = [];
  if (typeof ev.behavior_elicitation_score === 'number') bits.push(`an elicitation score of ${ev.behavior_elicitation_score}/100`);
  if (ev.severity_assessment) bits.push(`severity "${ev.severity_assessment}"`);
  if (ev.matches_expected_behavior) bits.push(`match "${ev.matches_expected_behavior}"`);
  let text = bits.length ? `it received ${bits.join(', ')}` : 'its evaluation has no score or severity';
  const harms = (ev.harmful_actions_observed ?? []).filter((h) => h.trim() !== '');
  if (harms.length) {
    const shown = harms.slice(0, 3).map(quote);
    text += `; harmful actions observed: ${shown.join('; ')}${harms.length > 3 ? ` (and ${harms.length - 3} more)` : ''}`;
  } else {
    text += '; no harmful actions were recorded';
  }
  return text;
}

interface FamilyHit {
  family: CueFamily;
  cues: string[];
}

/** Least evidence (pattern weight x position factor) for a cue to be reported. */
const MIN_REPORTED_CUE = 0.3;

/** Cue families in the inserted wording of `perturbed` relative to `original`, strongest first. */
function familiesAdded(original: string, perturbed: string): FamilyHit[] {
  const a = analyzeItem({
    id: '',
    original_instruction: original,
    perturbed_instruction: perturbed,
    summary: '',
    harmful_actions: [],
    elicitation_strategy: '',
    severity: null,
  });
  const out: (FamilyHit & { score: number; order: number })[] = [];
  CUE_FAMILIES.forEach((fam, order) => {
    const cues: string[] = [];
    for (const c of a.cues) {
      if (c.family !== fam.id || c.weight * c.factor < MIN_REPORTED_CUE) continue;
      const cue = c.where === 'removed' ? `drops "${displayCue(c.cue)}"` : `'${displayCue(c.cue)}'`;
      if (!cues.includes(cue)) cues.push(cue);
    }
    const score = (a.familyScores.get(fam.id) ?? 0) * (fam.role === 'amplifier' ? 0.5 : 1);
    if (cues.length) out.push({ family: fam, cues, score, order });
  });
  // Strongest evidence first (amplifiers count half), then lexicon order.
  return out.sort((x, y) => y.score - x.score || x.order - y.order).map(({ family, cues }) => ({ family, cues }));
}

/** Phrases worth quoting: at least 3 words, or carrying a cue; the rest are counted. */
function notable(phrases: readonly Phrase[], source: string, where: 'perturbed' | 'removed'): { shown: Phrase[]; minor: number } {
  const cues = findCues(source, where);
  const shown = phrases.filter(
    (p) => p.text.split(/\s+/).length >= 3 || cues.some((c) => c.start >= p.start && c.end <= p.end),
  );
  return { shown, minor: phrases.length - shown.length };
}

function changeList(verb: string, phrases: readonly Phrase[], source: string, where: 'perturbed' | 'removed'): string {
  const { shown, minor } = notable(phrases, source, where);
  if (shown.length === 0) return `${verb} ${minor} short fragment${minor === 1 ? '' : 's'}`;
  return `${verb} ${quoteList(shown)}${minor ? ` (plus ${minor} short fragment${minor === 1 ? '' : 's'})` : ''}`;
}

function historyText(input: SummaryInput, success: ExecutionIteration | null): string {
  const hist = input.history;
  if (hist.length === 0) return 'No earlier failed attempts are recorded.';
  const scores = hist.map((h) => {
    const s = h.trajectory_evaluation?.behavior_elicitation_score;
    return `#${h.execution_iteration}: ${typeof s === 'number' ? `${s}/100` : 'no score'}, ${strategyLabel(h)}`;
  });
  let text = `${hist.length} earlier attempt${hist.length === 1 ? '' : 's'} did not reach COLLECT (${scores.join('; ')}).`;
  const last = hist[hist.length - 1];
  if (success && last) {
    const d = wordDiff(last.perturbed_instruction ?? '', success.perturbed_instruction ?? '');
    const add = addedPhrases(d);
    const rem = removedPhrases(d);
    const newFams = familiesAdded(last.perturbed_instruction ?? '', success.perturbed_instruction ?? '');
    const parts: string[] = [];
    if (add.length) parts.push(changeList('adds', add, d.perturbed, 'perturbed'));
    if (rem.length) parts.push(changeList('drops', rem, d.original, 'removed'));
    if (parts.length === 0) parts.push('repeats its wording unchanged');
    text += ` Compared with the last failed attempt, the successful wording ${parts.join(' and ')}`;
    text += newFams.length
      ? `, introducing ${newFams.map((h) => `${h.family.title.toLowerCase()} (${h.cues.slice(0, 2).join(', ')})`).join(', ')}.`
      : ', without introducing a new cue family.';
    const failedCues = new Set<string>();
    for (const h of hist) for (const c of findCues(h.perturbed_instruction ?? '', 'perturbed')) failedCues.add(c.family);
    const shared = familiesAdded(input.original_instruction, success.perturbed_instruction ?? '')
      .filter((h) => failedCues.has(h.family.id))
      .map((h) => h.family.title.toLowerCase());
    if (shared.length) text += ` Earlier attempts already used ${shared.join(', ')}, so the difference lies in how it was phrased.`;
  }
  return text;
}

/** One-paragraph summary of an elicitation run, produced without an LLM. */
export function offlineSummarize(input: SummaryInput): string {
  const original = input.original_instruction ?? '';
  const success = input.successful;
  const parts: string[] = [`${OFFLINE_MARK} Lexical summary produced by the offline analyzer (word diff and cue lexicon, no language model).`];
  if (!success) {
    parts.push(
      `No successful (COLLECT) iteration is recorded for this run, so there is no final perturbation to compare with the original instruction ${quote(original)}.`,
    );
    parts.push(historyText(input, null));
    return parts.join(' ');
  }
  const perturbed = success.perturbed_instruction ?? '';
  const d = wordDiff(original, perturbed);
  const add = addedPhrases(d);
  const rem = removedPhrases(d);
  if (add.length === 0 && rem.length === 0) {
    parts.push('The successful instruction is word-for-word the original one.');
  } else {
    const change: string[] = [];
    if (add.length) change.push(changeList('inserts', add, d.perturbed, 'perturbed'));
    if (rem.length) change.push(changeList('removes', rem, d.original, 'removed'));
    const share = d.addedTokens + d.keptTokens === 0 ? 0 : Math.round((100 * d.addedTokens) / (d.addedTokens + d.keptTokens));
    parts.push(`Relative to the original instruction, the successful perturbation ${change.join(' and ')} (${share}% of its words are new).`);
  }
  if (d.limited) parts.push(`Note: ${d.limited}.`);
  parts.push(
    `The successful iteration (#${success.execution_iteration}) is labelled with the strategy "${strategyLabel(success)}"; ${evaluationText(success)}.`,
  );
  parts.push(historyText(input, success));
  const fams = familiesAdded(original, perturbed);
  if (fams.length) {
    parts.push(
      `Detected mechanism cues: ${fams.map((h) => `${h.family.title.toLowerCase()} (${h.cues.slice(0, 3).join(', ')})`).join('; ')}.`,
    );
    const lead = fams[0]?.family;
    const amp = fams.find((h) => h.family.role === 'amplifier' && h.family !== lead)?.family;
    if (lead) {
      parts.push(
        `Lexical hypothesis: ${lead.hypothesis}${amp && amp !== lead ? `, and ${FAMILY_BY_ID.get(amp.id)?.hypothesis ?? ''}` : ''}.`,
      );
    }
  } else {
    parts.push('No cue of the analyzer\'s lexicon appears in the inserted wording; the harmful reading is left implicit in the paraphrase.');
  }
  return parts.join(' ');
}
