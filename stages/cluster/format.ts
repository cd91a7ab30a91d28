// cluster/clusters.json, its one shape: cluster writes it (cluster/stage.ts,
// checked against this schema at compile time); report reads it, checked
// against this schema (file-format.ts). The clusters are the reference
// format's plus stable ids; categories in no cluster are listed apart.
import { z } from 'zod';
import type { Cluster } from '../formats.ts';

export const CLUSTERS_FILE = 'clusters.json';

const clusterMember = z.object({ category_name: z.string(), category_definition: z.string(), justification: z.string() });

const outputCluster = z.object({
  cluster_name: z.string(),
  definition: z.string(),
  anchor_phrases: z.string(),
  member_categories: z.array(clusterMember),
  cluster_id: z.string(),
});

export type OutputCluster = z.infer<typeof outputCluster>;

export const clustersDocument = z.object({
  clusters: z.array(outputCluster),
  statistics: z.object({
    input_categories: z.number(),
    output_clusters: z.number(),
    input_tokens: z.number(),
    output_tokens: z.number(),
    total_tokens: z.number(),
    cost: z.string(),
    cost_known: z.boolean(),
    unclustered_categories: z.number(),
  }),
  // The reference's metadata and ours; what readers use is spelled out, the rest is recorded as is.
  metadata: z.looseObject({
    api_type: z.string(),
    analyzer: z.string(),
    prompt: z.object({ file: z.string(), sha256: z.string() }),
    calls: z.array(z.unknown()),
  }),
  unclustered_categories: z.array(z.object({ category_name: z.string(), reason: z.string() })),
});

export type ClustersFile = z.infer<typeof clustersDocument>;

// The clusterer's shape (formats.ts) is the file's, plus the stable id: checked by the compiler.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const CLUSTER_SHAPE_MATCHES: Same<OutputCluster, Cluster & { cluster_id: string }> = true;
