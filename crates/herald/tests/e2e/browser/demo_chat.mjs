// scripts/demo end to end, as a newcomer uses it: start it (with the herald binary under test in
// HERALD_BIN, on free ports), open the URL it prints in two tabs of headless Chromium, send a message
// from each tab through the seed page's own form, and see every message exactly once in both. Then
// Ctrl-C (SIGINT) stops it and the Herald it started. Before that, without the seed demo's files, it
// must say to set HERALD_SEED_DEMO.
//
// With HERALD_UPDATE_SCREENSHOTS=1 and the default pusher-js (8), it also saves the chat as
// docs/demo-chat.png.
//
//   node browser/demo_chat.mjs PUSHER_JS_MAJOR      scripts/demo's --pusher-js: 8 or 3

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  E2E_DIR,
  Recorder,
  expect,
  expectEqual,
  onCleanup,
  required,
  run,
  step,
  until,
  within,
} from '../lib/harness.mjs';
import { openBrowser, watchPage } from '../lib/browser.mjs';
import { CHAT_CHANNEL } from '../lib/seed_page.mjs';

const [major] = process.argv.slice(2);
if (!['8', '3'].includes(major)) {
  console.error('usage: node browser/demo_chat.mjs PUSHER_JS_MAJOR (8 or 3)');
  process.exit(2);
}

const ROOT = join(E2E_DIR, '..', '..', '..', '..');
const DEMO = join(ROOT, 'scripts', 'demo');
const SCREENSHOT = join(ROOT, 'docs', 'demo-chat.png');

/** Run scripts/demo with `args` and `env` on top of this script's environment. */
function startDemo(args, env = {}) {
  const child = spawn(DEMO, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = new Recorder('scripts/demo output');
  for (const stream of [child.stdout, child.stderr]) {
    let pending = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop();
      for (const line of lines) {
        step(`scripts/demo | ${line}`);
        output.push(line);
      }
    });
  }
  const exited = new Promise((resolve) => {
    child.on('error', (err) => resolve({ code: null, signal: null, error: err.message }));
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, output, exited };
}

/** Wait for a line of scripts/demo's output matching `pattern`; resolves with the match. */
async function line(demo, ms, what, pattern) {
  const exitedFirst = demo.exited.then((how) => {
    throw new Error(`scripts/demo ended (${JSON.stringify(how)}) before printing ${what}`);
  });
  const [found] = await Promise.race([demo.output.waitFor(ms, what, (text) => pattern.test(text)), exitedFirst]);
  return found.match(pattern);
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Without the seed demo's files, scripts/demo stops at once and names the variable to set. */
async function saysWhatToSetWithoutTheSeed() {
  const empty = mkdtempSync(join(tmpdir(), 'herald-e2e-no-seed-'));
  onCleanup(() => rmSync(empty, { recursive: true, force: true }));
  const demo = startDemo([], { HERALD_SEED_DEMO: empty });
  onCleanup(() => demo.child.exitCode === null && demo.child.kill('SIGKILL'));
  const how = await within(30_000, 'scripts/demo to exit when HERALD_SEED_DEMO has no seed demo', demo.exited);
  expect(how.code === 1, `scripts/demo exits with 1 without the seed demo (got ${JSON.stringify(how)})`);
  expect(
    demo.output.matching((text) => text.includes('set HERALD_SEED_DEMO')).length === 1,
    'scripts/demo says to set HERALD_SEED_DEMO',
  );
}

/** A tab with the chat open and subscribed; `frames` are the pusher-js frames it receives. */
async function openTab(context, url, label) {
  const page = await context.newPage();
  const frames = new Recorder(`${label} WebSocket`);
  watchPage(page, label, (text) => {
    try {
      frames.push(JSON.parse(text));
    } catch {
      // Not a Pusher frame; watchPage has logged it.
    }
  });
  await within(30_000, `the chat page to load in ${label} from ${url}`, page.goto(url));
  await frames.waitFor(
    20_000,
    `pusher_internal:subscription_succeeded on ${CHAT_CHANNEL}`,
    (frame) => frame.event === 'pusher_internal:subscription_succeeded' && frame.channel === CHAT_CHANNEL,
  );
  return page;
}

const lines = (page) => page.$$eval('.message-receiver p', (ps) => ps.map((p) => p.textContent));

/** Type `name` and `message` into the seed page's form in `page` and submit it as a person would. */
async function send(page, label, name, message) {
  step(`${label}: sending ${JSON.stringify(`${name}: ${message}`)}`);
  await page.fill('#pusher_event_name', name);
  await page.fill('#pusher_event_message', message);
  await page.click('input[type=submit]');
  // events/create.js.erb, the demo's answer to the form, empties the message field: the form went
  // through jquery_ujs and the backend rather than a page load.
  await until(20_000, `the message field in ${label} to be emptied by the answer to POST /events`, async () =>
    (await page.inputValue('#pusher_event_message')) === '',
  );
}

/** Wait until every tab shows `count` lines; resolves with each tab's lines. */
function linesInEveryTab(tabs, count) {
  let seen = [];
  return until(20_000, `${count} line(s) in .message-receiver in every tab`, async () => {
    seen = await Promise.all(tabs.map(lines));
    return seen.every((shown) => shown.length >= count) && seen;
  }).catch((err) => {
    err.message += `\n  the tabs showed: ${JSON.stringify(seen)}`;
    throw err;
  });
}

run(async () => {
  required('HERALD_SEED_DEMO');
  const heraldBin = required('HERALD_BIN');
  await saysWhatToSetWithoutTheSeed();

  const args = ['--port', '0', '--herald-port', '0', '--pusher-js', major];
  const demo = startDemo(args, { HERALD_BIN: heraldBin });
  let heraldPid;
  onCleanup(async () => {
    if (demo.child.exitCode === null && demo.child.signalCode === null) {
      demo.child.kill('SIGINT');
      const stopped = await Promise.race([demo.exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
      if (!stopped) demo.child.kill('SIGKILL');
    }
    if (heraldPid && alive(heraldPid)) process.kill(heraldPid, 'SIGKILL');
  });
  const [, pid] = await line(demo, 60_000, "Herald's pid", /Herald \(pid (\d+)\) on http:\/\/127\.0\.0\.1:\d+/);
  heraldPid = Number(pid);
  const [, url] = await line(
    demo,
    30_000,
    `the URL to open for pusher-js ${major}`,
    new RegExp(`with pusher-js ${major}: open (http://127\\.0\\.0\\.1:\\d+/) in two tabs`),
  );

  // Small, so that the screenshot is the chat; a full-page screenshot grows to fit it.
  const context = await openBrowser({ viewport: { width: 720, height: 200 } });
  const tabA = await openTab(context, url, 'tab A');
  const tabB = await openTab(context, url, 'tab B');
  const tabs = [tabA, tabB];

  const first = ['Ann', 'Hi! Is this still the Rails chat?'];
  await send(tabA, 'tab A', ...first);
  await linesInEveryTab(tabs, 1);
  // A second message, from the other tab, is the marker for "exactly once": a duplicate of the first
  // (a double submit, a second delivery) would be shown before it.
  const second = ['Bob', 'Yes, with pusher-js talking to Herald now.'];
  await send(tabB, 'tab B', ...second);
  const shown = await linesInEveryTab(tabs, 2);
  const expected = [first, second].map(([name, message]) => `${name}: ${message}`);
  expectEqual(shown, [expected, expected], 'each tab shows both messages exactly once, in order');
  expectEqual(
    tabs.map((tab) => tab.url()),
    [url, url],
    'neither tab left the chat page (the form was sent in the background)',
  );

  if (process.env.HERALD_UPDATE_SCREENSHOTS === '1' && major === '8') {
    await tabB.screenshot({ path: SCREENSHOT, fullPage: true });
    step(`saved ${SCREENSHOT}`);
  }

  // Ctrl-C: scripts/demo stops the Herald it started, by its PID, and exits.
  demo.child.kill('SIGINT');
  const how = await within(20_000, 'scripts/demo to exit after SIGINT', demo.exited);
  expect(how.code === 0, `scripts/demo exits with 0 after SIGINT (got ${JSON.stringify(how)})`);
  await until(20_000, `Herald (pid ${heraldPid}) to be gone after scripts/demo exited`, () => !alive(heraldPid));
});
