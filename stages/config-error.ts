// The error of a configuration mistake: the file, and one line per problem
// naming the key path and what was expected. Its own module so that the
// settings modules (stages/<stage>/settings.ts) and pipeline.yaml's loader
// (stages/config.ts) share it without importing each other.

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly file: string;
  readonly issues: string[];
  constructor(file: string, issues: string[]) {
    super(`${file}: invalid configuration\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.file = file;
    this.issues = issues;
  }
}

/** Renders a key path the way a YAML user reads it: analyses[0].stages.summarize.model */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(top level)' : out;
}
