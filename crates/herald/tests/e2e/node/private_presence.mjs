// Private and presence channels with pusher-js authorizing in-process with the Node SDK:
// - a private channel subscribed through `channelAuthorization.customHandler` receives a Node SDK
//   trigger with its data intact; a token signed with the wrong secret is refused with
//   `pusher:subscription_error` ({type: 'AuthError', status: 401}) and the connection stays up;
// - presence-x with users alice (two tabs, A1 and A2) and 7 (B, a numeric id as Laravel sends,
//   authorized through the deprecated `authorizer` option): `pusher:subscription_succeeded` gives
//   the right members, count and `me`; alice's second tab produces no `pusher:member_added`
//   anywhere; B gets `pusher:member_removed` for alice only when her last tab disconnects; the REST
//   `GET /channels/presence-x/users` (Node SDK `get()`) agrees at every step.
//
//   node node/private_presence.mjs 8|7      (pusher-js 8.x or 7.6.0)

import Pusher from 'pusher';
import {
  connected,
  expect,
  expectEqual,
  nodeSdk,
  pusherClient,
  pusherJs,
  recordEvents,
  restGet,
  run,
  server,
  settled,
  signedBy,
  step,
  subscribed,
  until,
} from '../lib/harness.mjs';

const PusherJs = await pusherJs(process.argv[2]);

const PRESENCE = 'presence-x';
const ALICE = { user_id: 'alice', user_info: { name: 'Alice', tags: ['ü', 'x'] } };
const BOB = { user_id: 7, user_info: { name: 'Bob' } };

/** The member list pusher-js built, as plain data. */
function members(presence) {
  const list = {};
  presence.each((member) => (list[member.id] = member.info));
  return { count: presence.count, me: presence.me, list };
}

async function users(sdk) {
  const body = await restGet(sdk, `/channels/${PRESENCE}/users`);
  return body.users.map((user) => user.id).sort();
}

/** Trigger `event` on presence-x and wait until every recorder has it: whatever the server sent
 * those connections before the trigger has then been delivered too. */
async function barrier(sdk, event, recorders) {
  await sdk.trigger(PRESENCE, event, { barrier: event });
  for (const recorder of recorders) await recorder.waitFor(10_000, `the REST event ${event}`, (e) => e.event === event);
}

run(async () => {
  const sdk = nodeSdk();

  // ---- private channel ----
  const a1 = pusherClient(PusherJs, 'A1 (alice, tab 1)', signedBy(sdk, { presence: ALICE }));
  await connected(a1, 'A1');
  const { events: ordersEvents } = await subscribed(a1, 'private-orders', 'A1');
  const paid = { id: 17, total: '12.50', lines: [{ sku: 'é-1', qty: 2 }], note: null };
  await sdk.trigger('private-orders', 'paid', paid);
  const [got] = await ordersEvents.waitFor(10_000, "the Node SDK's 'paid' event", (e) => e.event === 'paid');
  expectEqual(got.data, paid, 'private-orders delivered the triggered data unchanged');

  // A token signed with another secret: refused on the channel, the connection untouched.
  const forger = new Pusher({ appId: server.appId, key: server.key, secret: 'not-the-secret', host: server.host });
  const refused = pusherClient(PusherJs, 'R (forged token)', {
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, callback) => callback(null, forger.authorizeChannel(socketId, channelName)),
    },
  });
  const refusedSocket = await connected(refused, 'R');
  const forbidden = refused.subscribe('private-forbidden');
  const forbiddenEvents = recordEvents(forbidden, 'R private-forbidden');
  const [error] = await forbiddenEvents.waitFor(10_000, 'pusher:subscription_error for the forged token', (e) =>
    e.event.startsWith('pusher:subscription_'),
  );
  expectEqual(error.event, 'pusher:subscription_error', 'a forged private token is refused');
  expect(
    error.data?.type === 'AuthError' && error.data?.status === 401,
    `the refusal is {type: 'AuthError', status: 401}: ${JSON.stringify(error.data)}`,
  );
  expect(
    refused.connection.state === 'connected' && refused.connection.socket_id === refusedSocket,
    'a refused subscription leaves the connection connected',
  );
  refused.disconnect();

  // ---- presence: A1 alone ----
  const { channel: a1Presence, data: a1Members, events: a1Events } = await subscribed(a1, PRESENCE, 'A1');
  expectEqual(
    members(a1Members),
    { count: 1, me: { id: 'alice', info: ALICE.user_info }, list: { alice: ALICE.user_info } },
    'A1 subscription_succeeded: alice alone, me = alice',
  );

  // ---- B (user 7) joins, authorized through the deprecated `authorizer` option ----
  const b = pusherClient(PusherJs, 'B (user 7)', {
    authorizer: (channel) => ({
      authorize: (socketId, callback) => callback(null, sdk.authorizeChannel(socketId, channel.name, BOB)),
    }),
  });
  const { channel: bPresence, data: bMembers, events: bEvents } = await subscribed(b, PRESENCE, 'B');
  expectEqual(
    members(bMembers),
    { count: 2, me: { id: 7, info: BOB.user_info }, list: { alice: ALICE.user_info, 7: BOB.user_info } },
    'B subscription_succeeded: alice and 7, me = 7 (pusher-js keeps the id from its channel_data)',
  );
  const [added] = await a1Events.waitFor(10_000, 'pusher:member_added for user 7', (e) => e.event === 'pusher:member_added');
  expectEqual(added.data, { id: '7', info: BOB.user_info }, 'A1 got member_added for 7, with the id as a string');
  await settled(() => users(sdk), ['7', 'alice'], 'REST users after B joined');

  // ---- alice's second tab ----
  const a2 = pusherClient(PusherJs, 'A2 (alice, tab 2)', signedBy(sdk, { presence: ALICE }));
  const { data: a2Members, events: a2Events } = await subscribed(a2, PRESENCE, 'A2');
  expectEqual(
    members(a2Members),
    { count: 2, me: { id: 'alice', info: ALICE.user_info }, list: { alice: ALICE.user_info, 7: BOB.user_info } },
    'A2 subscription_succeeded: alice and 7, me = alice',
  );
  await barrier(sdk, 'after-second-tab', [a1Events, bEvents, a2Events]);
  const [bBarrier] = bEvents.matching((e) => e.event === 'after-second-tab');
  expectEqual(bBarrier.data, { barrier: 'after-second-tab' }, 'REST events on presence channels arrive intact');
  expectEqual(bEvents.matching((e) => e.event === 'pusher:member_added'), [], "B got no member_added for alice's second tab");
  expectEqual(
    a1Events.matching((e) => e.event === 'pusher:member_added').length,
    1,
    "A1 got member_added only for 7, none for its own user's second tab",
  );
  expect(a1Presence.members.count === 2 && bPresence.members.count === 2, 'everyone still counts 2 members');
  await settled(() => users(sdk), ['7', 'alice'], 'REST users with alice on two tabs');
  await settled(
    () => restGet(sdk, `/channels/${PRESENCE}`, { info: 'user_count,subscription_count' }),
    { occupied: true, user_count: 2, subscription_count: 3 },
    'REST channel info: 2 users, 3 connections',
  );

  // ---- alice's first tab leaves: nothing for B ----
  a1.disconnect();
  await until(10_000, 'REST subscription_count of presence-x to drop to 2 after A1 disconnected', async () => {
    const now = await restGet(sdk, `/channels/${PRESENCE}`, { info: 'subscription_count' });
    return now.subscription_count === 2;
  });
  await barrier(sdk, 'after-first-tab-left', [bEvents, a2Events]);
  expectEqual(
    bEvents.matching((e) => e.event === 'pusher:member_removed'),
    [],
    'B got no member_removed while alice has a tab left',
  );
  await settled(() => users(sdk), ['7', 'alice'], 'REST users after one of alice’s tabs left');

  // ---- alice's last tab leaves: B sees her go ----
  a2.disconnect();
  const [removed] = await bEvents.waitFor(10_000, 'pusher:member_removed for alice', (e) => e.event === 'pusher:member_removed');
  expectEqual(removed.data, { id: 'alice', info: ALICE.user_info }, 'B got member_removed for alice');
  expectEqual(members(bPresence.members).list, { 7: BOB.user_info }, 'B now lists only itself');
  await settled(() => users(sdk), ['7'], 'REST users after alice left');
  await barrier(sdk, 'after-alice-left', [bEvents]);
  expectEqual(bEvents.matching((e) => e.event === 'pusher:member_removed').length, 1, 'B got exactly one member_removed');
  step('private and presence channels behave as on Pusher');
});
