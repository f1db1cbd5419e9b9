// Client events (`channel.trigger('client-…', data)`) between pusher-js connections:
// - on a private channel the other subscriber gets the data unchanged (objects, strings, arrays)
//   and no `metadata.user_id`; on a presence channel it also gets `metadata.user_id` of the sender;
//   the sender never gets its own events;
// - a client event on a public channel, or on a channel the sender is not subscribed to, is
//   answered with a `pusher:error` and relayed to nobody;
// - the rate limit: a fresh connection sending 15 client events at once gets exactly the first 10
//   through and an `error` with code 4301 for each of the others (allowing for the bucket's refill,
//   one more per 100 ms, should the server take that long over the burst), stays connected with the
//   same socket id, and can send again a second later.
//
//   node node/client_events.mjs 8|7      (pusher-js 8.x or 7.6.0)

import {
  Recorder,
  connected,
  expect,
  expectEqual,
  nodeSdk,
  pusherClient,
  pusherJs,
  run,
  signedBy,
  sleep,
  step,
  subscribed,
} from '../lib/harness.mjs';

const PusherJs = await pusherJs(process.argv[2]);

const PRIVATE = 'private-chat';
const PRESENCE = 'presence-room';
const PUBLIC = 'lobby';

/** Every `name` event on `channel`, with the metadata pusher-js passes to callbacks. */
function recordClientEvents(channel, names, label) {
  const recorder = new Recorder(label);
  for (const name of names) channel.bind(name, (data, metadata) => recorder.push({ event: name, data, metadata }));
  return recorder;
}

/** `pusher:error`s a connection reported, as their `data` ({code, message}). */
function recordErrors(client, label) {
  const recorder = new Recorder(label);
  client.connection.bind('error', (err) => {
    if (err?.type === 'PusherError') recorder.push(err.data);
  });
  return recorder;
}

/** Trigger `event` through REST on `channel` and wait until each recorder has it, so that anything
 * the server queued for those connections earlier has arrived too. */
async function barrier(sdk, channel, event, recorders) {
  await sdk.trigger(channel, event, {});
  for (const recorder of recorders) await recorder.waitFor(10_000, `the REST event ${event}`, (e) => e.event === event);
}

run(async () => {
  const sdk = nodeSdk();
  const EVENTS = ['client-typing', 'client-wave', 'client-hello', 'client-burst', 'after-1', 'after-2', 'after-burst'];

  const ann = pusherClient(PusherJs, 'S (ann)', signedBy(sdk, { presence: { user_id: 'ann', user_info: { name: 'Ann' } } }));
  const ben = pusherClient(PusherJs, 'R (ben)', signedBy(sdk, { presence: { user_id: 'ben' } }));
  const annErrors = recordErrors(ann, 'S errors');
  const channels = {};
  for (const [name, client] of [['ann', ann], ['ben', ben]]) {
    for (const channel of [PRIVATE, PRESENCE, PUBLIC]) {
      // subscribed() subscribes at once; binding before awaiting it means that nothing the channel
      // emits once it is confirmed can slip past the recorder, whatever else is going on then.
      const confirmed = subscribed(client, channel, name);
      channels[`${name} ${channel}`] = recordClientEvents(client.channel(channel), EVENTS, `${name} ${channel}`);
      await confirmed;
    }
  }

  // ---- private channel: ann -> ben ----
  const payloads = [
    { text: 'typing… “quotes” \\ and </script>', at: [1, 2.5, null], nested: { deep: { ok: true } } },
    'just a string, not JSON',
    [1, 'two', { three: 3 }],
  ];
  const annPrivate = ann.channel(PRIVATE);
  for (const data of payloads) expect(annPrivate.trigger('client-typing', data) === true, 'pusher-js sent client-typing');
  const benPrivate = channels[`ben ${PRIVATE}`];
  const received = await benPrivate.waitFor(10_000, 'three client-typing events', (e) => e.event === 'client-typing', 3);
  expectEqual(received.map((e) => e.data), payloads, 'ben got the private client events with their data unchanged, in order');
  expectEqual(
    received.map((e) => e.metadata?.user_id),
    [undefined, undefined, undefined],
    'private client events carry no user_id',
  );

  // ---- presence channel: both ways, with the sender's user id ----
  const wave = { emoji: '👋', to: 'ben' };
  ann.channel(PRESENCE).trigger('client-wave', wave);
  const [toBen] = await channels[`ben ${PRESENCE}`].waitFor(10_000, "ann's client-wave", (e) => e.event === 'client-wave');
  expectEqual(toBen.data, wave, 'ben got the presence client event unchanged');
  expectEqual(toBen.metadata, { user_id: 'ann' }, "ben's metadata names the sender, ann");
  const back = { emoji: '🙂', to: 'ann' };
  ben.channel(PRESENCE).trigger('client-wave', back);
  const [toAnn] = await channels[`ann ${PRESENCE}`].waitFor(10_000, "ben's client-wave", (e) => e.event === 'client-wave');
  expectEqual(toAnn.data, back, 'ann got the presence client event unchanged');
  expectEqual(toAnn.metadata, { user_id: 'ben' }, "ann's metadata names the sender, ben");

  // ---- refused: public channel, and a channel the sender never joined ----
  ann.channel(PUBLIC).trigger('client-hello', { on: 'public' });
  const [publicError] = await annErrors.waitFor(10_000, 'a pusher:error for a client event on a public channel', () => true);
  step(`public channel client event refused with ${JSON.stringify(publicError)}`);
  ann.send_event('client-hello', { on: 'not subscribed' }, 'private-elsewhere');
  await annErrors.waitFor(10_000, 'a pusher:error for a client event on an unsubscribed channel', () => true, 2);
  expect(annErrors.entries.every((e) => e.code !== 4301), 'neither refusal is a rate-limit error');

  // Everything before these REST events has reached both connections: check what did not arrive.
  await barrier(sdk, PRIVATE, 'after-1', [channels[`ann ${PRIVATE}`], channels[`ben ${PRIVATE}`]]);
  await barrier(sdk, PRESENCE, 'after-1', [channels[`ann ${PRESENCE}`], channels[`ben ${PRESENCE}`]]);
  await barrier(sdk, PUBLIC, 'after-1', [channels[`ann ${PUBLIC}`], channels[`ben ${PUBLIC}`]]);
  const clientEvents = (key) => channels[key].matching((e) => e.event.startsWith('client-')).map((e) => e.event);
  expectEqual(clientEvents(`ann ${PRIVATE}`), [], 'ann never got her own private client events');
  expectEqual(clientEvents(`ann ${PRESENCE}`), ['client-wave'], "ann got only ben's wave on the presence channel, not her own");
  expectEqual(clientEvents(`ben ${PRESENCE}`), ['client-wave'], "ben got only ann's wave on the presence channel, not his own");
  expectEqual(clientEvents(`ben ${PUBLIC}`), [], 'nothing was relayed on the public channel');
  expectEqual(clientEvents(`ben ${PRIVATE}`).length, 3, 'ben got exactly the three private client events');

  // ---- rate limit: 15 at once from a fresh connection ----
  const flood = pusherClient(PusherJs, 'F (flooder)', signedBy(sdk));
  const floodErrors = recordErrors(flood, 'F errors');
  const floodSocket = await connected(flood, 'F');
  const { channel: floodPrivate } = await subscribed(flood, PRIVATE, 'F');
  const burstSent = Date.now();
  for (let n = 0; n < 15; n++) floodPrivate.trigger('client-burst', { n });
  // The server handles a connection's frames in order: once this subscription is confirmed, all
  // 15 client events have been handled.
  await subscribed(flood, 'after-the-burst', 'F');
  const burstHandledWithin = Date.now() - burstSent;
  await barrier(sdk, PRIVATE, 'after-burst', [channels[`ben ${PRIVATE}`]]);
  const burst = channels[`ben ${PRIVATE}`].matching((e) => e.event === 'client-burst').map((e) => e.data.n);
  const limited = floodErrors.matching((e) => e.code === 4301);
  // The bucket holds 10 and refills one per 100 ms. The server handled the 15 frames within
  // `burstHandledWithin`, so at most that many refills can have let more through: none when it was
  // quick (the usual case, where exactly 10 pass), a few when a busy machine stalled it mid-burst.
  const refills = Math.floor(burstHandledWithin / 100);
  step(`the burst was handled within ${burstHandledWithin} ms: up to ${refills} refilled tokens`);
  expectEqual(burst.slice(0, 10), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'the first 10 of 15 client events sent at once arrived, in order');
  expect(
    burst.length <= 10 + refills && burst.every((n, i) => i === 0 || n > burst[i - 1]),
    `no more of the 15 arrived than the refills allow (${burst.length} arrived: ${JSON.stringify(burst)})`,
  );
  expect(
    limited.length === 15 - burst.length,
    `each of the ${15 - burst.length} events refused got pusher:error 4301 (${limited.length} of them: ${JSON.stringify(limited[0])})`,
  );
  expect(
    flood.connection.state === 'connected' && flood.connection.socket_id === floodSocket,
    'the flooder is still connected with the same socket id',
  );
  // A second later the allowance is back.
  await sleep(1_100);
  floodPrivate.trigger('client-burst', { n: 'later' });
  await benPrivate.waitFor(10_000, 'the client event sent a second after the burst', (e) => e.data?.n === 'later');
  expect(flood.connection.state === 'connected', 'the flooder is still connected after sending again');
  step('client events behave as on Pusher');
});
