// Batch manifests: what was submitted, kept next to the answers it will
// produce (`<store dir>/batches/<batch id>.json`). Written atomically right
// after the provider accepts a batch and before anything waits on it, so a
// killed process, or the next session, polls the same batch instead of paying
// for the requests again. A manifest holds no key, token or prompt: the
// provider, the endpoint identity (secrets already removed, see endpoint.ts),
// the model, the batch id and the request hashes (custom_ids). It is deleted
// once every result has been stored or given up.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { canonicalJson } from '../store.ts';
import { writeFileAtomicSync } from '../../util/fs.ts';

export const MANIFEST_FORMAT = 'llm-batch-manifest/1';

export const BatchManifestSchema = z.strictObject({
  format: z.literal(MANIFEST_FORMAT),
  provider: z.enum(['openai', 'anthropic']),
  /** endpointIdentity() of the submitting client; null for the provider's default endpoint. */
  endpoint: z.record(z.string(), z.string()).nullable(),
  /** The API the lines call: /v1/chat/completions, /v1/responses, /v1/messages. */
  api: z.string(),
  model: z.string(),
  batch_id: z.string().min(1),
  /** Request hashes, in submission order. */
  custom_ids: z.array(z.string()).min(1),
  submitted_at: z.string(),
  expires_at: z.string().nullable(),
  /** Other provider ids of the batch (OpenAI: input_file_id). */
  extra: z.record(z.string(), z.string()),
});

export type BatchManifest = z.infer<typeof BatchManifestSchema>;

export function manifestDir(storeDir: string): string {
  return join(storeDir, 'batches');
}

/** Batch ids are the provider's; anything outside [A-Za-z0-9_.-] is replaced so the name stays one path segment. */
export function manifestPath(storeDir: string, batchId: string): string {
  return join(manifestDir(storeDir), `${batchId.replace(/[^A-Za-z0-9_.-]/g, '_')}.json`);
}

export function writeManifest(storeDir: string, manifest: BatchManifest): string {
  const file = manifestPath(storeDir, manifest.batch_id);
  writeFileAtomicSync(file, `${JSON.stringify(BatchManifestSchema.parse(manifest), null, 2)}\n`);
  return file;
}

/** Every readable manifest in the store, by file name; an unreadable one is reported and left in place. */
export function readManifests(storeDir: string, warn: (message: string) => void = () => {}): BatchManifest[] {
  let names: string[];
  try {
    names = readdirSync(manifestDir(storeDir)).filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort();
  } catch {
    return [];
  }
  const out: BatchManifest[] = [];
  for (const name of names) {
    const file = join(manifestDir(storeDir), name);
    try {
      const parsed = BatchManifestSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
      if (parsed.success) out.push(parsed.data);
      else warn(`batch manifest ${file} does not have the expected shape; ignored (${parsed.error.issues[0]?.message ?? 'invalid'})`);
    } catch (err) {
      // A manifest vanishing between listing and reading was closed by another process.
      if ((err as { code?: string }).code !== 'ENOENT') warn(`batch manifest ${file} is unreadable; ignored (${(err as Error).message})`);
    }
  }
  return out;
}

/** A batch is closed by deleting its manifest (another process may already have). */
export function closeManifest(storeDir: string, batchId: string): void {
  rmSync(manifestPath(storeDir, batchId), { force: true });
}

/** True when a manifest was written by a client of the same provider, model and endpoint. */
export function sameTarget(m: BatchManifest, target: { provider: string; model: string; endpoint: Record<string, string> | null }): boolean {
  return m.provider === target.provider && m.model === target.model && canonicalJson(m.endpoint) === canonicalJson(target.endpoint);
}
