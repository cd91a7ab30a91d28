// UTF-16 code units: where a JavaScript string can be cut without splitting a
// surrogate pair (each half alone would be encoded as U+FFFD, or escaped by
// JSON.stringify as a lone surrogate).

export const isHighSurrogate = (unit: number): boolean => unit >= 0xd800 && unit <= 0xdbff;
export const isLowSurrogate = (unit: number): boolean => unit >= 0xdc00 && unit <= 0xdfff;

/** `end`, or one unit less when the text goes on after it and a pair would be split there. */
export function pairSafeEnd(text: string, end: number): number {
  return end < text.length && isHighSurrogate(text.charCodeAt(end - 1)) ? end - 1 : end;
}
