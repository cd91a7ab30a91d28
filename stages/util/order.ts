// Code-point order: how every list the pipeline writes is sorted (Python's
// `<` on `str`), not the UTF-16 order of JavaScript's default sort.

import { isHighSurrogate, isLowSurrogate } from './utf16.ts';

/** Compare two strings by Unicode code point, as Python's `<` on `str` does: -1, 0 or 1. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  if (i === n) return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
  // A shared high surrogate just before the first differing unit belongs to the code point that differs.
  if (i > 0 && isHighSurrogate(a.charCodeAt(i - 1)) && (isLowSurrogate(a.charCodeAt(i)) || isLowSurrogate(b.charCodeAt(i)))) i--;
  return (a.codePointAt(i) as number) < (b.codePointAt(i) as number) ? -1 : 1;
}
