// The offline analyzer: deterministic, network-free summaries, categories and
// clusters of elicitation runs. Every text it writes starts with OFFLINE_MARK.

export { OFFLINE_MARK } from './text.ts';
export { wordDiff, addedPhrases, removedPhrases, changeRatio, type WordDiff, type DiffSegment, type Phrase } from './diff.ts';
export { offlineSummarize } from './summarize.ts';
export { offlineCategorize, type OfflineCategorizeOptions, type OfflineCategorizeResult } from './categorize.ts';
export { offlineCluster, type OfflineClusterOptions, type OfflineClusterResult } from './cluster.ts';
export { CUE_FAMILIES, FAMILY_GROUPS, HARM_FAMILIES } from './lexicon.ts';
export { adjustedRandIndex } from './metrics.ts';
