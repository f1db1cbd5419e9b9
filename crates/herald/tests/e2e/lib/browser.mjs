// Headless Chromium for the browser scenarios: Debian's `chromium` driven by playwright-core, with a
// throwaway profile, allowed to talk to this machine only, and every page's console, errors and
// WebSocket frames in the script's log.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { onCleanup, step, within } from './harness.mjs';

const CHROMIUM = process.env.HERALD_CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A browser context (closed on cleanup); `options` go to playwright's launchPersistentContext. */
export async function openBrowser(options = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'herald-e2e-chromium-'));
  onCleanup(() => rmSync(profile, { recursive: true, force: true }));
  step(`starting ${CHROMIUM} with profile ${profile}`);
  const context = await within(
    30_000,
    `${CHROMIUM} to start (install it with \`apt-get install -y chromium\`)`,
    chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      ...options,
    }),
  );
  onCleanup(() => context.close());
  // The page must only ever talk to this machine; anything else (a CDN, stats beacons) is refused
  // and reported.
  await context.route(/^(?!https?:\/\/127\.0\.0\.1[:/])/, (route) => {
    step(`browser: refused a request to ${route.request().url()}`);
    return route.abort('blockedbyclient');
  });
  return context;
}

/**
 * Log what `page` says (console, page errors, WebSocket frames), each line starting with `label`;
 * `onFrame` also gets every received frame's text.
 */
export function watchPage(page, label, onFrame = () => {}) {
  page.on('console', (message) => step(`${label} console ${message.type()}: ${message.text()}`));
  page.on('pageerror', (err) => step(`${label} page error: ${err.message}`));
  page.on('websocket', (socket) => {
    step(`${label} WebSocket opened: ${socket.url()}`);
    socket.on('framereceived', ({ payload }) => {
      step(`${label} WebSocket <- ${payload}`);
      onFrame(String(payload));
    });
    socket.on('framesent', ({ payload }) => step(`${label} WebSocket -> ${payload}`));
    socket.on('close', () => step(`${label} WebSocket closed`));
  });
}
