// Webhooks as the official server SDKs see them. An HTTP receiver on 127.0.0.1:$HERALD_WEBHOOK_PORT
// (the endpoint e2e.rs gave herald with --webhook-url; e2e.rs hands over that port's listening socket
// as this script's stdin) keeps every request's raw body and headers while pusher-js clients:
// - subscribe to and unsubscribe from a public channel: `channel_occupied` on the first subscribe
//   only; no `channel_vacated` while another subscriber is left; one after the last one leaves;
// - join a presence channel as ann (two tabs, i.e. two connections) and ben: one `member_added`
//   per user, none for ann's second tab; no `member_removed` when ann closes one tab; one for each
//   user after their last tab leaves;
// - send a client event on a private channel (and one on the presence channel): `client_event` with
//   `event`, `data` as a string (the JSON text of the object sent) and the sender's `socket_id`
//   (plus `user_id` on the presence channel only);
// - subscribe twice to an empty cache channel: one `cache_miss`;
// - reload: a client leaves a channel and a new one joins it well within the removal delay: no
//   `channel_vacated`/`channel_occupied` pair for it.
// Removals (`channel_vacated`, `member_removed`) must arrive about 3 s after the leave, never
// before 2.5 s. Every webhook must pass the Node SDK's `pusher.webhook({headers, rawBody}).isValid()`
// (with `getEvents()`/`getTime()` read from it) and the Python SDK's `validate_webhook` (run through
// python/validate_webhook.py); a tampered copy must fail both.
//
//   node node/webhooks.mjs 8|7      (pusher-js 8.x or 7.6.0)

import { createServer } from 'node:http';
import { inspect } from 'node:util';
import {
  Recorder,
  connected,
  expect,
  expectEqual,
  nodeSdk,
  occupied,
  onCleanup,
  pusherClient,
  pusherJs,
  required,
  restGet,
  run,
  runPython,
  server,
  settled,
  signedBy,
  sleep,
  step,
  subscribed,
  until,
  within,
} from '../lib/harness.mjs';

const PusherJs = await pusherJs(process.argv[2]);
const WEBHOOK_PORT = Number(required('HERALD_WEBHOOK_PORT'));
const WEBHOOK_PATH = '/pusher/webhooks';

const LOBBY = 'lobby';
const ROOM = 'presence-room';
const PRIVATE = 'private-chat';
const CACHE = 'cache-scores';
const RELOAD = 'reload-page';

/** Removals are held this long (Herald's default, as Pusher's "up to 3 s")... */
const REMOVAL_DELAY_MS = 3_000;
/** ...so they must not arrive sooner than this after the leave... */
const EARLIEST_REMOVAL_MS = 2_500;
/** ...and should arrive by this (the delay, a 100 ms tick, delivery, and a loaded machine). */
const LATEST_REMOVAL_MS = 5_500;
/** How long a network wait may take on a loaded machine before it counts as never. */
const WAIT_MS = 10_000;

/** The fields Herald adds nothing to: what the receiver stores next to each event. */
const RECEIPT_FIELDS = ['at', 'hook', 'valid'];

/** An event without the receiver's bookkeeping. */
function bare(event) {
  return Object.fromEntries(Object.entries(event).filter(([field]) => !RECEIPT_FIELDS.includes(field)));
}

/** "name channel [user_id]", for counting and messages. */
function label(event) {
  return [event.name, event.channel, event.user_id].filter((part) => part !== undefined).join(' ');
}

/** A test for the events called `name` on `channel` (and for `user_id`, when given). */
function is(name, channel, userId) {
  return (e) => e.name === name && e.channel === channel && (userId === undefined || e.user_id === userId);
}

/**
 * The webhook endpoint: an HTTP server that answers 200 to everything and keeps, for each request,
 * its method, path, headers, raw body and arrival time, with what the Node SDK made of it. Each
 * event of each webhook goes to `events` as `{ ...event, at, hook, valid }`.
 */
async function startReceiver(sdk) {
  const hooks = [];
  const events = new Recorder('the webhook receiver');
  const receiver = createServer((request, response) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      const at = Date.now();
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const hook = { n: hooks.length + 1, at, method: request.method, url: request.url, headers: request.headers, rawBody };
      const webhook = sdk.webhook({ headers: request.headers, rawBody });
      hook.valid = webhook.isValid();
      try {
        hook.time = webhook.getTime().getTime();
        hook.events = webhook.getEvents();
      } catch (err) {
        hook.error = err.message;
        hook.events = [];
      }
      hooks.push(hook);
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end('ok');
      step(`webhook #${hook.n} (${hook.valid ? 'valid' : 'INVALID'} for the Node SDK): ${rawBody}`);
      for (const event of Array.isArray(hook.events) ? hook.events : []) {
        events.push({ ...event, at, hook: hook.n, valid: hook.valid });
      }
    });
  });
  // Node closes a keep-alive connection after 5 s of silence; a webhook Herald sends on one just as
  // it closes fails and is retried a second later, which would count against the removal timing.
  // Herald's pool is bounded, and the cleanup below closes every connection.
  receiver.keepAliveTimeout = 0;
  await within(
    WAIT_MS,
    `the webhook receiver to serve the socket on 127.0.0.1:${WEBHOOK_PORT}`,
    new Promise((resolve, reject) => {
      receiver.once('error', reject);
      // stdin is the socket e2e.rs has been listening on since before herald started: binding the
      // port again here could find it taken by another process in the meantime.
      receiver.listen({ fd: 0 }, resolve);
    }),
  );
  const { port } = receiver.address();
  if (port !== WEBHOOK_PORT) throw new Error(`the socket on stdin listens on port ${port}, not ${WEBHOOK_PORT}`);
  onCleanup(
    () =>
      new Promise((resolve) => {
        // Herald keeps its webhook connections alive; close them so that `close` can finish.
        receiver.closeAllConnections();
        receiver.close(() => resolve());
      }),
  );
  return { hooks, events };
}

/** Wait for `count` webhook events matching `test`. */
function webhook(what, test, count = 1, ms = WAIT_MS) {
  return events.waitFor(ms, what, test, count);
}

/** Check that each removal arrived about the delay after `leftAt`. */
function expectDelayed(removals, leftAt, what) {
  for (const removal of removals) {
    const after = removal.at - leftAt;
    expect(
      after >= EARLIEST_REMOVAL_MS && after <= LATEST_REMOVAL_MS,
      `${label(removal)} arrived ${after} ms after ${what} (expected about ${REMOVAL_DELAY_MS} ms: ` +
        `${EARLIEST_REMOVAL_MS}–${LATEST_REMOVAL_MS} ms)`,
    );
  }
}

const sdk = nodeSdk();
let events;

run(async () => {
  const receiver = await startReceiver(sdk);
  const { hooks } = receiver;
  events = receiver.events;

  // ---- clients ----
  const p1 = pusherClient(PusherJs, 'P1', signedBy(sdk));
  const p2 = pusherClient(PusherJs, 'P2', signedBy(sdk));
  const annTab1 = pusherClient(PusherJs, 'ann tab 1', signedBy(sdk, { presence: { user_id: 'ann', user_info: { name: 'Ann' } } }));
  const annTab2 = pusherClient(PusherJs, 'ann tab 2', signedBy(sdk, { presence: { user_id: 'ann', user_info: { name: 'Ann' } } }));
  const ben = pusherClient(PusherJs, 'ben', signedBy(sdk, { presence: { user_id: 'ben', user_info: { name: 'Ben' } } }));
  const r1 = pusherClient(PusherJs, 'R1 (before the reload)', signedBy(sdk));
  const p1Socket = await connected(p1, 'P1');
  await connected(p2, 'P2');
  const benSocket = await connected(ben, 'ben');

  // ---- public channel: occupied on the first subscribe only ----
  await subscribed(p1, LOBBY, 'P1');
  await webhook(`channel_occupied for ${LOBBY} after P1 subscribed`, is('channel_occupied', LOBBY));
  await subscribed(p2, LOBBY, 'P2');

  // ---- presence channel: one member_added per user ----
  await subscribed(annTab1, ROOM, 'ann tab 1');
  await webhook(`channel_occupied for ${ROOM} after ann's first tab joined`, is('channel_occupied', ROOM));
  await webhook(`member_added for ann on ${ROOM}`, is('member_added', ROOM, 'ann'));
  await subscribed(ben, ROOM, 'ben');
  await webhook(`member_added for ben on ${ROOM}`, is('member_added', ROOM, 'ben'));
  await subscribed(annTab2, ROOM, 'ann tab 2');

  // ---- client events: private (no user_id) and presence (with the sender's user_id) ----
  await subscribed(p1, PRIVATE, 'P1');
  const { events: p2Private } = await subscribed(p2, PRIVATE, 'P2');
  const note = { text: 'hello “webhooks” \\ </script>', n: 1, list: [1, null, true] };
  expect(p1.channel(PRIVATE).trigger('client-note', note) === true, `P1 sent client-note on ${PRIVATE}`);
  await p2Private.waitFor(WAIT_MS, 'client-note relayed to P2', (e) => e.event === 'client-note');
  const [privateEvent] = await webhook(`client_event for client-note on ${PRIVATE}`, is('client_event', PRIVATE));
  expectEqual(
    Object.keys(bare(privateEvent)).sort(),
    ['channel', 'data', 'event', 'name', 'socket_id'],
    'the private client_event has channel, data, event, name and socket_id (no user_id)',
  );
  expectEqual(privateEvent.event, 'client-note', 'client_event names the client event');
  expectEqual(privateEvent.socket_id, p1Socket, "client_event carries the sender's socket_id");
  expect(typeof privateEvent.data === 'string', `client_event data is a string: ${inspect(privateEvent.data)}`);
  expectEqual(JSON.parse(privateEvent.data), note, 'client_event data is the JSON text of the object P1 sent');

  const wave = { hi: 'ann' };
  expect(ben.channel(ROOM).trigger('client-wave', wave) === true, `ben sent client-wave on ${ROOM}`);
  const [presenceEvent] = await webhook(`client_event for client-wave on ${ROOM}`, is('client_event', ROOM));
  expectEqual(
    bare(presenceEvent),
    { name: 'client_event', channel: ROOM, event: 'client-wave', data: JSON.stringify(wave), socket_id: benSocket, user_id: 'ben' },
    "the presence client_event also carries the sender's user_id",
  );
  // The second tab's join was handled before ben's client event; its member_added would be out by now.
  expectEqual(events.matching(is('member_added', ROOM, 'ann')).length, 1, "ann's second tab added no member_added");

  // ---- cache channel: a miss per subscriber, one cache_miss webhook ----
  const { events: p1Cache } = await subscribed(p1, CACHE, 'P1');
  await p1Cache.waitFor(WAIT_MS, `pusher:cache_miss on ${CACHE} for P1`, (e) => e.event === 'pusher:cache_miss');
  await webhook(`cache_miss for ${CACHE}`, is('cache_miss', CACHE));
  const { events: p2Cache } = await subscribed(p2, CACHE, 'P2');
  await p2Cache.waitFor(WAIT_MS, `pusher:cache_miss on ${CACHE} for P2`, (e) => e.event === 'pusher:cache_miss');

  // ---- the channel that will be reloaded ----
  await subscribed(r1, RELOAD, 'R1');
  await webhook(`channel_occupied for ${RELOAD} after R1 subscribed`, is('channel_occupied', RELOAD));

  // The page after the reload is connected beforehand, so that the gap below is one REST poll and
  // one subscription, not a whole connection set-up on a busy machine.
  const r2 = pusherClient(PusherJs, 'R2 (after the reload)', signedBy(sdk));
  await connected(r2, 'R2');

  // ---- first leaves: nobody is gone for good yet ----
  const firstLeave = Date.now();
  const hooksBeforeFirstLeave = hooks.length;
  step(`ann closes tab 1, P1 unsubscribes from ${LOBBY}, R1 reloads`);
  annTab1.disconnect();
  p1.unsubscribe(LOBBY);
  r1.disconnect();
  await until(WAIT_MS, `REST to report ${RELOAD} unoccupied after R1 left`, async () => !(await occupied(sdk, RELOAD)));
  await subscribed(r2, RELOAD, 'R2');
  // Herald drops a held channel_vacated when the channel is occupied again within the delay,
  // counted from when it saw R1 leave (after `firstLeave`) to when it took R2's subscription
  // (before R2 heard back), so the gap measured here bounds Herald's from above. The check below
  // needs that gap inside the delay, with a margin for the dispatcher's 100 ms tick; a tighter
  // bound would only measure how busy the machine is.
  const reloadGap = Date.now() - firstLeave;
  expect(
    reloadGap < EARLIEST_REMOVAL_MS,
    `R2 joined ${RELOAD} ${reloadGap} ms after R1 left it (within ${EARLIEST_REMOVAL_MS} ms, inside the ${REMOVAL_DELAY_MS} ms delay)`,
  );
  await settled(
    async () => (await restGet(sdk, `/channels/${ROOM}/users`)).users.map((u) => u.id).sort(),
    ['ann', 'ben'],
    `ann is still on ${ROOM} through her second tab`,
  );

  // Past the delay (and then some), none of these may have produced a removal.
  const quietUntil = firstLeave + REMOVAL_DELAY_MS + 1_000;
  await within(REMOVAL_DELAY_MS + WAIT_MS, 'the removal delay to pass after the first leaves', sleep(quietUntil - Date.now()));
  expectEqual(
    events.matching((e) => is('member_removed', ROOM, 'ann')(e) || is('channel_vacated', LOBBY)(e)).map(label),
    [],
    `no member_removed for ann (her second tab is open) and no channel_vacated for ${LOBBY} (P2 is on it)`,
  );
  expectEqual(
    events
      .matching((e) => e.channel === RELOAD && e.hook > hooksBeforeFirstLeave)
      .filter((e) => e.name === 'channel_vacated' || e.name === 'channel_occupied')
      .map(label),
    [],
    `no channel_vacated/channel_occupied pair for ${RELOAD} (R2 joined ${reloadGap} ms after R1 left)`,
  );

  // ---- last leaves: every removal, about 3 s later ----
  const lastLeave = Date.now();
  const hooksBeforeLastLeave = hooks.length;
  step(`P2 unsubscribes from ${LOBBY}; ann's tab 2, ben, P1, P2 and R2 disconnect`);
  p2.unsubscribe(LOBBY);
  for (const client of [annTab2, ben, p1, p2, r2]) client.disconnect();
  const removals = [
    is('member_removed', ROOM, 'ann'),
    is('member_removed', ROOM, 'ben'),
    ...[LOBBY, ROOM, PRIVATE, CACHE, RELOAD].map((channel) => is('channel_vacated', channel)),
  ];
  const removed = await webhook(
    `member_removed for ann and ben and channel_vacated for ${[LOBBY, ROOM, PRIVATE, CACHE, RELOAD].join(', ')}`,
    (e) => e.hook > hooksBeforeLastLeave && removals.some((test) => test(e)),
    removals.length,
    LATEST_REMOVAL_MS + 3_000,
  );
  expectDelayed(removed, lastLeave, 'the last leaves');

  // Anything late or duplicated would come within a second.
  await within(WAIT_MS, 'a quiet second after the last removal', sleep(1_000));

  // ---- every webhook, as the SDKs see it ----
  expect(hooks.length > 0, `the receiver got ${hooks.length} webhooks`);
  for (const hook of hooks) {
    const what = `webhook #${hook.n} ${hook.rawBody}`;
    expectEqual([hook.method, hook.url], ['POST', WEBHOOK_PATH], `${what}: POST to ${WEBHOOK_PATH}`);
    expectEqual(hook.headers['content-type'], 'application/json', `${what}: Content-Type`);
    expectEqual(hook.headers['x-pusher-key'], server.key, `${what}: X-Pusher-Key`);
    expect(hook.valid === true, `${what}: the Node SDK's isValid() accepts it${hook.error ? ` (${hook.error})` : ''}`);
    expect(Array.isArray(hook.events) && hook.events.length === 1, `${what}: one event per webhook (batching is off)`);
    const skew = hook.time - hook.at;
    expect(Math.abs(skew) < 5_000, `${what}: getTime() is ${skew} ms from its arrival`);
  }
  const tampered = { ...hooks[0], rawBody: hooks[0].rawBody.replace(/"channel":"/, '"channel":"x') };
  expect(tampered.rawBody !== hooks[0].rawBody, 'a tampered copy of webhook #1 differs from it');
  expect(!sdk.webhook({ headers: tampered.headers, rawBody: tampered.rawBody }).isValid(), "the Node SDK's isValid() rejects the tampered copy");

  const asSent = [...hooks, tampered].map((hook) => ({
    key: hook.headers['x-pusher-key'] ?? '',
    signature: hook.headers['x-pusher-signature'] ?? '',
    body: hook.rawBody,
  }));
  const python = JSON.parse(await runPython('python/validate_webhook.py', [], { input: JSON.stringify(asSent) }));
  expectEqual(python.length, asSent.length, 'the Python SDK answered for every webhook and the tampered copy');
  hooks.forEach((hook, i) => {
    expectEqual(python[i], JSON.parse(hook.rawBody), `webhook #${hook.n}: the Python SDK's validate_webhook accepts it`);
  });
  expectEqual(python[hooks.length], null, "the Python SDK's validate_webhook rejects the tampered copy");

  // ---- the whole sequence ----
  const counts = {};
  for (const event of events.entries.filter((e) => e.name !== 'subscription_count')) {
    counts[label(event)] = (counts[label(event)] ?? 0) + 1;
  }
  const channels = [LOBBY, ROOM, PRIVATE, CACHE, RELOAD];
  const expected = Object.fromEntries(
    [
      ...channels.map((channel) => `channel_occupied ${channel}`),
      ...channels.map((channel) => `channel_vacated ${channel}`),
      `member_added ${ROOM} ann`,
      `member_added ${ROOM} ben`,
      `member_removed ${ROOM} ann`,
      `member_removed ${ROOM} ben`,
      `client_event ${PRIVATE}`,
      `client_event ${ROOM} ben`,
      `cache_miss ${CACHE}`,
    ].map((key) => [key, 1]),
  );
  const sorted = (object) => Object.fromEntries(Object.entries(object).sort(([a], [b]) => a.localeCompare(b)));
  expectEqual(
    sorted(counts),
    sorted(expected),
    'each webhook event exactly once over the scenario (subscription_count aside): occupied/vacated per channel, ' +
      'member_added/member_removed per user, both client events, one cache_miss',
  );
  const [reloadOccupied] = events.matching(is('channel_occupied', RELOAD));
  expect(reloadOccupied.hook <= hooksBeforeFirstLeave, `${RELOAD}'s only channel_occupied came before the reload`);
  step('webhooks behave as on Pusher and both SDKs accept every one');
});
