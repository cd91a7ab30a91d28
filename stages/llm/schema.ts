// Answer schemas: a field restricted to a list of allowed values.
import { z } from 'zod';
import type { ZodType } from 'zod';

/**
 * Limits under which a list of allowed values is sent as an enum. OpenAI's
 * strict mode caps the size of enums; beyond this the field is a plain string
 * and the integrity check alone enforces the list.
 */
export const ENUM_LIMITS = { maxValues: 250, maxChars: 7500 } as const;

/** A string restricted to `values` (an enum) when the list is non-empty and small enough. */
export function restrictedString(values: readonly string[]): ZodType<string> {
  const unique = [...new Set(values)];
  const chars = unique.reduce((n, v) => n + v.length, 0);
  if (unique.length === 0 || unique.length > ENUM_LIMITS.maxValues || chars > ENUM_LIMITS.maxChars) return z.string();
  return z.enum(unique as [string, ...string[]]);
}
