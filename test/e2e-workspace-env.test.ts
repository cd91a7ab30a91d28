// The environment the end-to-end tests run nx with: clean, whatever the caller's shell holds.
import { delimiter, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hermeticEnv, REPO } from './e2e/workspace.ts';

const CALLER: NodeJS.ProcessEnv = {
  PATH: '/usr/local/bin:/usr/bin',
  HOME: '/home/someone',
  TMPDIR: '/tmp',
  LANG: 'C.UTF-8',
  LC_ALL: 'C.UTF-8',
  TERM: 'xterm',
  NX_CACHE_DIRECTORY: '/tmp/somewhere',
  NX_WORKSPACE_DATA_DIRECTORY: '/tmp/elsewhere',
  NX_SKIP_NX_CACHE: 'true',
  NX_DAEMON: 'true',
  NX_CLOUD_ACCESS_TOKEN: 'token',
  NX_BASE: 'main',
  OPENAI_API_KEY: 'sk-caller',
  OPENAI_BASE_URL: 'https://example.invalid',
  ANTHROPIC_API_KEY: 'sk-ant',
  AZURE_OPENAI_ENDPOINT: 'https://azure.invalid',
  AWS_REGION: 'us-east-1',
  AWS_PROFILE: 'p',
  META_ANALYSIS_STORE_DIR: '/tmp/store',
  META_ANALYSIS_REFRESH: 'all',
  NODE_OPTIONS: '--inspect',
  CI: 'false',
  FORCE_COLOR: '3',
};

describe('hermeticEnv', () => {
  const env = hermeticEnv('/ws/.nx', {}, CALLER);

  it('keeps only what a process needs from the caller', () => {
    expect(env).toEqual({
      PATH: `${join(REPO, 'node_modules', '.bin')}${delimiter}/usr/local/bin:/usr/bin`,
      HOME: '/home/someone',
      TMPDIR: '/tmp',
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      TERM: 'xterm',
      NX_CACHE_DIRECTORY: '/ws/.nx/cache',
      NX_WORKSPACE_DATA_DIRECTORY: '/ws/.nx/workspace-data',
      NX_DAEMON: 'false',
      NX_NO_CLOUD: 'true',
      NX_TUI: 'false',
      CI: 'true',
      FORCE_COLOR: '0',
      NO_COLOR: '1',
    });
  });

  it('passes no Nx, provider or pipeline variable of the caller', () => {
    for (const key of Object.keys(env)) expect(key).not.toMatch(/^(OPENAI_|ANTHROPIC_|AZURE_|AWS_|META_ANALYSIS_|NODE_OPTIONS$)/);
    expect(Object.keys(env).filter((k) => k.startsWith('NX_')).sort()).toEqual(['NX_CACHE_DIRECTORY', 'NX_DAEMON', 'NX_NO_CLOUD', 'NX_TUI', 'NX_WORKSPACE_DATA_DIRECTORY']);
  });

  it('adds per-call variables last', () => {
    const withKey = hermeticEnv('/ws/.nx', { OPENAI_API_KEY: 'sk-test', META_ANALYSIS_STORE_DIR: '.cache/s' }, CALLER);
    expect(withKey['OPENAI_API_KEY']).toBe('sk-test');
    expect(withKey['META_ANALYSIS_STORE_DIR']).toBe('.cache/s');
  });
});
