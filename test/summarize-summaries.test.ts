// summarize's packed summaries (stages/summarize/summaries.ts): the shards'
// bytes, their bounded number, and the checked reader.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UpstreamFormatError } from '../stages/file-format.ts';
import type { SummaryFile, SummaryIndexEntry } from '../stages/summarize/format.ts';
import { readSummaries, shardOf, shardWriter, summaryDigest, summaryText } from '../stages/summarize/summaries.ts';

function summary(runId: string, text = `summary of ${runId}`): SummaryFile {
  return {
    original_instruction: `original ${runId}`,
    perturbed_instruction: `perturbed ${runId} \u2028 é`,
    summary: text,
    input_tokens: 10,
    output_tokens: 5,
    total_tokens: 15,
    cost: '0.00000000',
    summary_metadata: { api_type: 'offline', model_name: 'offline', max_tokens: 100, temperature: 0.7, generated_at: null, analyzer: 'offline' },
    run_id: runId,
    request_hash: `h-${runId}`,
    cost_known: true,
  };
}

const entryOf = (s: SummaryFile): SummaryIndexEntry => ({ run_id: s.run_id, status: 'done', file: shardOf(s.run_id), request_hash: s.request_hash, sha256: summaryDigest(s), reason: null });

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'summaries-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The shards the writer leaves in `out` for these summaries, added in this order: path -> text. */
function shardTexts(files: SummaryFile[]): Map<string, string> {
  const out = mkdtempSync(join(dir, 'out-'));
  const writer = shardWriter(out);
  for (const f of files) expect(writer.add(f)).toBe(shardOf(f.run_id));
  const written = writer.finish();
  expect(readdirSync(out)).toEqual(written.size > 0 ? ['summaries'] : []); // the spill files are gone
  for (const [rel, digest] of written) expect(digest).toBe(createHash('sha256').update(readFileSync(join(out, rel))).digest('hex'));
  return new Map([...written.keys()].map((rel) => [rel, readFileSync(join(out, rel), 'utf8')]));
}

function writeShards(files: SummaryFile[]): Map<string, string> {
  const shards = shardTexts(files);
  mkdirSync(join(dir, 'summaries'), { recursive: true });
  for (const [rel, text] of shards) writeFileSync(join(dir, rel), text);
  return shards;
}

/** What the shards must hold, computed here: per shard, each summary's compact JSON on a line, by run id. */
function expectedShards(files: SummaryFile[]): Map<string, string> {
  const byShard = new Map<string, SummaryFile[]>();
  for (const f of files) byShard.set(shardOf(f.run_id), [...(byShard.get(shardOf(f.run_id)) ?? []), f]);
  const byId = (x: SummaryFile, y: SummaryFile) => (x.run_id < y.run_id ? -1 : x.run_id > y.run_id ? 1 : 0);
  return new Map([...byShard.keys()].sort().map((rel) => [rel, byShard.get(rel)!.sort(byId).map((f) => `${JSON.stringify(f)}\n`).join('')]));
}

describe('packed summaries', () => {
  it('keep the number of files bounded (at most 256) whatever the number of runs', () => {
    const counts = [1, 100, 1_000, 10_000].map((n) => shardTexts(Array.from({ length: n }, (_, i) => summary(`task-${i}:p${i % 7}`))).size);
    expect(counts[0]).toBe(1);
    expect(counts[1]).toBeLessThanOrEqual(100);
    expect(counts[2]).toBeLessThanOrEqual(256);
    expect(counts[3]).toBe(256);
    for (const rel of shardTexts(Array.from({ length: 1000 }, (_, i) => summary(`r${i}`))).keys()) expect(rel).toMatch(/^summaries\/[0-9a-f]{2}\.jsonl$/);
  });

  it('write the same bytes whatever the order the runs finish in, lines by run id', () => {
    const files = ['b', 'a', 'c:1', 'c:0', 'Z', 'é'].map((id) => summary(id));
    const one = shardTexts(files);
    const other = shardTexts([...files].reverse());
    expect([...other.entries()]).toEqual([...one.entries()]);
    expect([...one.entries()]).toEqual([...expectedShards(files).entries()]);
    for (const text of one.values()) {
      const ids = text.trimEnd().split('\n').map((l) => JSON.parse(l).run_id as string);
      expect(ids).toEqual([...ids].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
    }
    expect(() => shardTexts([summary('a'), summary('a', 'other')])).toThrow(/two summaries for the run a/);
  });

  it('hold no summary in memory: long shards go to a spill file while runs finish, with the same bytes', () => {
    // About 40 KiB per summary, 8 runs in each of 3 shards: each shard spills more than once, and ends with a line not yet spilled.
    const ids = Array.from({ length: 2000 }, (_, i) => `long-${i}`);
    const shardsOf = [...new Set(ids.map(shardOf))].slice(0, 3);
    const files = shardsOf.flatMap((rel) => ids.filter((id) => shardOf(id) === rel).slice(0, 8)).map((id) => summary(id, `${id} ${'word '.repeat(8000)}`));
    const shards = shardTexts(files);
    expect([...shards.entries()]).toEqual([...expectedShards(files).entries()]);
    expect([...shardTexts([...files].reverse()).entries()]).toEqual([...shards.entries()]);
    expect(Math.max(...[...shards.values()].map((t) => t.length))).toBeGreaterThan(3 * 64 * 1024);
    expect(() => shardTexts([...files, summary(files[3]!.run_id)])).toThrow(`two summaries for the run ${files[3]!.run_id}`);
  });

  it('index.json digests the summary as the reference writes it alone; the reader gives back that very object', () => {
    const files = Array.from({ length: 40 }, (_, i) => summary(`run-${i}`));
    writeShards(files);
    const index = files.map(entryOf);
    const read = readSummaries(dir, index);
    expect(read.size).toBe(40);
    for (const f of files) {
      expect(summaryText(read.get(f.run_id)!)).toBe(`${JSON.stringify(f, null, 2)}\n`);
      expect(index.find((e) => e.run_id === f.run_id)!.sha256).toBe(createHash('sha256').update(`${JSON.stringify(f, null, 2)}\n`).digest('hex'));
    }
  });

  it('leaves out the runs index.json lists as failed', () => {
    writeShards([summary('a')]);
    const index: SummaryIndexEntry[] = [entryOf(summary('a')), { run_id: 'b', status: 'failed', file: null, request_hash: null, sha256: null, reason: 'bad data' }];
    expect([...readSummaries(dir, index).keys()]).toEqual(['a']);
  });

  describe('a damaged shard is an error naming the shard, the line and what was expected', () => {
    // Three runs in one shard, so that line numbers mean something.
    const ids = (() => {
      const byShard = new Map<string, string[]>();
      for (let i = 0; i < 2000; i++) {
        const id = `r${i}`;
        const list = byShard.get(shardOf(id)) ?? [];
        list.push(id);
        byShard.set(shardOf(id), list);
      }
      return [...byShard.values()].find((l) => l.length >= 3)!.slice(0, 3).sort();
    })();
    const files = ids.map((id) => summary(id));
    const shard = shardOf(ids[0]!);
    const index = files.map(entryOf);

    const errorOf = (text: string) => {
      mkdirSync(join(dir, 'summaries'), { recursive: true });
      writeFileSync(join(dir, shard), text);
      try {
        readSummaries(dir, index, 'demo');
      } catch (err) {
        expect(err).toBeInstanceOf(UpstreamFormatError);
        return (err as Error).message;
      }
      throw new Error('no error');
    };
    const good = () => shardTexts(files).get(shard)!;
    const lines = () => good().split('\n');

    it('a line that is not JSON', () => {
      const l = lines();
      l[1] = l[1]!.slice(0, 20);
      const msg = errorOf(l.join('\n'));
      expect(msg).toContain(`${join(dir, shard)}: not what the summarize target writes`);
      expect(msg).toMatch(/line 2: not JSON/);
      expect(msg).toContain(`the run ${ids[1]} is missing`);
      expect(msg).toContain('nx run demo:summarize');
    });

    it('a summary edited behind the index', () => {
      const msg = errorOf(good().replace(`summary of ${ids[2]}`, 'edited'));
      expect(msg).toContain(`line 3: the summary of ${ids[2]} does not have the sha256 index.json records`);
    });

    it('a cut-short file, a duplicated line, a run from elsewhere, a missing file', () => {
      expect(errorOf(good().slice(0, -1))).toMatch(/does not end with a newline/);
      const l = lines();
      expect(errorOf([l[0], l[0], l[1], l[2], ''].join('\n'))).toContain(`line 2: a second line for the run ${ids[0]}`);
      expect(errorOf(`${good()}${JSON.stringify(summary('elsewhere'))}\n`)).toContain('line 4: the run elsewhere is not one index.json places in this shard');
      expect(errorOf(`${good()}[1]\n`)).toContain('line 4: expected a summary object with a string run_id');
      rmSync(join(dir, shard));
      expect(() => readSummaries(dir, index)).toThrow(/cannot be read \(ENOENT\); index.json names it for 3 run/);
    });
  });
});
