// Where keys come from: the process environment first, then a `.env` file in
// the workspace root. The file is read at most once, on the first lookup the
// environment cannot answer. Values are never logged or put into messages.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Looks a variable up; empty values count as unset. */
export type EnvLookup = (name: string) => string | undefined;

/**
 * Parses the simple KEY=VALUE dialect of `.env` files: blank lines and `#`
 * comments are skipped, an `export ` prefix is allowed, values may be quoted
 * ('single' literally, "double" with \n \t \" \\ escapes), an unquoted value
 * ends at ` #`. Malformed lines are ignored.
 */
export function parseDotEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/.exec(line);
    if (!match) continue;
    const key = match[1]!;
    let rest = match[2]!;
    const quote = rest[0];
    if (quote === '"' || quote === "'") {
      // A quoted value may span lines until its closing quote.
      let body = rest.slice(1);
      let end = findClosingQuote(body, quote);
      while (end < 0 && i + 1 < lines.length) {
        body += '\n' + lines[++i]!;
        end = findClosingQuote(body, quote);
      }
      const raw = end < 0 ? body : body.slice(0, end);
      out[key] = quote === '"' ? unescapeDouble(raw) : raw;
      continue;
    }
    const hash = rest.search(/\s#/);
    if (hash >= 0) rest = rest.slice(0, hash);
    out[key] = rest.trim();
  }
  return out;
}

function findClosingQuote(s: string, quote: string): number {
  for (let i = 0; i < s.length; i++) {
    if (quote === '"' && s[i] === '\\') {
      i++;
      continue;
    }
    if (s[i] === quote) return i;
  }
  return -1;
}

function unescapeDouble(s: string): string {
  return s.replace(/\\([nrt"\\])/g, (_, c: string) => ({ n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' })[c] ?? c);
}

/** Reads `<workspaceRoot>/.env`; a missing or unreadable file is an empty one. */
export function readDotEnv(workspaceRoot: string): Record<string, string> {
  try {
    return parseDotEnv(readFileSync(join(workspaceRoot, '.env'), 'utf8'));
  } catch {
    return {};
  }
}

export function createEnvLookup(opts: { env?: NodeJS.ProcessEnv; workspaceRoot?: string } = {}): EnvLookup {
  const env = opts.env ?? process.env;
  const root = opts.workspaceRoot ?? process.cwd();
  let fromFile: Record<string, string> | undefined;
  return (name) => {
    const direct = env[name];
    if (direct !== undefined && direct !== '') return direct;
    fromFile ??= readDotEnv(root);
    const value = fromFile[name];
    return value === undefined || value === '' ? undefined : value;
  };
}
