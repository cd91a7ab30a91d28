// Per-run details for the HTML drill-down, from the summaries (read through
// summarize/summaries.ts; a run with none, failed in the summarize index,
// still appears, with empty texts) and the evaluations summarize recorded.
// `run_folder` is relative to the data root and `run_link` comes from the
// configuration (`linkOf`): neither depends on where the workspace lives.
//
// The texts are most of what the report holds: at 100,000 runs about 150 MB,
// more as strings (a text with one character beyond Latin-1 takes two bytes a
// character), and all of it in the heap the garbage collector lets grow by
// half again before it collects. The stage keeps them as bytes outside the
// heap (TextPacker), decoded each time a text is read.
import { evaluationOf } from '../summarize/run-data.ts';
import type { EvaluationsFile } from '../summarize/run-data.ts';
import type { SummaryFile } from '../summarize/format.ts';
import { runFolderOf } from './assemble.ts';
import type { ReportLedgerRun } from './assemble.ts';
import type { HtmlRun } from './html.ts';

/** What the drill-down shows of a run's summary: its texts. */
export type RunTexts = Pick<SummaryFile, 'original_instruction' | 'perturbed_instruction' | 'summary'>;

/** A surrogate that is not half of a pair: UTF-8 cannot hold it. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

const NO_TEXTS: RunTexts = { original_instruction: '', perturbed_instruction: '', summary: '' };

/**
 * Packs runs' texts into large blocks of bytes outside the JavaScript heap
 * (one allocation per few MB: a Buffer per text would cost more than the text).
 * UTF-8 for well-formed text, UTF-16 for text with a lone surrogate (which
 * UTF-8 cannot hold), so every text comes back exactly.
 */
export class TextPacker {
  private static readonly BLOCK = 8 * 1024 * 1024;
  private block: Buffer = Buffer.allocUnsafeSlow(0);
  private used = 0;

  /** The run's texts, packed: each is decoded when it is read. */
  pack(texts: RunTexts): RunTexts {
    const list = [texts.original_instruction, texts.perturbed_instruction, texts.summary] as const;
    const utf16 = list.map((text) => LONE_SURROGATE.test(text));
    const sizes = list.map((text, i) => Buffer.byteLength(text, utf16[i] ? 'utf16le' : 'utf8'));
    const total = sizes[0]! + sizes[1]! + sizes[2]!;
    if (this.used + total > this.block.length) {
      this.block = Buffer.allocUnsafeSlow(Math.max(TextPacker.BLOCK, total));
      this.used = 0;
    }
    const start = this.used;
    list.forEach((text, i) => {
      this.used += this.block.write(text, this.used, utf16[i] ? 'utf16le' : 'utf8');
    });
    const flags = (utf16[0] ? 1 : 0) | (utf16[1] ? 2 : 0) | (utf16[2] ? 4 : 0);
    return new PackedTexts(this.block, start, start + sizes[0]!, start + sizes[0]! + sizes[1]!, this.used, flags);
  }
}

/** A run's three texts in a TextPacker's block. */
class PackedTexts implements RunTexts {
  private readonly block: Buffer;
  private readonly start: number;
  private readonly end0: number;
  private readonly end1: number;
  private readonly end2: number;
  /** Bit i: text i is UTF-16. */
  private readonly utf16: number;

  constructor(block: Buffer, start: number, end0: number, end1: number, end2: number, utf16: number) {
    this.block = block;
    this.start = start;
    this.end0 = end0;
    this.end1 = end1;
    this.end2 = end2;
    this.utf16 = utf16;
  }

  get original_instruction(): string {
    return this.block.toString(this.utf16 & 1 ? 'utf16le' : 'utf8', this.start, this.end0);
  }

  get perturbed_instruction(): string {
    return this.block.toString(this.utf16 & 2 ? 'utf16le' : 'utf8', this.end0, this.end1);
  }

  get summary(): string {
    return this.block.toString(this.utf16 & 4 ? 'utf16le' : 'utf8', this.end1, this.end2);
  }
}

/**
 * A run as the drill-down shows it; its texts are read from `texts`, and its
 * folder and link computed from the ledger run, each time (two paths a run
 * would otherwise hold for the one time the page is written).
 */
class RunDetail implements HtmlRun {
  readonly run_id: string;
  readonly agent: string;
  readonly domain: string;
  readonly task_id: string;
  readonly perturbed_id: string;
  readonly refinement_model: string;
  readonly severity: string | null;
  readonly score: number | null;
  readonly strategy: string | null;
  private readonly run: ReportLedgerRun;
  private readonly texts: RunTexts;
  private readonly linkOf: (runFolder: string) => string | null;

  constructor(run: ReportLedgerRun, texts: RunTexts, evaluation: Pick<HtmlRun, 'severity' | 'score' | 'strategy'>, linkOf: (runFolder: string) => string | null) {
    this.run_id = run.run_id;
    this.agent = run.agent;
    this.domain = run.domain;
    this.task_id = run.task_id;
    this.perturbed_id = run.perturbed_id;
    this.refinement_model = run.refinement_model;
    this.severity = evaluation.severity;
    this.score = evaluation.score;
    this.strategy = evaluation.strategy;
    this.run = run;
    this.texts = texts;
    this.linkOf = linkOf;
  }

  get original_instruction(): string {
    return this.texts.original_instruction;
  }

  get perturbed_instruction(): string {
    return this.texts.perturbed_instruction;
  }

  get summary(): string {
    return this.texts.summary;
  }

  get run_folder(): string {
    return runFolderOf(this.run);
  }

  get run_link(): string | null {
    return this.linkOf(this.run_folder);
  }
}

export function runDetails(
  runs: readonly ReportLedgerRun[],
  summaries: ReadonlyMap<string, RunTexts>,
  evaluations: EvaluationsFile,
  linkOf: (runFolder: string) => string | null,
): Record<string, HtmlRun> {
  const out: Record<string, HtmlRun> = {};
  for (const run of runs) {
    const { severity, score, strategy } = evaluationOf(evaluations, run.run_id);
    out[run.run_id] = new RunDetail(run, summaries.get(run.run_id) ?? NO_TEXTS, { severity, score, strategy }, linkOf);
  }
  return out;
}
