// The code closure scanner on throw-away fixture trees: what it follows, what
// it ignores (comments, strings), and the patterns it refuses with a clear error.
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { treeMaker } from './helpers/trees.ts';
import { codeClosure, CodeClosureError } from '../executors/code-closure.ts';
import type { ScanCache } from '../executors/code-closure.ts';

const REPO = resolve(import.meta.dirname, '..');

const { tree, cleanup } = treeMaker('code-closure-');
afterEach(cleanup);

const closureError = (root: string, entry = 'main.ts') => {
  try {
    codeClosure(root, [entry]);
  } catch (err) {
    expect(err).toBeInstanceOf(CodeClosureError);
    return (err as Error).message;
  }
  throw new Error('expected a CodeClosureError');
};

describe('codeClosure', () => {
  it('follows static, side-effect, type, re-export, dynamic and JSON imports, transitively', () => {
    const root = tree({
      'main.ts': [
        "import { a } from './lib/a.ts';",
        'import b from "./lib/b.ts";',
        'import {',
        '  c,',
        '  d,',
        "} from './lib/cd.ts';",
        "import './side.ts';",
        "import type { T } from './types.ts';",
        "export * from './re.ts';",
        "export { x } from './re2.ts';",
        "export type { Y } from './re-type.ts';",
        "import data from './data.json' with { type: 'json' };",
        "const lazy = async () => (await import('./lazy.ts')).f;",
        "let t: typeof import('./typed.ts');",
        'const tpl = await import(`./tpl.ts`);',
      ].join('\n'),
      'lib/a.ts': "import { deep } from '../deep/deep.ts';\nexport const a = deep;",
      'lib/b.ts': 'export default 1;',
      'lib/cd.ts': 'export const c = 1, d = 2;',
      'side.ts': '',
      'types.ts': 'export type T = 1;',
      're.ts': '',
      're2.ts': 'export const x = 1;',
      're-type.ts': 'export type Y = 1;',
      'data.json': '{}',
      'lazy.ts': "export const f = () => import('./lazy-dep.ts');",
      'lazy-dep.ts': '',
      'typed.ts': '',
      'tpl.ts': '',
      'deep/deep.ts': 'export const deep = 1;',
      'unused.ts': "import './main.ts';",
    });
    expect(codeClosure(root, ['main.ts'])).toEqual({
      files: [
        'data.json', 'deep/deep.ts', 'lazy-dep.ts', 'lazy.ts', 'lib/a.ts', 'lib/b.ts', 'lib/cd.ts', 'main.ts',
        're-type.ts', 're.ts', 're2.ts', 'side.ts', 'tpl.ts', 'typed.ts', 'types.ts',
      ],
      packages: [],
    });
  });

  it('ignores imports in comments, strings, templates and regexes', () => {
    const root = tree({
      'main.ts': [
        "// import './nope1.ts';",
        "/* import('./nope2.ts');",
        "   export * from './nope3.ts'; */",
        "const s = \"import './nope4.ts'\";",
        "const t = `from './nope5.ts' ${'x'} import('./nope6.ts')`;",
        "const re = /'/; const re2 = /[/'\"]import\\(/g;",
        "const half = 4 / 2; const q = half / 1; // '",
        "import { a } from './a.ts';",
        "const o = { from: './nope7.ts' }; o.from;",
      ].join('\n'),
      'a.ts': '',
    });
    expect(codeClosure(root, ['main.ts']).files).toEqual(['a.ts', 'main.ts']);
  });

  it('includes files read next to a module: a file (followed if code), a folder (every file under it), a const base', () => {
    const root = tree({
      'main.ts': [
        "import { readFileSync, readdirSync } from 'node:fs';",
        "const css = readFileSync(new URL('./assets/style.css', import.meta.url), 'utf8');",
        "const all = readdirSync(new URL('./data/', import.meta.url));",
        "const TPL = new URL('./templates/', import.meta.url);",
        "const page = readFileSync(new URL('page.html', TPL));",
        "const worker = new URL('./worker.ts', import.meta.url);",
        "const api = new URL('/v1/chat', 'https://example.com');",
        'const parsed = (raw: string) => new URL(raw);',
      ].join('\n'),
      'assets/style.css': 'body {}',
      'assets/unused.css': '',
      'data/x.txt': '',
      'data/sub/y.txt': '',
      'data/code.ts': "import '../dep-of-data.ts';",
      'dep-of-data.ts': '',
      'templates/page.html': '',
      'worker.ts': "import { dep } from './worker-dep.ts';",
      'worker-dep.ts': 'export const dep = 1;',
    });
    expect(codeClosure(root, ['main.ts']).files).toEqual([
      'assets/style.css', 'data/code.ts', 'data/sub/y.txt', 'data/x.txt', 'dep-of-data.ts', 'main.ts', 'templates/page.html', 'worker-dep.ts', 'worker.ts',
    ]);
  });

  it('names packages: scoped kept whole, subpaths cut, node: and builtins left out', () => {
    const root = tree({
      'main.ts': [
        "import { z } from 'zod';",
        "import { zodTextFormat } from 'openai/helpers/zod';",
        "import type { X } from '@scope/pkg/sub/path';",
        "import { readFileSync } from 'node:fs';",
        "import { join } from 'path';",
        "import { readFile } from 'fs/promises';",
        "import test from 'node:test';",
        "export { default as limit } from 'p-limit';",
        "const sdk = async () => import('@anthropic-ai/sdk');",
        "import './local.ts';",
      ].join('\n'),
      'local.ts': "import YAML from 'yaml';",
    });
    expect(codeClosure(root, ['main.ts']).packages).toEqual(['@anthropic-ai/sdk', '@scope/pkg', 'openai', 'p-limit', 'yaml', 'zod']);
  });

  it('terminates on import cycles and lists each file once', () => {
    const root = tree({
      'a.ts': "import './b.ts';\nexport const a = 1;",
      'b.ts': "import './c.ts';\nimport './a.ts';",
      'c.ts': "import { a } from './a.ts';",
    });
    expect(codeClosure(root, ['a.ts']).files).toEqual(['a.ts', 'b.ts', 'c.ts']);
    expect(codeClosure(root, ['c.ts', 'b.ts']).files).toEqual(['a.ts', 'b.ts', 'c.ts']);
  });

  it('gives the same result with a shared scan cache', () => {
    const root = tree({ 'a.ts': "import './b.ts';", 'b.ts': "import 'zod';", 'c.ts': "import './b.ts';" });
    const cache: ScanCache = new Map();
    expect(codeClosure(root, ['a.ts'], cache)).toEqual(codeClosure(root, ['a.ts']));
    expect(codeClosure(root, ['c.ts'], cache)).toEqual({ files: ['b.ts', 'c.ts'], packages: ['zod'] });
  });

  it('sorts in code-point order', () => {
    const root = tree({ 'main.ts': "import './B.ts'; import './a.ts'; import './_.ts';", 'B.ts': '', 'a.ts': '', '_.ts': '' });
    expect(codeClosure(root, ['main.ts']).files).toEqual(['B.ts', '_.ts', 'a.ts', 'main.ts']);
  });

  describe('refuses what it cannot follow, naming the file and line', () => {
    it('a missing imported file', () => {
      const root = tree({ 'main.ts': "import './ok.ts';\n\nimport { x } from './lib/missing.ts';", 'ok.ts': '' });
      expect(closureError(root)).toMatch(/^main\.ts:3: cannot resolve '\.\/lib\/missing\.ts': no such file/);
    });

    it('an import without its extension', () => {
      const root = tree({ 'main.ts': "import { x } from './x';", 'x.ts': '' });
      expect(closureError(root)).toMatch(/^main\.ts:1: cannot resolve '\.\/x': no such file/);
    });

    it('a missing JSON import and a missing URL asset', () => {
      expect(closureError(tree({ 'main.ts': "import d from './d.json' with { type: 'json' };" }))).toMatch(/^main\.ts:1: cannot resolve '\.\/d\.json': no such file/);
      expect(closureError(tree({ 'main.ts': "\nnew URL('./gone.css', import.meta.url);" }))).toMatch(/^main\.ts:2: new URL\('\.\/gone\.css'\) names .*gone\.css, which does not exist/);
    });

    it('a missing entry', () => {
      expect(closureError(tree({}), 'nope.ts')).toMatch(/cannot resolve 'nope\.ts': no such file/);
    });

    it('a dynamic import whose argument is not a string literal', () => {
      const root = tree({ 'main.ts': "const name = './x.ts';\nconst m = await import(name);", 'x.ts': '' });
      expect(closureError(root)).toMatch(/^main\.ts:2: import\(\) whose argument is not a string literal/);
      expect(closureError(tree({ 'main.ts': 'const m = await import(`./${"x"}.ts`);' }))).toMatch(/^main\.ts:1: import\(\) whose argument is not a string literal/);
      expect(closureError(tree({ 'main.ts': "const m = await import('./x' + '.ts');" }))).toMatch(/^main\.ts:1: import\(\)/);
    });

    it('a dynamic import in a file reached only lazily', () => {
      const root = tree({ 'main.ts': "const f = () => import('./lazy.ts');", 'lazy.ts': '\n\nexport const g = (n: string) => import(n);' });
      expect(closureError(root)).toMatch(/^lazy\.ts:3: import\(\) whose argument is not a string literal/);
    });

    it('a URL next to the module whose path is not a string literal', () => {
      const root = tree({ 'main.ts': "const f = 'x.css';\nnew URL(f, import.meta.url);" });
      expect(closureError(root)).toMatch(/^main\.ts:2: new URL\(<not a string literal>, import\.meta\.url\)/);
      const viaConst = tree({ 'main.ts': "const D = new URL('./d/', import.meta.url);\nconst f = 'x';\nnew URL(f, D);", 'd/x': '' });
      expect(closureError(viaConst)).toMatch(/^main\.ts:3: new URL\(<not a string literal>, D\)/);
    });

    it('any other use of import.meta, require() of a computed name, # imports', () => {
      expect(closureError(tree({ 'main.ts': "import { join } from 'node:path';\nconst p = join(import.meta.dirname, 'x.txt');" }))).toMatch(/^main\.ts:2: unsupported use of import\.meta\.dirname/);
      expect(closureError(tree({ 'main.ts': 'const here = import.meta.url;' }))).toMatch(/^main\.ts:1: unsupported use of import\.meta\.url/);
      expect(closureError(tree({ 'main.ts': 'const r = require(process.env.X);' }))).toMatch(/^main\.ts:1: require\(\) whose argument is not a string literal/);
      expect(closureError(tree({ 'main.ts': "import x from '#internal';" }))).toMatch(/^main\.ts:1: unsupported module specifier '#internal'/);
    });

    it('a file outside the workspace', () => {
      const outside = tree({ 'x.ts': '' });
      const root = tree({ 'main.ts': `import '../${outside.split('/').pop()}/x.ts';` });
      expect(closureError(root)).toMatch(/^main\.ts:1: .* outside the workspace/);
    });
  });

  it('follows this repository\'s executors without error, to existing files only', () => {
    for (const stage of ['task-list', 'summarize', 'categorize', 'cluster', 'report']) {
      const { files, packages } = codeClosure(REPO, [`executors/${stage}/executor.ts`]);
      expect(files).toContain(`executors/${stage}/executor.ts`);
      expect(files).toEqual([...files].sort());
      expect(packages.every((p) => !p.startsWith('node:'))).toBe(true);
    }
  });
});
