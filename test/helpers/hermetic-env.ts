// Loaded before every test file (vitest setupFiles): tests that run executors
// in this process must not see the caller's pipeline or provider settings.
// Tests that need a variable set it themselves (vi.stubEnv). The e2e tests
// start nx with an environment of their own (test/e2e/workspace.ts).
const CALLER_SETTINGS = /^(META_ANALYSIS_|OPENAI_|ANTHROPIC_|AZURE_|AWS_|NX_SELF_HOSTED_REMOTE_CACHE_)/;
for (const name of Object.keys(process.env)) {
  if (CALLER_SETTINGS.test(name)) delete process.env[name];
}
