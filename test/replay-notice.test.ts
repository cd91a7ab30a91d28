// The line after a command whose stage outputs Nx restored: what was replayed, and that nothing was paid now.
import { describe, expect, it } from 'vitest';
import { replayNotices } from '../executors/replay-notice.ts';

describe('replayNotices', () => {
  it('names the restored stage targets in pipeline order, one line per cache; nothing for targets that ran or are not stages', () => {
    const lines = replayNotices([
      { id: 'b:report', project: 'b', target: 'report', status: 'remote-cache' },
      { id: 'a:report', project: 'a', target: 'report', status: 'local-cache' },
      { id: 'a:summarize', project: 'a', target: 'summarize', status: 'local-cache-kept-existing' },
      { id: 'a:task-list', project: 'a', target: 'task-list', status: 'local-cache' },
      { id: 'a:categorize', project: 'a', target: 'categorize', status: 'success' },
      { id: 'a:plan', project: 'a', target: 'plan', status: 'local-cache' },
    ]);
    expect(lines).toEqual([
      "Restored from Nx's local cache: a:task-list, a:report. Their lines above replay the logs of the runs that built them; nothing was computed or spent now ($0).",
      "Restored from Nx's local cache (the files on disk already matched): a:summarize. Their lines above replay the logs of the runs that built them; nothing was computed or spent now ($0).",
      'Restored from the remote cache: b:report. Their lines above replay the logs of the runs that built them; nothing was computed or spent now ($0).',
    ]);
    expect(replayNotices([{ id: 'a:report', project: 'a', target: 'report', status: 'success' }])).toEqual([]);
  });
});
