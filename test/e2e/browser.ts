// Headless Chromium for tests: Debian's package driven by playwright-core
// (never a downloaded browser), with the flags this sandboxed network needs.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const haveChromium = existsSync(CHROMIUM);
/** Skip browser tests only on a developer machine without Chromium; in CI a missing browser fails. */
export const skipBrowser = !haveChromium && !process.env['CI'];

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A fresh browser profile; `close()` closes the browser and removes the profile. */
export async function launchChromium(viewport = { width: 1366, height: 900 }): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  if (!haveChromium) throw new Error(`Chromium not found at ${CHROMIUM}; install it with "apt-get install -y chromium"`);
  const profile = mkdtempSync(join(tmpdir(), 'chromium-profile-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, viewport, args: CHROMIUM_ARGS });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
