// The task-list target's data fingerprint, as an Nx `runtime` input:
//   node executors/task-list/fingerprint.ts '<selection settings as JSON>'
// The plugin passes the analysis' selection settings (stages/task-list/settings.ts), so this
// script does not load pipeline.yaml's schema (zod costs more than the crawl
// of a small tree). It crawls what the selection reads, without parsing a file
// and without opening anything else (stages/task-list/crawl.ts), and prints
// one line: the digest of every answer, by path relative to the data root.
// Nothing it prints names an absolute path, so workspaces and data roots in
// other places share keys.
//
// When the fingerprint cannot be computed, it prints a line that is new on
// every call: the target then never comes from the cache (and a message says
// why on stderr).
import { randomUUID } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import { selectionFingerprint } from '../../stages/task-list/select.ts';
import { selectionOptions } from '../../stages/task-list/settings.ts';
import type { SelectionSettings } from '../../stages/task-list/settings.ts';

const root = process.cwd();
try {
  const settings = JSON.parse(process.argv[2] ?? '') as SelectionSettings;
  const options = selectionOptions(settings, {}, (p) => (isAbsolute(p) ? p : resolve(root, p)));
  console.log(`task-list-data ${await selectionFingerprint(options)}`);
} catch (err) {
  console.log(`task-list-data unavailable ${randomUUID()}`);
  console.error(`task-list fingerprint: ${err instanceof Error ? err.name : 'error'}; the task list is not taken from the cache`);
  process.exitCode = 1;
}
