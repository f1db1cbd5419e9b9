// User authentication and everything that hangs off it, with pusher-js and the Node SDK:
// - `pusher.signin()` through `userAuthentication.customHandler` (Node SDK `authenticateUser`):
//   the server answers `pusher:signin_success` and accepts the `#server-to-user-…` subscription;
// - Node SDK `sendToUser(id, event, data)` reaches `pusher.user.bind(event)` on both connections
//   signed in as that user, and not another user's connection;
// - a presence subscription whose auth has no `channel_data` (pusher-js 7.4+) takes the member
//   from the signed-in user;
// - watchlist (pusher-js 7.5+, so both 7.6.0 and 8.x have it): a user watching 'dora' is told she
//   is offline at sign-in, online when her first connection signs in (once, for two tabs), and
//   offline only when her last connection leaves;
// - Node SDK `terminateUserConnections(id)` closes both of that user's connections: pusher-js
//   reaches `disconnected` and does not reconnect, while another user's connection stays up.
//
//   node node/users.mjs 8|7      (pusher-js 8.x or 7.6.0)

import {
  expect,
  expectEqual,
  nodeSdk,
  pusherClient,
  pusherJs,
  recordEvents,
  recordFrames,
  restGet,
  run,
  signedBy,
  sleep,
  step,
  subscribed,
  until,
} from '../lib/harness.mjs';

const PusherJs = await pusherJs(process.argv[2]);

run(async () => {
  const sdk = nodeSdk();

  /** A client signed in as `user` (the user data), with its frames, `pusher.user` events and
   * watchlist events recorded from the start. */
  async function signedIn(name, user) {
    const client = pusherClient(PusherJs, name, signedBy(sdk, { user }));
    const frames = recordFrames(client, `${name} frames`);
    const userEvents = recordEvents(client.user, `${name} pusher.user`);
    const watchlist = recordEvents(client.user.watchlist, `${name} pusher.user.watchlist`);
    const states = [];
    client.connection.bind('state_change', ({ current }) => states.push(current));
    client.signin();
    const [success] = await frames.waitFor(10_000, `pusher:signin_success for ${user.id}`, (f) =>
      f.event === 'pusher:signin_success',
    );
    expectEqual(JSON.parse(success.data.user_data), user, `${name}: signin_success echoes the user data`);
    await frames.waitFor(10_000, `subscription_succeeded on #server-to-user-${user.id}`, (f) =>
      f.event === 'pusher_internal:subscription_succeeded' && f.channel === `#server-to-user-${user.id}`,
    );
    expect(client.user.user_data?.id === user.id, `${name}: pusher-js considers itself signed in as ${user.id}`);
    return { name, client, frames, userEvents, watchlist, states };
  }

  // ---- server-to-user events ----
  const alice = { id: 'alice', user_info: { name: 'Alice' } };
  const aliceTab1 = await signedIn('U1 (alice, tab 1)', alice);
  const aliceTab2 = await signedIn('U2 (alice, tab 2)', alice);
  const bob = await signedIn('U3 (bob)', { id: 'bob' });
  const note = { text: 'Your order shipped ✓', ids: [1, 2], extra: null };
  await sdk.sendToUser('alice', 'note', note);
  for (const tab of [aliceTab1, aliceTab2]) {
    const [got] = await tab.userEvents.waitFor(10_000, "sendToUser('alice', 'note')", (e) => e.event === 'note');
    expectEqual(got.data, note, `${tab.name} got the note unchanged`);
  }
  // bob's own event comes after anything meant for alice that might have reached him.
  await sdk.sendToUser('bob', 'done', {});
  await bob.userEvents.waitFor(10_000, "sendToUser('bob', 'done')", (e) => e.event === 'done');
  expectEqual(bob.userEvents.matching((e) => e.event === 'note'), [], "bob did not get alice's note");
  await sdk.sendToUser('alice', 'done', {});
  for (const tab of [aliceTab1, aliceTab2]) {
    await tab.userEvents.waitFor(10_000, "sendToUser('alice', 'done')", (e) => e.event === 'done');
    expectEqual(tab.userEvents.matching((e) => e.event === 'note').length, 1, `${tab.name} got the note once`);
  }
  const listed = await restGet(sdk, '/channels');
  expect(
    Object.keys(listed.channels).every((channel) => !channel.startsWith('#server-to-user-')),
    'REST GET /channels does not list server-to-user channels',
  );

  // ---- presence from the signed-in user (no channel_data in the auth) ----
  const { data: members } = await subscribed(aliceTab1.client, 'presence-signed', 'U1');
  expectEqual(
    { count: members.count, me: members.me },
    { count: 1, me: { id: 'alice', info: alice.user_info } },
    'a presence subscription without channel_data uses the signed-in user and its user_info',
  );

  // ---- watchlist ----
  const watcher = await signedIn('W (watches dora)', { id: 'watcher', watchlist: ['dora'] });
  const statuses = () => watcher.watchlist.entries.map((e) => `${e.event} ${e.data.user_ids.join(',')}`);
  await watcher.watchlist.waitFor(10_000, "dora's status at sign-in", () => true);
  expectEqual(statuses(), ['offline dora'], 'at sign-in the watcher is told dora is offline');

  const doraTab1 = await signedIn('D1 (dora, tab 1)', { id: 'dora' });
  await watcher.watchlist.waitFor(10_000, "'online' for dora", (e) => e.event === 'online');
  await subscribed(doraTab1.client, 'dora-probe', 'D1');
  const doraTab2 = await signedIn('D2 (dora, tab 2)', { id: 'dora' });
  // W's own server-to-user event is queued after any watchlist event D2's sign-in caused.
  await sdk.sendToUser('watcher', 'sync-1', {});
  await watcher.userEvents.waitFor(10_000, "sendToUser('watcher', 'sync-1')", (e) => e.event === 'sync-1');
  expectEqual(statuses(), ['offline dora', 'online dora'], "dora's second tab did not produce a second 'online'");

  doraTab1.client.disconnect();
  await until(10_000, 'REST: D1 gone from dora-probe', async () => {
    const info = await restGet(sdk, '/channels/dora-probe');
    return info.occupied === false;
  });
  await sdk.sendToUser('watcher', 'sync-2', {});
  await watcher.userEvents.waitFor(10_000, "sendToUser('watcher', 'sync-2')", (e) => e.event === 'sync-2');
  expectEqual(statuses(), ['offline dora', 'online dora'], 'no offline while dora still has a connection');

  doraTab2.client.disconnect();
  await watcher.watchlist.waitFor(10_000, "'offline' for dora after her last tab left", (e, i) => i === 2);
  expectEqual(statuses(), ['offline dora', 'online dora', 'offline dora'], 'offline once dora has no connection left');
  expectEqual(
    watcher.watchlist.entries[2].data,
    { name: 'offline', user_ids: ['dora'] },
    'the watchlist event as pusher-js emits it',
  );

  // ---- terminate a user's connections ----
  const tess = [await signedIn('T1 (tess, tab 1)', { id: 'tess' }), await signedIn('T2 (tess, tab 2)', { id: 'tess' })];
  const otto = await signedIn('O (otto)', { id: 'otto' });
  const ottoSocket = otto.client.connection.socket_id;
  const response = await sdk.terminateUserConnections('tess');
  expectEqual([response.status, await response.json()], [200, {}], 'terminateUserConnections answers 200 {}');
  for (const tab of tess) {
    await until(10_000, `${tab.name}: pusher-js state 'disconnected'`, () => tab.client.connection.state === 'disconnected');
  }
  const told = tess.map((tab) => tab.frames.matching((f) => f.event === 'pusher:error').map((f) => f.data));
  step(`tess's connections were told: ${JSON.stringify(told)}`);
  // pusher-js would retry within about a second if it meant to.
  await sleep(2_500);
  for (const tab of tess) {
    expectEqual(tab.client.connection.state, 'disconnected', `${tab.name} stays disconnected`);
    expectEqual(tab.states.slice(tab.states.indexOf('disconnected')), ['disconnected'], `${tab.name} never tried to reconnect`);
  }
  expect(
    otto.client.connection.state === 'connected' && otto.client.connection.socket_id === ottoSocket,
    "otto's connection is untouched",
  );
  await sdk.sendToUser('otto', 'still-here', { ok: true });
  await otto.userEvents.waitFor(10_000, "sendToUser('otto') after tess was terminated", (e) => e.event === 'still-here');
  step('sign-in, server-to-user events, watchlists and terminations behave as on Pusher');
});
