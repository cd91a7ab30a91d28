// The HTML report's escaping (text, attributes, JSON in a script element),
// its hrefs for run folders, and the small text helpers the sections share.

import type { ProvenanceValue, StageProvenance } from './markdown.ts';
import { charEscape, HIDDEN_CHARS, showHidden } from '../util/controls.ts';

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * Escape text for HTML content and double- or single-quoted attribute values;
 * a control, separator or bidi character (util/controls.ts) is shown as its
 * `\uXXXX` escape, so none can hide or reorder the text around it.
 */
export function escapeHtml(text: string): string {
  return showHidden(text).replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch] as string);
}

/**
 * JSON that can sit inside a <script> element: every `<`, `>`, `&` and each
 * control, separator or bidi character JSON.stringify leaves raw (U+2028,
 * U+202E, ...) are written as \u escapes, so no `</script>` or `<!--` can
 * appear, the page's source holds no hidden character, and JSON.parse gives
 * back the same value.
 */
export function jsonForScript(value: unknown): string {
  return scriptSafe(JSON.stringify(value));
}

/**
 * `jsonForScript`'s escapes applied to JSON text (a whole document or any
 * piece of one: each escape replaces one character, so pieces escaped one by
 * one join to the escaped whole; JSON.stringify writes lone surrogates as
 * escapes, so no piece ends inside a character).
 */
export function scriptSafe(json: string): string {
  return json.replace(/[<>&]/g, charEscape).replace(HIDDEN_CHARS, charEscape);
}

/** Percent-encodes each `/`-separated segment of a path. */
function encodeSegments(path: string): string {
  return path
    .split('/')
    .map((segment) => encodeURIComponent(segment))
    .join('/');
}

/**
 * The href for a run folder, or null when the value is not a plain local path
 * (a scheme such as `javascript:` or `http:`, or a protocol-relative `//`).
 * Each path segment is percent-encoded, so `#`, `?` and `:` stay part of the path.
 */
export function folderHref(folder: string): string | null {
  const path = folder.trim().replace(/\\/g, '/');
  if (!path || /^[A-Za-z][A-Za-z0-9+.-]*:/.test(path) || path.startsWith('//')) return null;
  return encodeSegments(path);
}

/**
 * The href for a run link (see `HtmlRun.run_link`): an absolute path (`/...` or
 * `C:/...`) becomes a file:// URL, anything else goes through `folderHref`.
 */
export function runLinkHref(link: string): string | null {
  const path = link.trim().replace(/\\/g, '/');
  const drive = /^([A-Za-z]):\//.exec(path);
  if (drive) return `file:///${drive[1]}:${encodeSegments(path.slice(2))}`;
  if (path.startsWith('/') && !path.startsWith('//')) return `file://${encodeSegments(path)}`;
  return folderHref(path);
}


// ---------------------------------------------------------------------------
// Small text helpers of the sections

export function showValue(value: ProvenanceValue): string {
  if (Array.isArray(value)) return value.length ? value.join(', ') : '(none)';
  if (value === null) return '(none)';
  return String(value);
}

export function isOffline(stage: StageProvenance): boolean {
  return stage.provider?.toLowerCase() === 'offline' || stage.analyzer?.toLowerCase() === 'offline';
}

export function listWords(words: string[]): string {
  if (words.length <= 1) return words.join('');
  return `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

/** A character-limited label for SVG text (which cannot wrap). */
export function shortLabel(text: string, max: number): string {
  const points = Array.from(text);
  return points.length > max ? `${points.slice(0, max - 1).join('').trimEnd()}\u2026` : text;
}

export function num(x: number): string {
  return String(Math.round(x * 100) / 100);
}
