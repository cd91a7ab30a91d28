// A tracer for child Node processes (`node --import <this file> ...`): it
// records, independently of any scanner of the code,
//   - every module resolved and loaded (module.registerHooks, synchronous hooks,
//     Node >= 22.15), with the importing module and the specifier, and
//   - every file read, opened, listed or probed through node:fs (the functions
//     are wrapped, then syncBuiltinESMExports() makes `import { readFileSync }
//     from 'node:fs'` see the wrappers),
// and writes them as JSON to $TRACE_READS_OUT when the process exits.
import fs from 'node:fs';
import { registerHooks, syncBuiltinESMExports } from 'node:module';
import { resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';

export type AccessKind = 'read' | 'open' | 'list' | 'stat';

export interface TraceFile {
  /** Modules resolved: the URL, the importing module's URL, and the specifier as written. */
  resolved: { url: string; parent: string | null; specifier: string }[];
  /** URLs of modules loaded. */
  loaded: string[];
  /** Absolute paths accessed through node:fs. */
  accesses: { path: string; kind: AccessKind; via: string }[];
}

const out = process.env['TRACE_READS_OUT'];
if (!out) throw new Error('trace-reads: set TRACE_READS_OUT to the file to write the trace to');

const trace: TraceFile = { resolved: [], loaded: [], accesses: [] };
const writeFileSync = fs.writeFileSync;

registerHooks({
  resolve(specifier, context, nextResolve) {
    const result = nextResolve(specifier, context);
    trace.resolved.push({ url: result.url, parent: context.parentURL ?? null, specifier });
    return result;
  },
  load(url, context, nextLoad) {
    trace.loaded.push(url);
    return nextLoad(url, context);
  },
});

/** The absolute path of an fs path argument (string, Buffer, file URL); null for a file descriptor. */
function pathOf(p: unknown): string | null {
  if (typeof p === 'string') return resolvePath(p);
  if (Buffer.isBuffer(p)) return resolvePath(p.toString());
  if (p instanceof URL) return p.protocol === 'file:' ? fileURLToPath(p) : null;
  return null;
}

/** Whether open()'s flags only write (a write is an output, not an input). */
function opensForWriting(flags: unknown): boolean {
  if (typeof flags === 'string') return !flags.startsWith('r');
  if (typeof flags === 'number') return (flags & fs.constants.O_WRONLY) !== 0;
  return false;
}

function wrap(target: Record<string, unknown>, name: string, kind: AccessKind, via: string): void {
  const original = target[name];
  if (typeof original !== 'function') return;
  const wrapped = function (this: unknown, ...args: unknown[]) {
    const path = pathOf(args[0]);
    if (path !== null && !(kind === 'open' && opensForWriting(args[1]))) trace.accesses.push({ path, kind, via });
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  };
  Object.defineProperty(wrapped, 'name', { value: name });
  // Keep util.promisify.custom and the like (fs.exists has one).
  for (const key of Reflect.ownKeys(original)) {
    if (key === 'length' || key === 'name' || key === 'prototype') continue;
    const d = Object.getOwnPropertyDescriptor(original, key);
    if (d) Object.defineProperty(wrapped, key, d);
  }
  target[name] = wrapped;
}

const f = fs as unknown as Record<string, unknown>;
const p = fs.promises as unknown as Record<string, unknown>;
const table: [Record<string, unknown>, string, AccessKind, string][] = [
  [f, 'readFileSync', 'read', 'fs.readFileSync'],
  [f, 'readFile', 'read', 'fs.readFile'],
  [f, 'openSync', 'open', 'fs.openSync'],
  [f, 'open', 'open', 'fs.open'],
  [f, 'createReadStream', 'read', 'fs.createReadStream'],
  [f, 'readdirSync', 'list', 'fs.readdirSync'],
  [f, 'readdir', 'list', 'fs.readdir'],
  [f, 'opendirSync', 'list', 'fs.opendirSync'],
  [f, 'opendir', 'list', 'fs.opendir'],
  [f, 'globSync', 'list', 'fs.globSync'],
  [f, 'glob', 'list', 'fs.glob'],
  [f, 'cpSync', 'read', 'fs.cpSync'],
  [f, 'copyFileSync', 'read', 'fs.copyFileSync'],
  [f, 'existsSync', 'stat', 'fs.existsSync'],
  [f, 'statSync', 'stat', 'fs.statSync'],
  [f, 'lstatSync', 'stat', 'fs.lstatSync'],
  [f, 'accessSync', 'stat', 'fs.accessSync'],
  [f, 'stat', 'stat', 'fs.stat'],
  [f, 'access', 'stat', 'fs.access'],
  [p, 'readFile', 'read', 'fs.promises.readFile'],
  [p, 'open', 'open', 'fs.promises.open'],
  [p, 'readdir', 'list', 'fs.promises.readdir'],
  [p, 'opendir', 'list', 'fs.promises.opendir'],
  [p, 'glob', 'list', 'fs.promises.glob'],
  [p, 'cp', 'read', 'fs.promises.cp'],
  [p, 'copyFile', 'read', 'fs.promises.copyFile'],
  [p, 'stat', 'stat', 'fs.promises.stat'],
  [p, 'access', 'stat', 'fs.promises.access'],
];
for (const [target, name, kind, via] of table) wrap(target, name, kind, via);
syncBuiltinESMExports();

process.on('exit', () => {
  writeFileSync(out, JSON.stringify(trace));
});
