// When two names given by a model are the same name.

/** Trimmed, single-spaced, lower-case: two names are the same category when these are equal. */
export function normalizeName(name: string): string {
  return name.normalize('NFKC').replace(/\s+/g, ' ').trim().toLowerCase();
}
