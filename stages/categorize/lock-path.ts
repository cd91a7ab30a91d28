/** Workspace-relative path of an analysis' taxonomy lock (inside its Nx project root; written by lock-taxonomy). */
export function lockPath(analysis: string): string {
  return `analyses/${analysis}/taxonomy.lock.json`;
}
