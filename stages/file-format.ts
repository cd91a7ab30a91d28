// Reading what an upstream stage wrote, checked against the file's one
// shape (a zod schema kept beside its writer: task-list/ledger.ts, summarize/format.ts,
// summarize/run-data.ts, categorize/format.ts, cluster/format.ts). Only the read is
// checked: writers serialize their own objects, so the bytes (key order) of
// the files never depend on a schema.
import type { z } from 'zod';
import { formatPath } from './config.ts';

/** An upstream file that is not what its stage writes: names the file, the field paths, what was expected, and the target to re-run. */
export class UpstreamFormatError extends Error {
  override name = 'UpstreamFormatError';
  readonly file: string;
  readonly issues: string[];
  constructor(file: string, stage: string, analysis: string, issues: string[]) {
    super(
      `${file}: not what the ${stage} target writes\n${issues.map((i) => `  - ${i}`).join('\n')}\n` +
        `Run the ${stage} target again (nx run ${analysis}:${stage}).`,
    );
    this.file = file;
    this.issues = issues;
  }
}

/**
 * Checks `value` (read from `file`, written by `stage`) against its schema and
 * returns it as read: unknown keys and key order are kept, nothing is rewritten.
 */
export function checkUpstreamFile<T>(schema: z.ZodType<T>, value: unknown, file: string, stage: string, analysis = '<analysis>'): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return value as T;
  const issues = parsed.error.issues;
  throw new UpstreamFormatError(file, stage, analysis, [
    ...issues.slice(0, 10).map((i) => `${formatPath(i.path)}: ${i.message}`),
    ...(issues.length > 10 ? [`... and ${issues.length - 10} more problems`] : []),
  ]);
}
