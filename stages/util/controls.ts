// Characters of data text that a reader cannot see but that change what a
// report shows: C0 and C1 control characters (NUL, ESC, DEL, ...), the Unicode
// line and paragraph separators, and the bidirectional formatting characters
// that reorder the text around them ("Trojan Source"). Tab, line feed and
// carriage return are left to the callers, which treat them as white space.

/** One such character per match (global: use with `replace`). */
export const HIDDEN_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** A character as a JavaScript escape: `\u2028`, `\u0000`. */
export function charEscape(ch: string): string {
  return `\\u${(ch.codePointAt(0) as number).toString(16).padStart(4, '0')}`;
}

/** The text with each hidden character written as its `\uXXXX` escape. */
export function showHidden(text: string): string {
  return text.replace(HIDDEN_CHARS, charEscape);
}
