// What selection reads of a run's two files, its refinement_summary.json and
// its perturbed query file: the summary's fields (read quickly when that is
// sure to agree with Python's reading) and the run's input digest over both.
// The crawl computes them as it reads the files, so that selection need not
// keep every file's bytes (task-list/crawl.ts, `SummaryReading`); selection
// computes them itself from the bytes where the crawl could not.
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { PyFloat } from '../util/pyjson.ts';
import type { PyJsonValue } from '../util/pyjson.ts';

/** Framing of the digest input: each file by name, then its length and bytes, or a marker. */
export function inputDigest(files: { name: string; bytes: Uint8Array | null; marker?: string }[]): string {
  const h = createHash('sha256');
  for (const f of files) {
    h.update(`${f.name}\0`);
    if (f.bytes === null) h.update(`${f.marker ?? 'missing'}\0`);
    else {
      h.update(`${f.bytes.length}\0`);
      h.update(f.bytes);
    }
  }
  return h.digest('hex');
}

/** A run's input digest: its summary's bytes, then its perturbed query's (what the ledger's `input_digest` is). */
export function runInputDigest(summary: Uint8Array, perturbedQuery: Uint8Array): string {
  return inputDigest([
    { name: 'refinement_summary.json', bytes: summary },
    { name: 'perturbed_query.json', bytes: perturbedQuery },
  ]);
}

/**
 * What the crawl derived from a run summary's bytes, in place of the bytes:
 * what selection would read of them.
 */
export interface SummaryReading {
  /** `quickSummaryFields` of the bytes; null when only Python's reading can tell (then the bytes are kept). */
  fields: Record<string, PyJsonValue> | null;
  /**
   * The run's input digest (`runInputDigest`) with the perturbed query file
   * next to it; null when that file gave no bytes (missing, not a file,
   * unreadable); undefined when its bytes were no longer at hand (then the
   * summary's bytes are kept, and selection digests them with the file's).
   */
  inputDigest: string | null | undefined;
}

/** A reading as JSON, for a worker thread to post (floats keep their float form). */
export function encodeReading(r: SummaryReading): unknown {
  const fields = r.fields === null ? null : Object.entries(r.fields).map(([k, v]) => (v instanceof PyFloat ? [k, String(v.value), 1] : [k, v]));
  return [fields, r.inputDigest === undefined ? 0 : r.inputDigest];
}

export function decodeReading(encoded: unknown): SummaryReading {
  const [fields, digest] = encoded as [([string, PyJsonValue] | [string, string, 1])[] | null, string | null | 0];
  let out: Record<string, PyJsonValue> | null = null;
  if (fields !== null) {
    out = {};
    // Only the summary fields (plain keys, never __proto__) are encoded.
    for (const f of fields) out[f[0]] = f.length === 3 ? new PyFloat(Number(f[1])) : f[1];
  }
  return { fields: out, inputDigest: digest === 0 ? undefined : digest };
}

/** The fields of refinement_summary.json selection uses. */
const SUMMARY_FIELDS = ['success', 'execution_iterations', 'final_score'] as const;
const NUMBER_TOKEN = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y;
/** \u escapes of "_" and of lower-case letters (Python's json.dump never writes them). */
const ESCAPED_KEY_LETTER = /\\u00(?:5[fF]|6[1-9a-fA-F]|7[0-9aA])/;

/**
 * The fields selection uses, as `pyJsonParse` would give them, read with the
 * engine's JSON.parse (several times faster) when that is sure to agree: the
 * bytes are UTF-8 and JSON.parse reads them (every such text reads the same in
 * Python), the top level is an object, `success` is a boolean, and each copied
 * number's token is found once in the text (an int or a float, as written).
 * Anything else returns null, and the caller parses as Python does, with its
 * exact messages.
 */
export function quickSummaryFields(bytes: Uint8Array): Record<string, PyJsonValue> | null {
  if (!isUtf8(bytes)) return null;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const obj = value as Record<string, unknown>;
  const out: Record<string, PyJsonValue> = {};
  for (const key of SUMMARY_FIELDS) {
    if (!Object.hasOwn(obj, key)) continue;
    const v = quickField(text, key, obj[key]);
    if (v === null) return null;
    out[key] = v.value;
  }
  return out;
}

/** One field as pyJsonParse would give it (null: JSON.parse cannot be trusted to agree). */
function quickField(text: string, key: (typeof SUMMARY_FIELDS)[number], v: unknown): { value: PyJsonValue } | null {
  if (key === 'success') return typeof v === 'boolean' ? { value: v } : null;
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return { value: v };
  if (typeof v !== 'number') return null; // an object or list: its numbers need Python's reading
  // A key spelled with escapes of its letters ("final\u005fscore") would hide from the search below.
  if (ESCAPED_KEY_LETTER.test(text)) return null;
  const token = numberToken(text, key);
  if (token === null || !Object.is(Number(token), v)) return null;
  const isFloat = token.includes('.') || token.includes('e') || token.includes('E');
  if (!isFloat && !Number.isSafeInteger(v)) return null;
  return { value: isFloat ? new PyFloat(v) : v === 0 ? 0 : v };
}

/** The number token after `"key":`, when the key's text occurs exactly once (so it is the top-level key). */
function numberToken(text: string, key: string): string | null {
  const needle = `"${key}"`;
  const at = text.indexOf(needle);
  if (at < 0 || text.indexOf(needle, at + needle.length) >= 0) return null;
  let i = at + needle.length;
  while (i < text.length && /\s/.test(text[i] as string)) i++;
  if (text[i] !== ':') return null;
  i++;
  while (i < text.length && /\s/.test(text[i] as string)) i++;
  NUMBER_TOKEN.lastIndex = i;
  return NUMBER_TOKEN.exec(text)?.[0] ?? null;
}
