// The local code an entry module can run or read: the transitive closure of
// its imports and of the files it reads next to itself. The plugin turns it
// into each target's code inputs, so they are derived on every nx command and
// never kept by hand (a hand-kept list goes stale and gives wrong cache hits).
//
// A lexical scan, not a parser: comments are dropped and string, template and
// regex literals are masked, then these forms are recognised:
//   import ... from 'x' | import 'x' | import type ... from 'x'
//   export ... from 'x' | export type ... from 'x'
//   import('x') (also `typeof import('x')` in types) | require('x') | import.meta.resolve('x')
//   new URL('x', import.meta.url)      a file (followed if it is code) or a folder
//                                      (every file under it, code followed)
//   const BASE = new URL('dir/', import.meta.url); ... new URL('x', BASE)
// A file next to the module can only be named through import.meta.url, so
// every use of import.meta is checked. Anything the scan cannot follow throws
// with the file and line: an import, or a URL on import.meta.url or on such a
// const, whose argument is not a string literal; any other use of import.meta
// (dirname, filename, a bare import.meta.url, ...); `#` subpath imports.
// `new URL(x)` (one argument: an absolute URL) and `new URL(x, base)` on any
// other base (an HTTP endpoint, a workspace path) are not files of the code.
// Not tracked: such a URL const aliased or passed to another module and used
// there as a base; test/e2e/stage-inputs.test.ts, which traces real runs, would
// flag the file it reads.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface CodeClosure {
  /** Workspace-relative paths (`/`-separated), sorted in code-point order. */
  files: string[];
  /** Package names imported by bare specifier (no Node builtins), sorted. */
  packages: string[];
}

export class CodeClosureError extends Error {
  override name = 'CodeClosureError';
}

/** Scan results by absolute path: pass the same map to several calls on one workspace to scan each file once. */
export type ScanCache = Map<string, FileScan>;

interface Reach {
  /** Absolute path. */
  abs: string;
  /** `file:line` that names it (computed only for an error message). */
  readonly from: string;
  /** How it is named there. */
  spec: string;
}

interface FileScan {
  /** Local files this file imports or reads. */
  files: Reach[];
  /** Folders whose every file this file may read. */
  folders: Reach[];
  packages: string[];
}

const CODE_EXT = /\.(?:[cm]?[jt]s|[jt]sx)$/;
const cp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export function codeClosure(workspaceRoot: string, entries: string[], cache: ScanCache = new Map()): CodeClosure {
  const root = resolve(workspaceRoot);
  const prefix = root.endsWith(sep) ? root : root + sep;
  const rel = (abs: string) => abs.slice(prefix.length).split(sep).join('/');
  const seen = new Set<string>();
  const packages = new Set<string>();
  const queue: Reach[] = [];
  const add = (r: Reach) => {
    if (seen.has(r.abs)) return;
    if (!r.abs.startsWith(prefix)) throw new CodeClosureError(`${r.from}: '${r.spec}' is ${r.abs}, outside the workspace ${root}`);
    seen.add(r.abs);
    if (CODE_EXT.test(r.abs)) queue.push(r); // read (and so checked) when scanned
    else if (statSync(r.abs, { throwIfNoEntry: false })?.isFile() !== true) throw new CodeClosureError(`${r.from}: cannot resolve '${r.spec}': no such file`);
  };
  for (const e of entries) add({ abs: resolve(root, e), from: 'code closure entry', spec: e });
  for (let r = queue.pop(); r; r = queue.pop()) {
    let scan = cache.get(r.abs);
    if (!scan) {
      scan = scanFile(r, rel(r.abs));
      cache.set(r.abs, scan);
    }
    for (const p of scan.packages) packages.add(p);
    for (const f of scan.files) add(f);
    for (const d of scan.folders) {
      for (const abs of filesUnder(d.abs)) {
        add({
          abs,
          spec: d.spec,
          get from() {
            return d.from;
          },
        });
      }
    }
  }
  return { files: [...seen].map(rel).sort(cp), packages: [...packages].sort(cp) };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name));
}

/** `@scope/name` or `name` of a bare specifier. */
function packageOf(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
}

// ---------------------------------------------------------------------------
// Lexing

export interface Literal {
  /** Offsets in the lexed code: the opening quote, and just after the literal. */
  start: number;
  end: number;
  /** The string value; null for a template with substitutions. */
  value: string | null;
}

export interface Lexed {
  /** The code without comments and with empty literals; newlines are kept, so lines match the source. */
  code: string;
  /** Literals by start offset in `code`. */
  literals: Map<number, Literal>;
}

const REGEX_AFTER_CHAR = new Set('(,=:[!&|?{};+-*%<>~^'.split(''));
const REGEX_AFTER_WORD = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await']);
const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', f: '\f', v: '\v', '0': '\0' };
/** Literal bodies, matched natively from a given index (sticky). */
const BODY: Record<string, RegExp> = {
  "'": /(?:[^'\\\n]+|\\[\s\S])*/y,
  '"': /(?:[^"\\\n]+|\\[\s\S])*/y,
  '`': /(?:[^`\\$]+|\\[\s\S]|\$(?!\{))*/y,
  '/': /(?:[^\\/\n[]+|\\.|\[(?:[^\]\\\n]+|\\.)*\]?)*/y,
};
const isWs = (c: number) => c === 32 || c === 10 || c === 9 || c === 13 || c === 12 || c === 11 || c === 0xa0 || c === 0xfeff;
const isWordChar = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36;
const unescape = (raw: string) =>
  raw.includes('\\') ? raw.replace(/\\(\r\n|[\s\S])/g, (_, x: string) => (x === '\n' || x === '\r\n' ? '' : (ESCAPES[x] ?? x))) : raw;

/** Drops comments and empties literals in one pass that jumps between the characters that matter. */
export function lex(src: string): Lexed {
  const out: string[] = [];
  let outLen = 0;
  const literals = new Map<number, Literal>();
  /** Brace depth at each open template substitution `${`. */
  const templates: number[] = [];
  let depth = 0;
  /** Index in src of the last significant code character (-1: none yet). */
  let lastSig = -1;
  let copied = 0;
  const n = src.length;
  // Braces matter only inside a template substitution (to find its end).
  const special = /[/'"`]/g;
  const specialInTemplate = /[/'"`{}]/g;
  const push = (s: string) => {
    out.push(s);
    outLen += s.length;
  };
  /** Copies src[copied, to) as code, tracking the last significant character. */
  const code = (to: number) => {
    if (to <= copied) return;
    push(src.slice(copied, to));
    for (let k = to - 1; k >= copied; k--) {
      if (!isWs(src.charCodeAt(k))) {
        lastSig = k;
        break;
      }
    }
    copied = to;
  };
  /** Skips src[from, to), keeping its newlines (else `gap`). */
  const skip = (from: number, to: number, gap: string) => {
    let lines = 0;
    for (let k = src.indexOf('\n', from); k >= 0 && k < to; k = src.indexOf('\n', k + 1)) lines++;
    push(lines > 0 ? '\n'.repeat(lines) : gap);
    copied = to;
  };
  const bodyEnd = (quote: string, from: number) => {
    const re = BODY[quote] as RegExp;
    re.lastIndex = from;
    re.exec(src);
    return re.lastIndex;
  };
  /** A template part from `start` (a backtick or the `}` closing a substitution); returns the index of its last character. */
  const template = (start: number, first: boolean): number => {
    const i = bodyEnd('`', start + 1);
    code(start + 1);
    const at = outLen - 1;
    skip(start + 1, i, '');
    if (src[i] === '$') {
      // `${`: the code of the substitution follows, up to its closing brace.
      if (first) literals.set(at, { start: at, end: outLen, value: null });
      templates.push(depth);
      depth++;
      return i + 1;
    }
    if (first) literals.set(at, { start: at, end: outLen + 1, value: unescape(src.slice(start + 1, i)) });
    return i;
  };

  let i = 0;
  while (i < n) {
    const re = templates.length > 0 ? specialInTemplate : special;
    re.lastIndex = i;
    const m = re.exec(src);
    if (!m) break;
    i = m.index;
    const c = src[i] as string;
    if (c === '/') {
      const d = src[i + 1];
      if (d === '/' || d === '*') {
        code(i);
        const e = d === '/' ? src.indexOf('\n', i) : src.indexOf('*/', i + 2);
        const end = e < 0 ? n : d === '/' ? e : e + 2;
        skip(i, end, ' ');
        i = end;
        continue;
      }
      code(i);
      let w = lastSig;
      while (w >= 0 && isWordChar(src.charCodeAt(w))) w--;
      const ch = lastSig < 0 ? '' : (src[lastSig] as string);
      if (!(ch === '' || REGEX_AFTER_CHAR.has(ch) || REGEX_AFTER_WORD.has(src.slice(w + 1, lastSig + 1)))) {
        i++; // division
        continue;
      }
      const k = bodyEnd('/', i + 1);
      code(i + 1);
      skip(i + 1, k, '');
      lastSig = k;
      i = k + 1;
    } else if (c === "'" || c === '"') {
      const k = bodyEnd(c, i + 1);
      code(i + 1);
      const at = outLen - 1;
      skip(i + 1, k, '');
      literals.set(at, { start: at, end: outLen + 1, value: unescape(src.slice(i + 1, k)) });
      lastSig = k;
      i = k + 1;
    } else if (c === '`') {
      i = template(i, true);
      lastSig = i;
      i++;
    } else if (c === '}' && templates.length > 0 && templates[templates.length - 1] === depth - 1) {
      templates.pop();
      depth--;
      i = template(i, false);
      lastSig = i;
      i++;
    } else {
      if (c === '{') depth++;
      else depth--;
      i++;
    }
  }
  code(n);
  return { code: out.join(''), literals };
}

// ---------------------------------------------------------------------------
// Scanning one file

/** `from '` or `import '`: a static import's or re-export's specifier follows. */
const STATIC = /(?<![\w$.])(?:from|import)\s*['"]/g;
/** `import(`, `import.meta[.prop]`, `require(`, `new URL(`: the forms that name other files. */
const FORMS = /(?<![\w$.])(?:import\s*(?:(\()|\.\s*meta\b(?:\s*\.\s*([\w$]+))?)|(require)\s*\(|(new)\s+URL\s*\()/g;

/** The top-level arguments of a call whose `(` ends just before `from`: start, end and text of each. */
function argumentsAt(code: string, from: number): { start: number; end: number; text: string }[] {
  const args: { start: number; end: number; text: string }[] = [];
  let depth = 0;
  let start = from;
  for (let k = from; k < code.length; k++) {
    const c = code[k];
    if (c === '(' || c === '[' || c === '{') depth++;
    else if ((c === ')' || c === ']' || c === '}') && depth > 0) depth--;
    else if ((c === ',' || c === ')') && depth === 0) {
      const text = code.slice(start, k);
      if (text.trim() !== '' || c === ',') {
        const lead = text.length - text.trimStart().length;
        args.push({ start: start + lead, end: start + text.trimEnd().length, text: text.trim() });
      }
      if (c === ')') break;
      start = k + 1;
    }
  }
  return args;
}

function scanFile(self: Reach, relName: string): FileScan {
  const file = self.abs;
  let src: string;
  try {
    src = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file (imports name the file with its extension)' : code === 'EISDIR' ? 'a folder, not a file' : (err as Error).message;
    throw new CodeClosureError(`${self.from}: cannot resolve '${self.spec}': ${why}`);
  }
  const { code, literals } = lex(src);
  const where = (pos: number) => {
    let line = 1;
    for (let k = code.indexOf('\n'); k >= 0 && k < pos; k = code.indexOf('\n', k + 1)) line++;
    return `${relName}:${line}`;
  };
  const fail = (pos: number, msg: string): never => {
    throw new CodeClosureError(`${where(pos)}: ${msg}`);
  };
  const skipWs = (pos: number) => {
    while (pos < code.length && isWs(code.charCodeAt(pos))) pos++;
    return pos;
  };
  /** The string literal starting at pos (after whitespace) and followed by `)` or `,`. */
  const argAt = (pos: number): (Literal & { value: string }) | undefined => {
    const lit = literals.get(skipWs(pos));
    const after = lit && code[skipWs(lit.end)];
    return lit && lit.value !== null && (after === ')' || after === ',') ? (lit as Literal & { value: string }) : undefined;
  };

  const reach = (abs: string, pos: number, spec: string): Reach => ({
    abs,
    spec,
    get from() {
      return where(pos);
    },
  });
  const files: Reach[] = [];
  const folders: Reach[] = [];
  const packages = new Set<string>();
  const base = pathToFileURL(file);

  const specifier = (spec: string, pos: number) => {
    if (spec.startsWith('node:') || isBuiltin(spec)) return;
    if (spec.startsWith('./') || spec.startsWith('../')) {
      files.push(reach(fileURLToPath(new URL(spec, base)), pos, spec));
      return;
    }
    if (spec.startsWith('#') || spec.startsWith('.') || spec.startsWith('/') || /^[a-zA-Z][a-zA-Z\d+.-]*:/.test(spec)) {
      fail(pos, `unsupported module specifier '${spec}' (use a relative path starting with ./ or ../, or a package name)`);
    }
    packages.add(packageOf(spec));
  };

  // Static imports and re-exports: a string literal right after `from` or `import` (not `x.from`).
  for (const m of code.matchAll(STATIC)) {
    const lit = literals.get(m.index + m[0].length - 1);
    if (lit?.value != null) specifier(lit.value, lit.start);
  }

  const urlConsts = new Map<string, URL>();
  const metaUrlBases = new Set<number>();
  for (const m of code.matchAll(FORMS)) {
    const at = m.index;
    const next = at + m[0].length;
    if (m[1] || m[3]) {
      // import('x') / require('x')
      const lit = argAt(next);
      if (!lit) fail(at, `${m[1] ? 'import()' : 'require()'} whose argument is not a string literal: the code it loads cannot be listed as an input (use a literal specifier)`);
      specifier(lit!.value, at);
    } else if (m[4]) {
      // new URL(first[, base]): the base is the text after the first top-level comma.
      const args = argumentsAt(code, next);
      if (args.length === 0) continue;
      const baseExpr = args[1]?.text.replace(/\s+/g, '');
      let baseUrl: URL | undefined;
      if (baseExpr === 'import.meta.url') {
        baseUrl = base;
        metaUrlBases.add(args[1]!.start);
      } else if (baseExpr !== undefined) {
        baseUrl = urlConsts.get(baseExpr);
      }
      const lit = literals.get(skipWs(next));
      const value = lit && lit.value !== null && skipWs(lit.end) === skipWs(args[0]!.end) ? lit.value : undefined;
      if (!baseUrl) {
        // An absolute URL, or one on another base: not a file of the code.
        if (value !== undefined && URL.parse(value)?.protocol === 'file:') fail(at, `new URL('${value}'): an absolute file URL (name files next to the module relative to import.meta.url)`);
        continue;
      }
      if (value === undefined) fail(at, `new URL(<not a string literal>, ${baseExpr}): the file it names next to the module cannot be listed as an input (use a literal path)`);
      const url = new URL(value!, baseUrl);
      if (url.protocol !== 'file:') continue;
      const target = fileURLToPath(url);
      const st = statSync(target, { throwIfNoEntry: false });
      if (!st) fail(at, `new URL('${value}') names ${target}, which does not exist`);
      (st!.isDirectory() ? folders : files).push(reach(target, at, value!));
      // `const NAME = new URL(...)`, for a later `new URL('x', NAME)`.
      const decl = /(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*(?::\s*URL\s*)?=\s*$/.exec(code.slice(Math.max(0, at - 200), at));
      if (decl) urlConsts.set(decl[1] as string, url);
    } else {
      // import.meta[.prop]: only as a URL base above, `main`, or `resolve('x')`.
      const prop = m[2];
      if (metaUrlBases.has(at) || prop === 'main') continue;
      if (prop === 'resolve' && code[skipWs(next)] === '(') {
        const lit = argAt(skipWs(next) + 1);
        if (!lit) fail(at, 'import.meta.resolve() whose argument is not a string literal');
        specifier(lit!.value, at);
        continue;
      }
      fail(at, `unsupported use of import.meta${prop ? `.${prop}` : ''}: it may read files this scan cannot list; name files next to the module with new URL('<literal>', import.meta.url)`);
    }
  }

  return { files, folders, packages: [...packages] };
}
