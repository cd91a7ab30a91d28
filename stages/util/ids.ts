// Stable ids of categories and clusters, derived from their names (and kept
// from a taxonomy lock where one gives them).

/**
 * Stable ids for categories or clusters, derived from content: the name's
 * title part (the text before a `: 'cue', ...` or `: Member, ...` suffix, which
 * shifts as members come and go), so an id survives such renames. Equal titles
 * in one list get `-2`, `-3`, ... in list order.
 */
export function stableIds(prefix: string, names: readonly string[], hash: (s: string) => string): string[] {
  const seen = new Map<string, number>();
  return names.map((name) => {
    const title = name.replace(/:\s.*$/s, '').trim().toLowerCase() || name.trim().toLowerCase();
    const base = `${prefix}-${hash(title).slice(0, 10)}`;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return n === 1 ? base : `${base}-${n}`;
  });
}

/**
 * Ids for a list of category names where some names are locked: a locked
 * name keeps the lock's id, any other gets `derive(name)`, with `-2`, `-3`,
 * ... when that id is already taken (by the lock or an earlier name).
 */
export function lockedStableIds(names: readonly string[], locked: ReadonlyMap<string, string>, derive: (name: string) => string): string[] {
  const taken = new Set(locked.values());
  return names.map((name) => {
    const own = locked.get(name);
    if (own !== undefined) return own;
    const base = derive(name);
    let id = base;
    for (let n = 2; taken.has(id); n++) id = `${base}-${n}`;
    taken.add(id);
    return id;
  });
}
