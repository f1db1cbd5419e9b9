// Laravel Echo 2.x on pusher-js 8, the way a Laravel front end uses it, against Node SDK triggers
// standing in for Laravel's broadcaster:
// - `channel('orders').listen('.shipped')` gets event `shipped`; `listen('OrderShipped')` gets the
//   namespaced `App\Events\OrderShipped` (and neither gets the other's event);
// - `private('chat')` authorized in-process; `whisper('typing')` reaches the other client's
//   `listenForWhisper('typing')` and not the sender; a trigger with `socket_id: echo.socketId()`
//   (Laravel's `toOthers()`) skips that client;
// - `join('room')`: `here` lists the members' info, `joining` and `leaving` fire with the other
//   user's info as the second Echo client joins and leaves; whispers work there too;
// - `.error()` on a private channel whose authorizer returns a token signed with the wrong secret:
//   Echo calls it with the `pusher:subscription_error` payload ({type: 'AuthError', status: 401}).
//
// One Echo builds its own pusher-js from the `Pusher` option (as `window.Pusher` would), the other
// is handed a ready pusher-js instance through `client`.
//
//   node node/laravel_echo.mjs

import Echo from 'laravel-echo';
import Pusher from 'pusher';
import {
  Recorder,
  expect,
  expectEqual,
  nodeSdk,
  onCleanup,
  pusherClient,
  pusherJs,
  run,
  server,
  signedBy,
  step,
  within,
} from '../lib/harness.mjs';

const PusherJs = await pusherJs('8');

/** A recorder and a callback that feeds it the first argument (pusher-js adds metadata after the
 * data of channel events), for Echo's callback-style API. */
function callback(label) {
  const recorder = new Recorder(label);
  return [recorder, (first) => recorder.push(first)];
}

/** Echo's `subscribed()` as a wait. */
function echoSubscribed(channel, what) {
  return within(10_000, `Echo subscribed() on ${what}`, new Promise((resolve) => channel.subscribed(resolve)));
}

run(async () => {
  const sdk = nodeSdk();
  const forger = new Pusher({ appId: server.appId, key: server.key, secret: 'not-the-secret', host: server.host });
  const taylor = { user_id: 1, user_info: { id: 1, name: 'Taylor' } };
  const abigail = { user_id: 2, user_info: { id: 2, name: 'Abigail' } };

  // Echo #1 constructs pusher-js itself: every option goes to the pusher-js constructor.
  const echo1 = new Echo({
    broadcaster: 'pusher',
    Pusher: PusherJs,
    key: server.key,
    cluster: 'mt1',
    wsHost: server.host,
    wsPort: server.port,
    wssPort: server.port,
    forceTLS: server.tls,
    enabledTransports: ['ws', 'wss'],
    ...signedBy(sdk, { presence: taylor }),
  });
  onCleanup(() => echo1.disconnect());
  echo1.connector.pusher.connection.bind('state_change', ({ previous, current }) => step(`Echo 1: ${previous} -> ${current}`));

  // Echo #2 is handed a pusher-js client; its authorizer forges the token for private-forbidden.
  const honest = signedBy(sdk, { presence: abigail }).channelAuthorization.customHandler;
  const client2 = pusherClient(PusherJs, 'Echo 2 pusher-js', {
    channelAuthorization: {
      customHandler: (params, done) =>
        params.channelName === 'private-forbidden'
          ? done(null, forger.authorizeChannel(params.socketId, params.channelName))
          : honest(params, done),
    },
  });
  const echo2 = new Echo({ broadcaster: 'pusher', client: client2 });

  // ---- public channel: `.shipped` and the namespaced OrderShipped ----
  const [shipped, onShipped] = callback("listen('.shipped')");
  const [orderShipped, onOrderShipped] = callback("listen('OrderShipped')");
  const orders = echo1.channel('orders').listen('.shipped', onShipped).listen('OrderShipped', onOrderShipped);
  await echoSubscribed(orders, 'orders');
  const parcel = { id: 42, carrier: 'DHL', items: ['café', 'tea'] };
  const order = { order: { id: 7, total: 19.9 }, user: null };
  await sdk.trigger('orders', 'shipped', parcel);
  await sdk.trigger('orders', 'App\\Events\\OrderShipped', order);
  const [gotParcel] = await shipped.waitFor(10_000, "Echo's .shipped listener", () => true);
  const [gotOrder] = await orderShipped.waitFor(10_000, "Echo's OrderShipped listener", () => true);
  expectEqual(gotParcel, parcel, "listen('.shipped') got event shipped");
  expectEqual(gotOrder, order, "listen('OrderShipped') got event App\\Events\\OrderShipped");
  expect(shipped.entries.length === 1 && orderShipped.entries.length === 1, 'each listener got only its own event');

  // ---- private channel: whisper, and toOthers() ----
  const [typing2, onTyping2] = callback('Echo 2 whisper typing on private-chat');
  const [typing1, onTyping1] = callback('Echo 1 whisper typing on private-chat');
  const [posted1, onPosted1] = callback("Echo 1 listen('MessagePosted')");
  const [posted2, onPosted2] = callback("Echo 2 listen('MessagePosted')");
  const chat1 = echo1.private('chat').listenForWhisper('typing', onTyping1).listen('MessagePosted', onPosted1);
  const chat2 = echo2.private('chat').listenForWhisper('typing', onTyping2).listen('MessagePosted', onPosted2);
  // Both waits are registered before either is awaited: Echo's subscribed() does not replay an
  // event that fired before it was bound, and the second channel may well succeed first.
  await Promise.all([echoSubscribed(chat1, 'private-chat (Echo 1)'), echoSubscribed(chat2, 'private-chat (Echo 2)')]);
  chat1.whisper('typing', { name: 'Taylor', typing: true });
  const [whisper] = await typing2.waitFor(10_000, "Echo 1's whisper", () => true);
  expectEqual(whisper, { name: 'Taylor', typing: true }, 'Echo 2 heard the whisper');

  const socket1 = echo1.socketId();
  expect(typeof socket1 === 'string' && /^\d+\.\d+$/.test(socket1), `Echo 1 has a socket id (${socket1})`);
  await sdk.trigger('private-chat', 'App\\Events\\MessagePosted', { text: 'to others' }, { socket_id: socket1 });
  await sdk.trigger('private-chat', 'App\\Events\\MessagePosted', { text: 'to everyone' });
  await posted1.waitFor(10_000, 'the message to everyone', (m) => m.text === 'to everyone');
  await posted2.waitFor(10_000, 'the message to everyone', (m) => m.text === 'to everyone');
  expectEqual(
    posted1.entries,
    [{ text: 'to everyone' }],
    'toOthers(): Echo 1 (whose socket_id was excluded) got only the second message',
  );
  expectEqual(posted2.entries, [{ text: 'to others' }, { text: 'to everyone' }], 'Echo 2 got both messages');
  expectEqual(typing1.entries, [], 'the whisperer did not hear itself');

  // ---- presence: here, joining, leaving ----
  const [here1, onHere1] = callback('Echo 1 here');
  const [joining1, onJoining1] = callback('Echo 1 joining');
  const [leaving1, onLeaving1] = callback('Echo 1 leaving');
  const [roomWhisper1, onRoomWhisper1] = callback('Echo 1 whisper on presence-room');
  echo1.join('room').here(onHere1).joining(onJoining1).leaving(onLeaving1).listenForWhisper('typing', onRoomWhisper1);
  const [alone] = await here1.waitFor(10_000, 'Echo 1 here()', () => true);
  expectEqual(alone, [taylor.user_info], 'here() lists only Taylor at first');

  const [here2, onHere2] = callback('Echo 2 here');
  const [joining2, onJoining2] = callback('Echo 2 joining');
  const room2 = echo2.join('room').here(onHere2).joining(onJoining2);
  const [both] = await here2.waitFor(10_000, 'Echo 2 here()', () => true);
  expectEqual(both, [taylor.user_info, abigail.user_info], 'here() lists Taylor and Abigail for the second client');
  const [joined] = await joining1.waitFor(10_000, 'Echo 1 joining() for Abigail', () => true);
  expectEqual(joined, abigail.user_info, 'joining() got the info of Abigail');
  room2.whisper('typing', { name: 'Abigail' });
  const [roomWhisper] = await roomWhisper1.waitFor(10_000, 'the whisper on presence-room', () => true);
  expectEqual(roomWhisper, { name: 'Abigail' }, 'a whisper on the presence channel arrives');

  echo2.leave('room');
  const [left] = await leaving1.waitFor(10_000, 'Echo 1 leaving() for Abigail', () => true);
  expectEqual(left, abigail.user_info, 'leaving() got the info of Abigail');
  expectEqual(joining2.entries, [], 'Echo 2 saw nobody join after it');

  // ---- .error(): a token signed with the wrong secret ----
  const [errors, onError] = callback("Echo 2 .error() on private-forbidden");
  const [forbiddenOk, onForbiddenOk] = callback("Echo 2 subscribed() on private-forbidden");
  echo2.private('forbidden').error(onError).subscribed(onForbiddenOk);
  const [refusal] = await errors.waitFor(10_000, "Echo's .error() callback for the forged token", () => true);
  step(`.error() was called with ${JSON.stringify(refusal)}`);
  expect(
    refusal?.type === 'AuthError' && refusal?.status === 401,
    ".error() got the pusher:subscription_error payload {type: 'AuthError', status: 401}",
  );
  expectEqual(forbiddenOk.entries, [], 'the forged subscription never succeeded');
  expect(echo2.connectionStatus() === 'connected', 'the refusal left Echo 2 connected');
  step('Laravel Echo works against Herald');
});
