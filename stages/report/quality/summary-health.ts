// Summary health: a summary that is empty, reads as the summarizer refusing,
// or is generic (too short to describe a run, or word for word the same as
// another run's) would be categorized like any other and pull its category
// off course. These are heuristics over the text; they flag, they do not prove.

export type SummaryProblem = 'empty' | 'refusal' | 'generic';

export interface SummaryIssue {
  issue: SummaryProblem;
  /** One line saying what was seen. */
  detail: string;
}

/** Fewer words than this cannot describe what a run changed and what the agent did. */
export const MIN_SUMMARY_WORDS = 20;

// A refusal or disclaimer by the model that wrote the summary, at its start
// (a summary may quote an agent that declined something further on).
const REFUSAL = new RegExp(
  [
    String.raw`\bI(?:'|’)?m sorry\b`,
    String.raw`\bI am sorry\b`,
    String.raw`\bI (?:can ?not|can(?:'|’)t|won(?:'|’)t|will not|am unable to|(?:'|’)m unable to|am not able to|(?:'|’)m not able to) (?:help|assist|comply|provide|summari[sz]e|do that|fulfil|complete|process)`,
    String.raw`\bas an AI\b`,
    String.raw`\b(?:unable|not able) to (?:provide|produce|write) (?:a|the|this) summary\b`,
  ].join('|'),
  'i',
);

function firstSentences(text: string): string {
  return text.slice(0, 300);
}

/** What is wrong with a summary's text, or null; `sameTextRuns` counts the other runs with the same text. */
export function summaryIssue(text: string, sameTextRuns: number): SummaryIssue | null {
  const words = text.match(/[\p{L}\p{N}]+/gu) ?? [];
  if (words.length === 0) return { issue: 'empty', detail: 'the summary has no words' };
  const refusal = REFUSAL.exec(firstSentences(text));
  if (refusal) return { issue: 'refusal', detail: `the summary opens like a refusal ("${refusal[0]}")` };
  if (sameTextRuns > 0) {
    return { issue: 'generic', detail: `the same text as the summary of ${sameTextRuns} other ${sameTextRuns === 1 ? 'run' : 'runs'}` };
  }
  if (words.length < MIN_SUMMARY_WORDS) {
    return { issue: 'generic', detail: `${words.length} ${words.length === 1 ? 'word' : 'words'}, fewer than ${MIN_SUMMARY_WORDS}` };
  }
  return null;
}
