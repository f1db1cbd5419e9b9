// The official PHP SDK's user endpoints, webhook validation and API errors against Herald, checked
// from pusher-js and from the SDK itself:
// - pusher-js signs in through a custom user authenticator that runs the SDK's authenticateUser
//   (user data that PHP's json_encode escapes): Herald answers `pusher:signin_success`;
// - sendToUser('uma', …) reaches uma's `pusher.user` and not otto's connection;
// - terminateUserConnections('uma') answers {} and closes uma's connection for good (pusher-js stays
//   `disconnected`), while otto's stays up;
// - every webhook Herald sent meanwhile (channel_occupied, member_added, member_removed, …), raw body
//   and headers as received (the header names as sent: the SDK reads `X-Pusher-Key` and
//   `X-Pusher-Signature` case-sensitively), passes the SDK's webhook(), which returns the body's
//   time_ms and events; a tampered body and another key are refused with PusherException;
// - a wrong secret, an unknown app id and event data over 10 KB (trigger and triggerBatch) surface
//   as the SDK's ApiErrorException with 401, 404 and 413, and publish nothing.
//
// No private-encrypted- channel here: the SDK's webhook() (7.2.7) throws a TypeError on any event of
// such a channel without `data`, such as channel_occupied, whatever server sent it.
//
// An endpoint on 127.0.0.1:$HERALD_WEBHOOK_PORT receives the webhooks (the socket listening on that
// port is this script's stdin; see e2e.rs).
//
//   node node/php_sdk_users.mjs 8|7      (pusher-js 8.x or 7.6.0)

import { createServer } from 'node:http';
import {
  Recorder,
  connected,
  expect,
  expectEqual,
  onCleanup,
  pusherClient,
  pusherJs,
  recordEvents,
  recordFrames,
  required,
  run,
  server,
  sleep,
  step,
  subscribed,
  until,
  within,
} from '../lib/harness.mjs';
import { php1, phpAnswers, phpSigned } from '../lib/php_sdk.mjs';

const PusherJs = await pusherJs(process.argv[2]);
const WEBHOOK_PORT = Number(required('HERALD_WEBHOOK_PORT'));

const ROOM = 'presence-php-hooks';
const ERRORS = 'php-errors';
const WAIT_MS = 10_000;
/**
 * How long a subscription or sign-in may take when its token comes from a PHP process: with every
 * core busy, starting one takes seconds.
 */
const SIGNED_MS = 30_000;
/** Removal webhooks are held about 3 s; on a loaded machine, allow for much more. */
const REMOVAL_WAIT_MS = 20_000;

/**
 * The webhook endpoint: answers 200 to every request and keeps its raw body and its headers as
 * they came (names in the case Herald sent them), each of its events going to `events` as
 * `{ ...event, hook }`.
 */
async function startReceiver() {
  const hooks = [];
  const events = new Recorder('the webhook receiver');
  const receiver = createServer((request, response) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const headers = {};
      for (let i = 0; i < request.rawHeaders.length; i += 2) headers[request.rawHeaders[i]] = request.rawHeaders[i + 1];
      const hook = { n: hooks.length + 1, headers, rawBody };
      hooks.push(hook);
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end('ok');
      step(`webhook #${hook.n}: ${rawBody}`);
      let body;
      try {
        body = JSON.parse(rawBody);
      } catch {
        return;
      }
      for (const event of Array.isArray(body.events) ? body.events : []) events.push({ ...event, hook: hook.n });
    });
  });
  await within(
    WAIT_MS,
    `the webhook receiver to serve the socket on 127.0.0.1:${WEBHOOK_PORT}`,
    new Promise((resolve, reject) => {
      receiver.once('error', reject);
      // stdin is the socket e2e.rs has been listening on since before herald started.
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

/** A pusher-js client signed in as `user` with the PHP SDK's token, and on ROOM as that user. */
async function signedIn(name, user) {
  const client = pusherClient(
    PusherJs,
    name,
    phpSigned({ user, presence: { user_id: user.id, user_info: user.user_info } }),
  );
  const frames = recordFrames(client, `${name} frames`);
  const userEvents = recordEvents(client.user, `${name} pusher.user`);
  const states = [];
  client.connection.bind('state_change', ({ current }) => states.push(current));
  await connected(client, name);
  client.signin();
  const [success] = await frames.waitFor(SIGNED_MS, `pusher:signin_success for ${user.id}`, (f) => f.event === 'pusher:signin_success');
  expectEqual(JSON.parse(success.data.user_data), user, `${name}: Herald accepted the PHP SDK's authenticateUser token`);
  await frames.waitFor(WAIT_MS, `subscription_succeeded on #server-to-user-${user.id}`, (f) =>
    f.event === 'pusher_internal:subscription_succeeded' && f.channel === `#server-to-user-${user.id}`,
  );
  const { events: room } = await subscribed(client, ROOM, name, SIGNED_MS);
  return { name, client, frames, userEvents, states, room };
}

run(async () => {
  const { hooks, events } = await startReceiver();
  const webhook = (what, test, ms = WAIT_MS) => events.waitFor(ms, what, test);

  // ---- sign-in with the PHP SDK's token ----
  const uma = await signedIn('U (uma)', { id: 'uma', user_info: { name: 'Uma Ōtsuka', home: 'https://example.com/uma' } });
  const otto = await signedIn('O (otto)', { id: 'otto', user_info: { name: 'Otto' } });
  const { events: ottoErrors } = await subscribed(otto.client, ERRORS, 'O');
  await webhook(`channel_occupied for ${ROOM}`, (e) => e.name === 'channel_occupied' && e.channel === ROOM);
  await webhook('member_added for uma', (e) => e.name === 'member_added' && e.user_id === 'uma');
  await webhook('member_added for otto', (e) => e.name === 'member_added' && e.user_id === 'otto');

  // ---- API errors as ApiErrorException ----
  const failed = (answers) => answers.map(({ result, error }) => (error ? { class: error.class, status: error.status } : { result }));
  const apiError = (status) => ({ class: 'Pusher\\ApiErrorException', status });
  const wrongSecret = await phpAnswers(
    [
      { call: 'trigger', args: [ERRORS, 'wrong-secret', { n: 1 }] },
      { call: 'getChannels', args: [] },
    ],
    { secret: 'not-the-secret' },
  );
  expectEqual(failed(wrongSecret), [apiError(401), apiError(401)], 'a wrong secret: ApiErrorException 401 for trigger and getChannels');
  const unknownApp = await phpAnswers(
    [
      { call: 'trigger', args: [ERRORS, 'unknown-app', { n: 2 }] },
      { call: 'getChannelInfo', args: [ERRORS] },
    ],
    { app_id: '999' },
  );
  expectEqual(failed(unknownApp), [apiError(404), apiError(404)], 'an unknown app id: ApiErrorException 404 for trigger and getChannelInfo');
  const tooLarge = await phpAnswers([
    { call: 'trigger', args: [ERRORS, 'too-large', { text: 'x'.repeat(11_000) }] },
    { call: 'triggerBatch', args: [[{ channel: ERRORS, name: 'too-large', data: { text: 'x'.repeat(11_000) } }]] },
  ]);
  expectEqual(failed(tooLarge), [apiError(413), apiError(413)], 'event data over 10 KB: ApiErrorException 413 for trigger and triggerBatch');
  for (const answer of [...wrongSecret, ...unknownApp, ...tooLarge]) {
    expect(typeof JSON.parse(answer.error.message).error === 'string', `the exception's message is Herald's answer: ${answer.error.message}`);
  }
  expectEqual(await php1('trigger', [ERRORS, 'after-errors', { ok: true }]), {}, 'a good trigger after the refused ones');
  await ottoErrors.waitFor(WAIT_MS, "'after-errors'", (e) => e.event === 'after-errors');
  expectEqual(
    ottoErrors.entries.filter((e) => !e.event.startsWith('pusher:')).map((e) => e.event),
    ['after-errors'],
    `nothing the refused calls sent reached ${ERRORS}`,
  );

  // ---- sendToUser ----
  const note = { text: 'Your order shipped ✓ </b>', ids: [1, 2], extra: null };
  expectEqual(await php1('sendToUser', ['uma', 'note', note]), {}, "sendToUser('uma', 'note', …) answered {}");
  const [got] = await uma.userEvents.waitFor(WAIT_MS, "sendToUser('uma', 'note')", (e) => e.event === 'note');
  expectEqual(got.data, note, "uma's pusher.user got the note unchanged");
  // otto's own event comes after anything meant for uma that might have reached him.
  await php1('sendToUser', ['otto', 'done', { last: true }]);
  await otto.userEvents.waitFor(WAIT_MS, "sendToUser('otto', 'done')", (e) => e.event === 'done');
  expectEqual(otto.userEvents.matching((e) => e.event === 'note'), [], "otto did not get uma's note");

  // ---- terminateUserConnections ----
  const hooksBefore = hooks.length;
  expectEqual(await php1('terminateUserConnections', ['uma']), {}, "terminateUserConnections('uma') answered {}");
  await until(WAIT_MS, "U: pusher-js state 'disconnected'", () => uma.client.connection.state === 'disconnected');
  const told = uma.frames.matching((f) => f.event === 'pusher:error').map((f) => f.data);
  step(`uma's connection was told: ${JSON.stringify(told)}`);
  await otto.room.waitFor(WAIT_MS, 'pusher:member_removed for uma', (e) => e.event === 'pusher:member_removed' && e.data.id === 'uma');
  await webhook(
    'member_removed for uma after her connection was terminated',
    (e) => e.name === 'member_removed' && e.user_id === 'uma' && e.hook > hooksBefore,
    REMOVAL_WAIT_MS,
  );
  // pusher-js would have retried within about a second if it meant to.
  await within(WAIT_MS, 'a quiet 2.5 s after the termination', sleep(2_500));
  expectEqual(uma.states.slice(uma.states.indexOf('disconnected')), ['disconnected'], 'U never tried to reconnect');
  expect(otto.client.connection.state === 'connected', "otto's connection is untouched");
  await php1('sendToUser', ['otto', 'still-here', { ok: true }]);
  await otto.userEvents.waitFor(WAIT_MS, "sendToUser('otto') after uma was terminated", (e) => e.event === 'still-here');

  // ---- every webhook through the SDK's webhook() ----
  const received = [...hooks];
  for (const hook of received) {
    expectEqual(
      [hook.headers['X-Pusher-Key'], typeof hook.headers['X-Pusher-Signature']],
      [server.key, 'string'],
      `webhook #${hook.n} has X-Pusher-Key and X-Pusher-Signature spelled so`,
    );
  }
  const [first] = received;
  const tampered = first.rawBody.replace('"events":[', '"events":[{"name":"channel_vacated","channel":"forged"},');
  expect(tampered !== first.rawBody, 'a tampered copy of webhook #1 differs from it');
  const otherKey = { ...first.headers, 'X-Pusher-Key': 'some-other-key' };
  const answers = await phpAnswers([
    ...received.map((hook) => ({ call: 'webhook', args: [hook.headers, hook.rawBody] })),
    { call: 'webhook', args: [first.headers, tampered] },
    { call: 'webhook', args: [otherKey, first.rawBody] },
  ]);
  received.forEach((hook, i) => {
    const { time_ms: timeMs, events: sent } = JSON.parse(hook.rawBody);
    expectEqual(answers[i], { result: { time_ms: timeMs, events: sent } }, `webhook #${hook.n}: the SDK's webhook() accepts it`);
  });
  const refused = answers.slice(received.length).map(({ error }) => error && { class: error.class, message: error.message });
  const invalid = (signature) => ({
    class: 'Pusher\\PusherException',
    message: `Received WebHook with invalid signature: got ${signature}.`,
  });
  expectEqual(
    refused,
    [invalid(first.headers['X-Pusher-Signature']), invalid(first.headers['X-Pusher-Signature'])],
    "the SDK's webhook() refuses a tampered body and another app's key",
  );
  step(`the PHP SDK's user endpoints, webhook validation and errors work against Herald (${received.length} webhooks)`);
});
