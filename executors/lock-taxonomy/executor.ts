// nx run <analysis>:lock-taxonomy — records the current categorization as the
// analysis' taxonomy lock (analyses/<name>/taxonomy.lock.json), the explicit,
// committed base of later categorizations. Never cached: it writes a file
// that is reviewed and committed, not a build output.
import { join } from 'node:path';
import { CATEGORIZATION_FILE, categorizationDocument } from '../../stages/categorize/format.ts';
import { checkUpstreamFile } from '../../stages/file-format.ts';
import { buildLock, describeLockChange, formatLock, lockPath, readAnalysisLock } from '../../stages/categorize/taxonomy-lock.ts';
import { writeFileAtomicSync } from '../../stages/util/fs.ts';
import { runExecutor, stageContext } from '../lib/context.ts';
import type { BaseOptions, ExecutorContextLike } from '../lib/context.ts';
import { readUpstream } from '../lib/io.ts';

export default async function lockTaxonomy(options: BaseOptions, context: ExecutorContextLike) {
  return runExecutor('lock-taxonomy', async () => {
    const ctx = stageContext(options, context);
    const name = ctx.analysis.name;
    const dir = ctx.outputOf('categorize');
    const cat = checkUpstreamFile(categorizationDocument, readUpstream(dir, CATEGORIZATION_FILE, 'categorize'), join(dir, CATEGORIZATION_FILE), 'categorize', name);
    const rel = lockPath(name);
    const abs = join(ctx.workspaceRoot, rel);
    const previous = readAnalysisLock(ctx.workspaceRoot, name)?.lock ?? null;
    const next = buildLock({ analysis: name, built_with: cat.metadata.built_with, categories: cat.categorization.categories, summary_digests: cat.metadata.summary_digests });
    const text = formatLock(next);
    if (previous && formatLock(previous) === text) {
      console.log(`lock-taxonomy: ${rel} is up to date (${next.categories.length} categories).`);
      return true;
    }
    writeFileAtomicSync(abs, text);
    console.log(`lock-taxonomy: wrote ${rel}: ${describeLockChange(previous, next).join('\n')}`);
    console.log(`lock-taxonomy: review it with \`git diff ${rel}\` and commit it; categorize now builds on it.`);
    return true;
  });
}
