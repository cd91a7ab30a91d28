// 300 summaries through the project's LLM client (the real `openai` SDK,
// stages/llm/client.ts with its retries and rate gate) against the loopback
// fake provider (test/helpers/fake-provider-server.ts), answering in 200 ms
// at concurrency 10: without faults, and with 30% of the answers 429 with
// `retry-after: 0.2` (independent of the pace; a seeded sequence in arrival
// order). Limit: the faulty runs finish within 1.5 x fault-free time / 0.7.
//
//   npx node bench/rate-limits.ts [--requests 300] [--repeats 3] [--share 0.3] [--json FILE]
//
// Wall clock on a shared machine: medians of the repeats, min and max shown.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createLlmClient } from '../stages/llm/client.ts';
import { startFakeProviderServer } from '../test/helpers/fake-provider-server.ts';
import { fakeOpenAiSettings } from '../test/helpers/llm-over-fake.ts';
import { mulberry32 } from '../stages/agreement.ts';

const LATENCY_MS = 200;
const CONCURRENCY = 10;
const RETRY_AFTER_S = 0.2;

export interface RateRun {
  share: number;
  seed: number;
  seconds: number;
  requests: number;
  rejected: number;
  failed: number;
}

/** One run: `n` distinct summaries, `share` of the answers 429 (seeded). */
export async function runSummaries(n: number, share: number, seed: number): Promise<RateRun> {
  const server = await startFakeProviderServer({ maxLifetimeMs: 600_000 });
  const random = mulberry32(seed);
  let rejected = 0;
  server.handle(() => {
    if (random() < share) {
      rejected++;
      return { status: 429, headers: { 'retry-after': String(RETRY_AFTER_S) }, error: 'Rate limit reached for requests' };
    }
    return { text: 'A summary of the run.', delayMs: LATENCY_MS };
  });
  try {
    const client = createLlmClient(fakeOpenAiSettings(server, { concurrency: CONCURRENCY, max_retries: 10, timeout_s: 30 }), {
      store: null,
      env: { OPENAI_API_KEY: 'sk-bench-not-a-key' },
    });
    const t0 = performance.now();
    const results = await Promise.allSettled(
      Array.from({ length: n }, (_, i) =>
        client.complete({ step: 'summarize', messages: [{ role: 'user', content: `Summarize run ${i}.` }] }),
      ),
    );
    const seconds = (performance.now() - t0) / 1000;
    return { share, seed, seconds, requests: server.requests.length, rejected, failed: results.filter((r) => r.status === 'rejected').length };
  } finally {
    await server.close();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

export interface RateLimitsResult {
  requests: number;
  share: number;
  faultFreeS: number;
  faultyS: number;
  limitS: number;
  met: boolean;
  runs: RateRun[];
}

export async function rateLimits(n: number, repeats: number, share: number, log: (m: string) => void = () => {}): Promise<RateLimitsResult> {
  const runs: RateRun[] = [];
  for (let r = 0; r < repeats; r++) {
    for (const s of [0, share]) {
      const run = await runSummaries(n, s, r + 1);
      log(`share ${s}, seed ${r + 1}: ${run.seconds.toFixed(2)} s, ${run.requests} requests, ${run.rejected} answered 429, ${run.failed} failed`);
      runs.push(run);
    }
  }
  const faultFreeS = median(runs.filter((r) => r.share === 0).map((r) => r.seconds));
  const faultyS = median(runs.filter((r) => r.share === share).map((r) => r.seconds));
  const limitS = (1.5 * faultFreeS) / (1 - share);
  return { requests: n, share, faultFreeS, faultyS, limitS, met: faultyS <= limitS && runs.every((r) => r.failed === 0), runs };
}

if (import.meta.main) {
  const { values: v } = parseArgs({ options: { requests: { type: 'string' }, repeats: { type: 'string' }, share: { type: 'string' }, json: { type: 'string' } } });
  const n = Number(v.requests ?? 300);
  const share = Number(v.share ?? 0.3);
  const res = await rateLimits(n, Number(v.repeats ?? 3), share, (m) => process.stderr.write(`[rate-limits] ${m}\n`));
  const range = (s: number) => {
    const xs = res.runs.filter((r) => r.share === s).map((r) => r.seconds);
    return `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`;
  };
  console.log(`| ${n} summaries, C=${CONCURRENCY}, L=${LATENCY_MS} ms | median | min-max | limit | met |`);
  console.log('|---|---|---|---|---|');
  console.log(`| no faults | ${res.faultFreeS.toFixed(2)} s | ${range(0)} s | – | – |`);
  console.log(
    `| ${Math.round(share * 100)}% 429, Retry-After ${RETRY_AFTER_S} s | ${res.faultyS.toFixed(2)} s (${(res.faultyS / res.faultFreeS).toFixed(2)}x) | ${range(share)} s | <= ${res.limitS.toFixed(2)} s | ${res.met ? 'yes' : '**no**'} |`,
  );
  if (v.json) writeFileSync(v.json, JSON.stringify(res, null, 2));
}
