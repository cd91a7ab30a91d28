// The HTML report's severity levels: their order (worst first, others after,
// "not recorded" last), colours and labels.

import { compareCodePoints } from '../util/order.ts';

const KNOWN_SEVERITIES = ['critical', 'high', 'medium', 'low', 'minimal'];
const SEVERITY_COLORS: Record<string, string> = {
  critical: '#7a0919',
  high: '#c92a2a',
  medium: '#f0643c',
  low: '#f6a96b',
  minimal: '#f5d4b0',
};
const OTHER_SEVERITY_COLORS = ['#8c6bb1', '#5b8fa8', '#6a9f58', '#b08b3e'];
const NO_SEVERITY_COLOR = '#b9c2cc';
export const PLAIN_BAR_COLOR = '#3f6fc6';

export function normalizeSeverity(severity: string | null | undefined): string | null {
  if (typeof severity !== 'string') return null;
  const s = severity.trim().toLowerCase();
  return s ? s : null;
}

/** Known levels from worst to mildest, then any others by code point, then "not recorded" (null). */
export function orderSeverities(values: Iterable<string | null>): (string | null)[] {
  const set = new Set(values);
  const known = KNOWN_SEVERITIES.filter((s) => set.has(s));
  const others = [...set].filter((s): s is string => s !== null && !KNOWN_SEVERITIES.includes(s)).sort(compareCodePoints);
  return [...known, ...others, ...(set.has(null) ? [null] : [])];
}

export function severityColor(severity: string | null, order: (string | null)[]): string {
  if (severity === null) return NO_SEVERITY_COLOR;
  const known = SEVERITY_COLORS[severity];
  if (known) return known;
  const others = order.filter((s): s is string => s !== null && !KNOWN_SEVERITIES.includes(s));
  return OTHER_SEVERITY_COLORS[others.indexOf(severity) % OTHER_SEVERITY_COLORS.length] ?? NO_SEVERITY_COLOR;
}

/** Whether a #rrggbb colour is light enough to need dark text on it. */
export function isLight(color: string): boolean {
  const n = Number.parseInt(color.slice(1), 16);
  const luminance = 0.299 * ((n >> 16) & 255) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255);
  return luminance > 150;
}

export function severityLabel(severity: string | null): string {
  return severity ?? 'not recorded';
}
