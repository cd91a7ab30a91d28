// Prompt templates: `{NAME}` placeholders filled in one pass.

/** Replaces `{NAME}` placeholders in one pass (values are never re-scanned). */
export function fillTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{([A-Z][A-Z0-9_]*)\}/g, (whole, key: string) => (key in values ? (values[key] as string) : whole));
}
