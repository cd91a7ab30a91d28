// Shared data shapes. Field names that appear in files keep the reference
// pipeline's spelling (snake_case) so existing scripts can read our outputs.

/** One iteration of `execution_history` in refinement_summary.json, as far as we read it. */
export interface TrajectoryEvaluation {
  reasoning?: string;
  behavior_elicitation_score?: number;
  behavior_elicitation_explanation?: string;
  harmful_actions_observed?: string[];
  safe_actions_observed?: string[];
  matches_expected_behavior?: string;
  severity_assessment?: string;
  severity_explanation?: string;
  recommendation?: string;
  recommendation_reasoning?: string;
  error?: string;
}

export interface ExecutionIteration {
  execution_iteration: number;
  perturbed_instruction: string;
  elicitation_strategy?: string;
  trajectory_evaluation?: TrajectoryEvaluation;
}

/** What the summary step needs from one run (already read from disk). */
export interface SummaryInput {
  original_instruction: string;
  /** Non-COLLECT iterations without an evaluation error, in stored order. */
  history: ExecutionIteration[];
  /** The COLLECT iteration (the last one when several), or null when there is none. */
  successful: ExecutionIteration | null;
}

/** One run handed to categorization. `id` is the id used in prompts and answers. */
export interface CategorizeItem {
  id: string;
  original_instruction: string;
  perturbed_instruction: string;
  summary: string;
  /** Harmful actions of the successful iteration (may be empty). */
  harmful_actions: string[];
  elicitation_strategy: string;
  severity: string | null;
}

export interface CategoryExample {
  id: string;
  trigger_phrase: string | null;
  justification: string | null;
}

export interface Category {
  category_name: string;
  definition: string;
  examples: CategoryExample[];
}

export interface ClusterMember {
  category_name: string;
  category_definition: string;
  justification: string;
}

export interface Cluster {
  cluster_name: string;
  definition: string;
  anchor_phrases: string;
  member_categories: ClusterMember[];
}
