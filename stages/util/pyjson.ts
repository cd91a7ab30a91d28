// JSON as Python's `json` module reads and writes it.
//
// The reference pipeline writes its files with `json.dump(obj, f, indent=4)`:
// 4-space indent, `", "`/`": "` separators, every non-ASCII character escaped as
// \uXXXX, floats printed with `repr` (so a float-valued 75 prints as `75.0`) and
// NaN/Infinity printed bare. It reads with `json.load`, which also accepts
// NaN/Infinity and keeps the int/float distinction of the source text.
//
// JavaScript numbers cannot tell 75 from 75.0, so a float is carried through
// our code wrapped in a `PyFloat` (see `pyFloat`), and an integer too large for a
// double without loss in a `PyInt`. Both have `toJSON`, so `JSON.stringify`
// sees plain numbers. `pyJsonParse` produces these wrappers; `pyJsonDumps` and
// `stableJson` print them.
//
// Limitation: JavaScript objects list integer-like keys ("2", "10") before the
// others whatever the insertion order. Use a `Map` when such keys must keep their
// order; both printers accept Maps with string keys.

/** A number that Python holds as a `float` (prints as `75.0`, `1e+16`, `NaN`). */
export class PyFloat {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
  toJSON(): number {
    return this.value;
  }
}

/** An integer outside the range a double holds exactly (prints with all its digits). */
export class PyInt {
  readonly value: bigint;
  constructor(value: bigint) {
    this.value = value;
  }
  toJSON(): number {
    return Number(this.value);
  }
}

/** Mark `x` as a Python float, so it prints as Python's repr of a float. */
export function pyFloat(x: number): PyFloat {
  return new PyFloat(x);
}

/** A JSON value as `pyJsonParse` returns it. */
export type PyJsonValue =
  | null
  | boolean
  | number
  | string
  | PyFloat
  | PyInt
  | PyJsonValue[]
  | { [key: string]: PyJsonValue };

/** A JSON object: not null, not an array, not a number kept exact (PyFloat, PyInt). */
export function isJsonObject(v: unknown): v is Record<string, PyJsonValue> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof PyFloat) && !(v instanceof PyInt);
}

/** The numeric value of a parsed number (plain, PyFloat or PyInt), or null for anything else. */
export function pyNumberValue(v: unknown): number | null {
  if (typeof v === 'number') return v;
  if (v instanceof PyFloat) return v.value;
  if (v instanceof PyInt) return Number(v.value);
  return null;
}

/**
 * Parse JSON text as Python's `json.loads` accepts it (NaN and Infinity,
 * duplicate keys: last value wins), into plain JavaScript values: numbers are
 * numbers. The run files' reader: the same leniency as the task list's
 * selection, so a file the task list accepted is never refused later.
 */
export function pyJsonParsePlain(text: string): unknown {
  return toPlain(pyJsonParse(text));
}

function toPlain(v: PyJsonValue): unknown {
  if (v instanceof PyFloat || v instanceof PyInt) return pyNumberValue(v);
  if (Array.isArray(v)) return v.map(toPlain);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    // defineProperty: a key named __proto__ stays a key, as with JSON.parse.
    for (const [k, x] of Object.entries(v)) Object.defineProperty(out, k, { value: toPlain(x), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return v;
}

/** Python's `bool(v)` for a parsed JSON value: 0, 0.0, "", [], {} and null are false; NaN is true. */
export function pyTruthy(v: unknown): boolean {
  if (v === null || v === undefined) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0; // NaN !== 0, as in Python
  if (typeof v === 'bigint') return v !== 0n;
  if (typeof v === 'string') return v.length > 0;
  if (v instanceof PyFloat) return v.value !== 0;
  if (v instanceof PyInt) return v.value !== 0n;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof Map) return v.size > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/**
 * Python's `repr(float)`: the shortest digits that read back as the same double,
 * in positional notation when the decimal exponent is in [-4, 16), else in
 * scientific notation with a signed, at least two-digit exponent.
 * `nan`, `inf` and `-inf` for non-finite values.
 */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  // toExponential() without an argument gives the shortest round-trip digits.
  const m = /^(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(Math.abs(x).toExponential());
  if (m === null) throw new Error(`pyFloatRepr: unexpected exponent form for ${String(x)}`);
  const digits = (m[1] ?? '') + (m[2] ?? '');
  const exp = Number(m[3]);
  if (exp >= -4 && exp < 16) {
    const point = exp + 1; // digits before the decimal point
    if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
    if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}.0`;
    return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
  }
  const mantissa = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const expText = String(Math.abs(exp)).padStart(2, '0');
  return `${sign}${mantissa}e${exp < 0 ? '-' : '+'}${expText}`;
}

function pyJsonFloat(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  return pyFloatRepr(x);
}

/** A plain JS number as Python would print it: an int when integral, else a float. */
function pyJsonNumber(x: number): string {
  // String() prints a safe integer's digits (and -0 as "0"), as BigInt would, without allocating one.
  if (Number.isSafeInteger(x)) return String(x);
  if (Number.isInteger(x)) return BigInt(x).toString();
  return pyJsonFloat(x);
}

const HEX = '0123456789abcdef';

/** Text json.dumps copies unchanged between its quotes: printable ASCII but `"` and `\`. */
const PLAIN_TEXT = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** A string literal as `json.dumps(..., ensure_ascii=True)` writes it. */
export function pyJsonQuote(s: string): string {
  // Nearly every string of a task list is plain; a regular expression checks it far faster than a loop.
  if (PLAIN_TEXT.test(s)) return `"${s}"`;
  let out = '"';
  let plainFrom = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(plainFrom, i) + escapeCodeUnit(c);
    plainFrom = i + 1;
  }
  return `${out}${s.slice(plainFrom)}"`;
}

function escapeCodeUnit(c: number): string {
  if (c === 0x22) return '\\"';
  if (c === 0x5c) return '\\\\';
  if (c === 0x0a) return '\\n';
  if (c === 0x0d) return '\\r';
  if (c === 0x09) return '\\t';
  if (c === 0x08) return '\\b';
  if (c === 0x0c) return '\\f';
  // Python escapes everything outside ' '..'~' (DEL included); code units
  // above U+FFFF are already surrogate pairs in a JS string.
  return `\\u${HEX[(c >> 12) & 15]}${HEX[(c >> 8) & 15]}${HEX[(c >> 4) & 15]}${HEX[c & 15]}`;
}

interface Printer {
  str(s: string): string;
  /** `where` names the value in an error message (`$.a[0]`); called only to throw. */
  num(x: number, where: () => string): string;
  float(x: number, where: () => string): string;
  bigint(x: bigint): string;
  /** Text between items, after the opening bracket and before the closing one, by depth. */
  indent: string | null;
  keySep: string;
  compactItemSep: string;
}

function isPlainObject(v: object): v is Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** The separators of a container's items at one depth. */
interface Layout {
  /** After the opening bracket. */
  first: string;
  /** Between two items. */
  between: string;
  /** Before the closing bracket. */
  last: string;
}

/** Text a writer with a sink holds before handing it over: a task list is tens of megabytes at 100,000 runs. */
const SPILL_AT = 1 << 16;

/**
 * Prints one value into a single string, or in pieces to a sink. A task list
 * has tens of thousands of values: the text is appended as it goes (no array
 * of items per container), and the path of a value (`$.a[0]`) is kept as a
 * stack of keys and spelled only for an error message.
 */
class JsonWriter {
  out = '';
  private readonly p: Printer;
  private readonly keys: (string | number)[] = [];
  private readonly seen = new Set<object>();
  private readonly layouts: Layout[] = [];
  private readonly sink: ((text: string) => void) | null;
  constructor(p: Printer, sink: ((text: string) => void) | null = null) {
    this.p = p;
    this.sink = sink;
  }

  /** Hands the text so far to the sink, once there is enough of it. */
  private spill(): void {
    if (this.sink !== null && this.out.length >= SPILL_AT) {
      this.sink(this.out);
      this.out = '';
    }
  }

  readonly where = (): string => `$${this.keys.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('')}`;

  private layout(depth: number): Layout {
    let l = this.layouts[depth];
    if (l === undefined) {
      const { indent, compactItemSep } = this.p;
      const inner = indent === null ? '' : `\n${indent.repeat(depth + 1)}`;
      l = indent === null ? { first: '', between: compactItemSep, last: '' } : { first: inner, between: `,${inner}`, last: `\n${indent.repeat(depth)}` };
      this.layouts[depth] = l;
    }
    return l;
  }

  value(v: unknown, depth: number): void {
    const p = this.p;
    if (v === null) this.out += 'null';
    else if (v === true) this.out += 'true';
    else if (v === false) this.out += 'false';
    else if (typeof v === 'string') this.out += p.str(v);
    else if (typeof v === 'number') this.out += p.num(v, this.where);
    else if (typeof v === 'bigint') this.out += p.bigint(v);
    else if (v instanceof PyFloat) this.out += p.float(v.value, this.where);
    else if (v instanceof PyInt) this.out += p.bigint(v.value);
    else if (typeof v !== 'object') throw new TypeError(`cannot write ${typeof v} as JSON (at ${this.where()})`);
    else {
      if (this.seen.has(v)) throw new TypeError(`circular reference (at ${this.where()})`);
      this.seen.add(v);
      if (Array.isArray(v)) this.array(v, depth);
      else this.object(v, depth);
      this.seen.delete(v);
    }
  }

  private array(v: unknown[], depth: number): void {
    if (v.length === 0) {
      this.out += '[]';
      return;
    }
    const l = this.layout(depth);
    this.out += `[${l.first}`;
    for (let i = 0; i < v.length; i++) {
      if (i > 0) this.out += l.between;
      const item = v[i];
      this.keys.push(i);
      if (item === undefined) throw new TypeError(`undefined in an array (at ${this.where()})`);
      this.value(item, depth + 1);
      this.keys.pop();
      this.spill();
    }
    this.out += `${l.last}]`;
  }

  private object(v: object, depth: number): void {
    let n = 0;
    const l = this.layout(depth);
    const item = (key: unknown, value: unknown): void => {
      if (typeof key !== 'string') throw new TypeError(`object key is not a string (at ${this.where()})`);
      if (value === undefined) return; // as JSON.stringify does
      this.out += `${n++ === 0 ? `{${l.first}` : l.between}${this.p.str(key)}${this.p.keySep}`;
      this.keys.push(key);
      this.value(value, depth + 1);
      this.keys.pop();
      this.spill();
    };
    if (v instanceof Map) for (const [key, value] of v as Map<unknown, unknown>) item(key, value);
    else if (isPlainObject(v)) for (const key of Object.keys(v)) item(key, v[key]);
    else throw new TypeError(`cannot write a ${v.constructor?.name ?? 'object'} as JSON (at ${this.where()})`);
    this.out += n === 0 ? '{}' : `${l.last}}`;
  }
}

function printJson(value: unknown, printer: Printer): string {
  const w = new JsonWriter(printer);
  w.value(value, 0);
  return w.out;
}

const pyPrinter = (indent: number | string | null): Printer => ({
  str: pyJsonQuote,
  num: pyJsonNumber,
  float: pyJsonFloat,
  bigint: (x) => x.toString(),
  indent: indent === null ? null : typeof indent === 'string' ? indent : ' '.repeat(Math.max(0, indent)),
  keySep: ': ',
  compactItemSep: ', ',
});

/**
 * Exactly what Python's `json.dumps(value, indent=indent)` returns (default
 * settings otherwise: ensure_ascii, allow_nan, insertion-ordered keys).
 * `indent` null gives the one-line form (`", "` and `": "` separators); a
 * number n indents by n spaces per level (0: newlines only); a string is used as is.
 * Plain integral JS numbers print as Python ints, other numbers as floats;
 * wrap a value in `pyFloat` to print it as a float (`75.0`).
 * Properties whose value is `undefined` are left out.
 */
export function pyJsonDumps(value: unknown, indent: number | string | null = 4): string {
  return printJson(value, pyPrinter(indent));
}

/**
 * pyJsonDumps' text handed to `sink` in pieces of tens of kilobytes, in order,
 * instead of built whole: their concatenation is pyJsonDumps(value, indent).
 * On an error some pieces may have been handed over already.
 */
export function pyJsonDumpTo(value: unknown, indent: number | string | null, sink: (text: string) => void): void {
  const w = new JsonWriter(pyPrinter(indent), sink);
  w.value(value, 0);
  if (w.out !== '') sink(w.out);
}

/**
 * Our own canonical JSON: 2-space indent, keys in insertion order, UTF-8 text
 * (no \u escapes beyond what JSON needs), a trailing newline. PyFloat values
 * keep their float form (`75.0`); non-finite numbers are refused, since they are
 * not JSON.
 */
export function stableJson(value: unknown): string {
  const finite = (x: number, where: () => string): number => {
    if (!Number.isFinite(x)) throw new TypeError(`cannot write ${String(x)} as JSON (at ${where()})`);
    return x;
  };
  const printer: Printer = {
    str: (s) => JSON.stringify(s),
    num: (x, where) => pyJsonNumber(finite(x, where)),
    float: (x, where) => pyFloatRepr(finite(x, where)),
    bigint: (x) => x.toString(),
    indent: '  ',
    keySep: ': ',
    compactItemSep: ',',
  };
  return `${printJson(value, printer)}\n`;
}

/** A JSON syntax error as Python reports it: message, then line, column and character offset. */
export class PyJsonSyntaxError extends SyntaxError {
  /** The bare message, e.g. "Expecting value". */
  readonly reason: string;
  /** Offset in code points (as Python counts), line and column from 1. */
  readonly pos: number;
  readonly line: number;
  readonly column: number;
  constructor(reason: string, text: string, unitIndex: number) {
    const before = text.slice(0, unitIndex);
    const pos = [...before].length;
    const lastNewline = before.lastIndexOf('\n');
    const line = before.split('\n').length;
    const column = [...before.slice(lastNewline + 1)].length + 1;
    super(`${reason}: line ${line} column ${column} (char ${pos})`);
    this.name = 'PyJsonSyntaxError';
    this.reason = reason;
    this.pos = pos;
    this.line = line;
    this.column = column;
  }
}

const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;

function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

/**
 * Parse JSON text as Python's `json.loads` does: NaN, Infinity and -Infinity are
 * accepted; numbers written with a fraction or exponent become `PyFloat`;
 * integers beyond 2^53 become `PyInt`; a duplicate key keeps its first position
 * and its last value; a leading byte order mark is an error. Throws
 * `PyJsonSyntaxError` with Python's message text.
 */
export function pyJsonParse(text: string): PyJsonValue {
  let i = 0;
  const fail = (reason: string, at: number = i): never => {
    throw new PyJsonSyntaxError(reason, text, at);
  };
  const ws = (): void => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else return;
    }
  };

  const parseString = (): string => {
    const start = i; // at the opening quote
    i++;
    let out = '';
    let chunk = i;
    for (;;) {
      if (i >= text.length) fail('Unterminated string starting at', start);
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(chunk, i);
        i++;
        return out;
      }
      if (c < 0x20) fail('Invalid control character at');
      if (c !== 0x5c) {
        i++;
        continue;
      }
      out += text.slice(chunk, i);
      const esc = text[i + 1];
      if (esc === undefined) fail('Unterminated string starting at', start);
      if (esc === 'u') {
        const hex = text.slice(i + 2, i + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('Invalid \\uXXXX escape', i + 1);
        out += String.fromCharCode(parseInt(hex, 16));
        i += 6;
      } else {
        const map: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        const ch = Object.hasOwn(map, esc as string) ? map[esc as string] : undefined;
        if (ch === undefined) fail('Invalid \\escape', i);
        out += ch;
        i += 2;
      }
      chunk = i;
    }
  };

  const parseValue = (depth: number): PyJsonValue => {
    if (depth > 1000) fail('Nested too deeply');
    const c = text[i];
    if (c === '"') return parseString();
    if (c === '{') {
      i++;
      const obj: Record<string, PyJsonValue> = {};
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        if (text[i] !== '"') fail('Expecting property name enclosed in double quotes');
        const key = parseString();
        ws();
        if (text[i] !== ':') fail("Expecting ':' delimiter");
        i++;
        ws();
        const value = parseValue(depth + 1);
        setOwn(obj, key, value);
        ws();
        if (text[i] === '}') {
          i++;
          return obj;
        }
        if (text[i] !== ',') fail("Expecting ',' delimiter");
        i++;
        ws();
      }
    }
    if (c === '[') {
      i++;
      const arr: PyJsonValue[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        ws();
        arr.push(parseValue(depth + 1));
        ws();
        if (text[i] === ']') {
          i++;
          return arr;
        }
        if (text[i] !== ',') fail("Expecting ',' delimiter");
        i++;
      }
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('NaN', i)) {
      i += 3;
      return new PyFloat(NaN);
    }
    if (text.startsWith('Infinity', i)) {
      i += 8;
      return new PyFloat(Infinity);
    }
    if (text.startsWith('-Infinity', i)) {
      i += 9;
      return new PyFloat(-Infinity);
    }
    NUMBER_RE.lastIndex = i;
    const m = NUMBER_RE.exec(text);
    if (m === null) return fail('Expecting value');
    i += m[0].length;
    if (m[1] !== undefined || m[2] !== undefined) return new PyFloat(Number(m[0]));
    const n = Number(m[0]);
    if (Number.isSafeInteger(n)) return n === 0 ? 0 : n; // -0 is the int 0
    return new PyInt(BigInt(m[0]));
  };

  if (text.charCodeAt(0) === 0xfeff) fail('Unexpected UTF-8 BOM (decode using utf-8-sig)', 0);
  ws();
  const value = parseValue(0);
  ws();
  if (i !== text.length) fail('Extra data');
  return value;
}
