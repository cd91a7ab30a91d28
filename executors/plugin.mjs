// The plugin's entry as nx.json names it. Plain JavaScript so that it loads
// under any Node: it checks the version first, with a message that says what
// to do, then loads the TypeScript plugin (Node >= 22.18 strips the types).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  throw new Error(
    `this workspace needs Node >= 22.18 (found ${process.versions.node}). ` +
      'Run nx through npx (`npx nx run analysis:report`), which uses the Node the repository pins, or install Node 22.18 or newer.',
  );
}
// Node's compile cache spares every nx command stripping the types of the code the plugin loads again.
const { default: module } = await import('node:module');
module.enableCompileCache?.();
const plugin = await import('./plugin.ts');
export const createNodes = plugin.createNodes;
export const createNodesV2 = plugin.createNodesV2;
export const postTasksExecution = (await import('./replay-notice.ts')).postTasksExecution;
