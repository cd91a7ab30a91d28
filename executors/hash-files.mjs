#!/usr/bin/env node
// Prints one line per argument: the sha256 of the file's bytes, or "missing".
// Used as an Nx `runtime` input for files named in pipeline.yaml that Nx's own
// file hashing cannot see (outside the workspace, or ignored by git/.nxignore),
// so that editing them invalidates exactly the targets that read them. Plain
// JavaScript on purpose: it runs under whatever `node` the shell finds.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

for (const path of process.argv.slice(2)) {
  let line;
  try {
    line = createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch (err) {
    line = err && typeof err === 'object' && 'code' in err ? `unreadable (${err.code})` : 'unreadable';
  }
  console.log(line);
}
