// Counted words in messages and reports.

/** `1 category`, `2 categories`: the count and the word that goes with it. */
export function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}
