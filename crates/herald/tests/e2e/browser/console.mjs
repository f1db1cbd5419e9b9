// The debug console (`herald serve --console`) in headless Chromium, as a developer uses it next to
// their app: a wrong secret is refused; with the right one, a pusher-js client's subscription shows
// up in the channel list and the activity stream, so do a presence channel's members, an event
// triggered by the Node SDK and a refused subscription with its error code; an event sent from the
// console's event creator reaches the pusher-js subscriber; the filters and the pause button hold
// lines back and give them back. The console's API refuses requests without a valid session.
//
// With HERALD_UPDATE_SCREENSHOTS=1 it also saves docs/console-login.png and docs/console.png.
//
//   node browser/console.mjs PUSHER_JS_MAJOR      8 or 7

import { join } from 'node:path';
import {
  E2E_DIR,
  connected,
  expect,
  expectEqual,
  nodeSdk,
  pusherClient,
  pusherJs,
  run,
  server,
  signedBy,
  step,
  subscribed,
  until,
  within,
} from '../lib/harness.mjs';
import { openBrowser, watchPage } from '../lib/browser.mjs';

const [major] = process.argv.slice(2);
const PusherJs = await pusherJs(major);

const ROOT = join(E2E_DIR, '..', '..', '..', '..');
const SCREENSHOTS = process.env.HERALD_UPDATE_SCREENSHOTS === '1';
const CONSOLE_URL = `http://${server.host}:${server.port}/console`;
const CHANNEL = 'orders';
const PRESENCE = 'presence-support-desk';

/** The text of every line in the activity list, newest first. */
const activity = (page) => page.$$eval('#activity-list li', (items) => items.map((item) => item.textContent));

/** Wait for a line of the activity list containing every one of `parts`; resolves with it. */
async function activityLine(page, what, ...parts) {
  let shown = [];
  return until(15_000, `a line in the console's activity list: ${what}`, async () => {
    shown = await activity(page);
    return shown.find((text) => parts.every((part) => text.includes(part)));
  }).catch((err) => {
    err.message += `\n  the activity list showed: ${JSON.stringify(shown.slice(0, 30), null, 1)}`;
    throw err;
  });
}

/** The channel table as [name, subscribers, users] rows. */
const channelRows = (page) =>
  page.$$eval('#channel-rows tr', (rows) => rows.map((row) => [...row.cells].map((cell) => cell.textContent)));

async function signIn(page, key, credential) {
  await page.fill('#login-form input[name=key]', key);
  await page.fill('#login-form input[name=credential]', credential);
  await page.click('#login-form button[type=submit]');
}

/** Without a session, or with a forged one, the console's API answers 401 and shows nothing. */
async function apiRefusesWithoutASession() {
  const base = `${CONSOLE_URL}/api`;
  const expires = Math.floor(Date.now() / 1000) + 600;
  for (const [what, url, init] of [
    ['the overview without a signature', `${base}/overview?key=${server.key}`],
    ['the stream with a forged signature', `${base}/stream?key=${server.key}&expires=${expires}&signature=${'0'.repeat(64)}`],
    ['an event without a signature', `${base}/events?key=${server.key}`, { method: 'POST', body: '{"name":"x","channel":"y","data":"{}"}' }],
  ]) {
    const response = await within(10_000, `${what} to be answered`, fetch(url, init));
    const body = await response.json();
    expectEqual([response.status, typeof body.error], [401, 'string'], `${what} is refused with 401 and a JSON error`);
  }
}

run(async () => {
  await apiRefusesWithoutASession();

  const context = await openBrowser({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  watchPage(page, 'console');
  await within(30_000, `the console page to load from ${CONSOLE_URL}`, page.goto(CONSOLE_URL));

  // A wrong secret: the page signs the session with it, Herald refuses the signature.
  await signIn(page, server.key, 'not-the-secret');
  await until(10_000, 'the console to show why signing in failed', async () =>
    (await page.textContent('#login-error')).length > 0,
  );
  step(`login error: ${await page.textContent('#login-error')}`);
  expect(await page.isHidden('#console'), 'a wrong secret leaves the console closed');
  if (SCREENSHOTS) {
    await page.screenshot({ path: join(ROOT, 'docs', 'console-login.png') });
  }

  await signIn(page, server.key, server.secret);
  await until(10_000, 'the console to open with the right secret', () => page.isVisible('#console'));
  expect(
    (await page.textContent('#app-label')).includes(`app ${server.appId}`),
    `the console names the app it shows (app ${server.appId})`,
  );

  // An app's page, subscribed with pusher-js.
  const sdk = nodeSdk();
  const client = pusherClient(PusherJs, 'browser app', signedBy(sdk, { presence: { user_id: 'ada', user_info: { name: 'Ada' } } }));
  const socketId = await connected(client, 'browser app');
  const orders = await subscribed(client, CHANNEL, 'browser app');
  await activityLine(page, `socket ${socketId} subscribed to ${CHANNEL}`, `socket ${socketId}`, `subscribed to ${CHANNEL}`);
  await until(10_000, `${CHANNEL} in the channel list with 1 subscriber`, async () =>
    (await channelRows(page)).some(([name, count]) => name === CHANNEL && count === '1'),
  );
  step(`connections shown: ${await page.textContent('#stat-connections')}`);

  // Presence: the channel's members, after a click on its row.
  await subscribed(client, PRESENCE, 'browser app');
  await activityLine(page, `subscribed to ${PRESENCE} as ada`, `subscribed to ${PRESENCE} as ada`);
  await until(10_000, `${PRESENCE} in the channel list`, async () =>
    (await channelRows(page)).some(([name]) => name === PRESENCE),
  );
  await page.click(`#channel-rows tr[data-channel="${PRESENCE}"] td`);
  await until(10_000, `the members of ${PRESENCE} to list ada`, async () =>
    (await page.$$eval('#member-list li', (items) => items.map((item) => item.textContent))).some((text) =>
      text.startsWith('ada'),
    ),
  );

  // A refusal, with its error code: a private channel whose signature is wrong.
  const forged = pusherClient(PusherJs, 'forger', {
    channelAuthorization: {
      customHandler: (_params, callback) => callback(null, { auth: `${server.key}:${'0'.repeat(64)}` }),
    },
  });
  const forgerId = await connected(forged, 'forger');
  forged.subscribe('private-payroll');
  await activityLine(page, `a refusal with status 401 for socket ${forgerId}`, '401 on private-payroll', `socket ${forgerId}`);

  // An event from the backend, through the Node SDK.
  await sdk.trigger(CHANNEL, 'order-shipped', { id: 42, carrier: 'post' });
  await orders.events.waitFor(10_000, 'order-shipped from the Node SDK', (e) => e.event === 'order-shipped');
  const shipped = await activityLine(page, 'order-shipped triggered through the REST API', 'order-shipped on orders by rest');
  expect(shipped.includes('"carrier":"post"'), 'the stream shows the triggered event with its data');

  // The event creator: sent as a REST trigger would be, received by the pusher-js subscriber.
  await page.fill('#event-form input[name=channel]', CHANNEL);
  await page.fill('#event-form input[name=event]', 'order-cancelled');
  await page.fill('#event-form textarea[name=data]', '{"id":43,"reason":"out of stock"}');
  await page.click('#event-form button[type=submit]');
  const [cancelled] = await orders.events.waitFor(
    10_000,
    'order-cancelled sent from the console',
    (e) => e.event === 'order-cancelled',
  );
  expectEqual(cancelled.data, { id: 43, reason: 'out of stock' }, 'pusher-js receives the data typed into the console');
  await activityLine(page, 'order-cancelled triggered from the console', 'order-cancelled on orders by console');
  // The answer to the creator's request and the event itself travel separately (HTTP response,
  // WebSocket, the activity stream): the page may show the answer a moment after the event.
  await until(10_000, 'the event creator to say the event was sent', async () =>
    (await page.textContent('#event-result')).includes('Sent order-cancelled'),
  );

  // Filters: by event name only the matching lines stay.
  await page.fill('#filter-event', 'order-cancelled');
  const filtered = await activity(page);
  expect(
    filtered.length > 0 && filtered.every((text) => text.includes('order-cancelled')),
    `filtering by event name leaves only order-cancelled lines (${filtered.length})`,
  );
  await page.fill('#filter-event', '');

  // Pause holds new lines back; resume shows them.
  await page.click('#pause');
  await sdk.trigger(CHANNEL, 'order-paused-view', { id: 44 });
  await until(10_000, 'the console to say it holds 1 line while paused', async () =>
    (await page.textContent('#held')).startsWith('1 held'),
  );
  expect(
    !(await activity(page)).some((text) => text.includes('order-paused-view')),
    'a paused console does not show the new line',
  );
  await page.click('#pause');
  await activityLine(page, 'the held line shown after resuming', 'order-paused-view');

  if (SCREENSHOTS) {
    await page.screenshot({ path: join(ROOT, 'docs', 'console.png'), fullPage: true });
    step('saved docs/console-login.png and docs/console.png');
  }

  // Signing out forgets the session: a reload shows the sign-in form.
  await page.click('#sign-out');
  await page.reload();
  await until(10_000, 'the sign-in form after signing out and reloading', () => page.isVisible('#login-form'));
});
