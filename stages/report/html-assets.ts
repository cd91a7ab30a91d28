// The HTML report's assets, read once next to this module (html-assets/): they
// are part of the program, not of the data. The page carries them inline, and
// its Content-Security-Policy pins them by hash.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

const ASSETS = new URL('./html-assets/', import.meta.url);
export const CSS = readFileSync(new URL('report.css', ASSETS), 'utf8');
export const SCRIPT = readFileSync(new URL('report.js', ASSETS), 'utf8');

function cspHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** The Content-Security-Policy of the page: nothing but the inline script and style, and data: images. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `script-src ${cspHash(SCRIPT)}`,
  `style-src ${cspHash(CSS)}`,
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');
