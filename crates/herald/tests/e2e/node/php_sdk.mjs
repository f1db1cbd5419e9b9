// The official PHP SDK (pusher/pusher-php-server, what Laravel broadcasting uses) publishing,
// signing and reading, checked from pusher-js. Two pusher-js clients, ann (A) and ben (B), get every
// token from the PHP SDK through pusher-js custom authorizers (lib/php_sdk.mjs):
// - authorizeChannel on a private channel, authorizeChannel with a shared_secret on an encrypted
//   one (`encryption_master_key_base64`), authorizePresenceChannel with user info that PHP's
//   json_encode escapes (`\/`, `\u00…`): Herald accepts each subscription, and the presence members
//   are what the SDK signed;
// - getChannelInfo with info=user_count,subscription_count (presence) and info=subscription_count
//   (public), of an empty channel; getChannels unfiltered, with filter_by_prefix, and with
//   filter_by_prefix=presence- and info=user_count; getPresenceUsers;
// - trigger to one channel, to two, with `socket_id` (A excluded, B gets it), with `info`, with
//   already-encoded data; triggerBatch with `socket_id` (B excluded) and `info` on some events;
//   trigger on the encrypted channel, which the SDK encrypts: the frame holds only nonce and
//   ciphertext, pusher-js decrypts the original data. Each client must get exactly its events on
//   every channel, in order, with the data intact.
//
//   node node/php_sdk.mjs 8|7      (pusher-js 8.x or 7.6.0)

import { randomBytes } from 'node:crypto';
import {
  Recorder,
  connected,
  expect,
  expectEqual,
  pusherClient,
  pusherJs,
  recordFrames,
  run,
  settled,
  step,
  subscribed,
} from '../lib/harness.mjs';
import { php, php1, phpSigned } from '../lib/php_sdk.mjs';

const PusherJs = await pusherJs(process.argv[2]);

const NEWS = 'php-news';
const ORDERS = 'private-php-orders';
const ROOM = 'presence-php-room';
const VAULT = 'private-encrypted-php-vault';

/**
 * How long a subscription may take when its token comes from a PHP process: with every core busy,
 * starting one takes seconds.
 */
const SIGNED_MS = 30_000;

/** Every PHP SDK call here uses this master key: the SDK needs it to sign for and publish to VAULT. */
const client = { encryption_master_key_base64: randomBytes(32).toString('base64') };

const ann = { user_id: 'ann', user_info: { name: 'Ann Ōno', site: 'https://example.com/ann' } };
const ben = { user_id: 'ben', user_info: { name: 'Ben' } };

/** The events a channel's recorder holds, as [event, data], without pusher-js's own. */
const received = (recorder) =>
  recorder.entries.filter(({ event }) => !event.startsWith('pusher:')).map(({ event, data }) => [event, data]);

run(async () => {
  // ---- subscriptions signed by the PHP SDK ----
  const tokens = new Recorder('the tokens the PHP SDK signed');
  const a = pusherClient(PusherJs, 'A (ann)', phpSigned({ presence: ann, client, tokens }));
  const b = pusherClient(PusherJs, 'B (ben)', phpSigned({ presence: ben, client, tokens }));
  const aFrames = recordFrames(a, 'A frames');
  const aSocket = await connected(a, 'A');
  const bSocket = await connected(b, 'B');

  const aOn = {};
  for (const channel of [NEWS, ORDERS, ROOM, VAULT]) aOn[channel] = (await subscribed(a, channel, 'A', SIGNED_MS)).events;
  step(`Herald accepted the PHP SDK's tokens for ${ORDERS}, ${ROOM} and ${VAULT}`);
  const bOn = { [NEWS]: (await subscribed(b, NEWS, 'B', SIGNED_MS)).events };
  const bRoom = await subscribed(b, ROOM, 'B', SIGNED_MS);
  bOn[ROOM] = bRoom.events;
  expectEqual(
    { count: bRoom.data.count, me: bRoom.data.me, ann: bRoom.data.get('ann') },
    { count: 2, me: { id: 'ben', info: ben.user_info }, ann: { id: 'ann', info: ann.user_info } },
    `B's ${ROOM} members: 2, B is ben, ann with the user info the PHP SDK signed`,
  );
  await aOn[ROOM].waitFor(10_000, 'pusher:member_added for ben', (e) => e.event === 'pusher:member_added');

  const tokenFor = (channelName) => tokens.matching((t) => t.channelName === channelName && t.socketId === aSocket)[0]?.token;
  expectEqual(Object.keys(tokenFor(ORDERS)), ['auth'], `authorizeChannel(${ORDERS}) answered { auth }`);
  expect(
    typeof tokenFor(VAULT).shared_secret === 'string' && Buffer.from(tokenFor(VAULT).shared_secret, 'base64').length === 32,
    `authorizeChannel(${VAULT}) added a 32-byte shared_secret`,
  );
  const channelData = tokenFor(ROOM).channel_data;
  expect(channelData.includes('\\/') && channelData.includes('\\u014c'), `PHP's channel_data escapes / and Ō: ${channelData}`);
  expectEqual(JSON.parse(channelData), ann, `authorizePresenceChannel(${ROOM}) signed ann's member`);

  // ---- the read API ----
  // Settled: in a cluster the SDK reads from the node its REST calls reach, which hears of these
  // subscriptions (made on the other node) a moment later.
  await settled(
    () => php1('getChannelInfo', [ROOM, { info: 'user_count,subscription_count' }], client),
    { occupied: true, user_count: 2, subscription_count: 2 },
    `getChannelInfo('${ROOM}', ['info' => 'user_count,subscription_count'])`,
  );
  await settled(
    () => php1('getChannelInfo', [NEWS, { info: 'subscription_count' }], client),
    { occupied: true, subscription_count: 2 },
    `getChannelInfo('${NEWS}', ['info' => 'subscription_count'])`,
  );
  const [empty, all, privates, presences, users] = await php(
    [
      { call: 'getChannelInfo', args: ['php-nobody'] },
      { call: 'getChannels', args: [] },
      { call: 'getChannels', args: [{ filter_by_prefix: 'private-' }] },
      { call: 'getChannels', args: [{ filter_by_prefix: 'presence-', info: 'user_count' }] },
      { call: 'getPresenceUsers', args: [ROOM] },
    ],
    client,
  );
  expectEqual(empty, { occupied: false }, "getChannelInfo('php-nobody'): not occupied");
  expectEqual(
    all,
    { channels: { [NEWS]: {}, [ORDERS]: {}, [ROOM]: {}, [VAULT]: {} } },
    'getChannels(): every occupied channel',
  );
  expectEqual(privates, { channels: { [ORDERS]: {}, [VAULT]: {} } }, "getChannels(['filter_by_prefix' => 'private-'])");
  expectEqual(
    presences,
    { channels: { [ROOM]: { user_count: 2 } } },
    "getChannels(['filter_by_prefix' => 'presence-', 'info' => 'user_count'])",
  );
  expectEqual(
    [...users.users].sort((x, y) => x.id.localeCompare(y.id)),
    [{ id: 'ann' }, { id: 'ben' }],
    `getPresenceUsers('${ROOM}')`,
  );

  // ---- publishing ----
  const headline = { title: 'Zoë’s “quotes” & </script> \\ back/slash', n: 1, list: [1, null, true, 'x'], nested: { a: { b: 'c' } } };
  const secret = { pin: '0420', owner: 'Zoë', list: [1, 2, { three: null }] };
  const calls = [
    { call: 'trigger', args: [NEWS, 'headline', headline] },
    { call: 'trigger', args: [[NEWS, ORDERS], 'both', { id: 2 }] },
    { call: 'trigger', args: [NEWS, 'not-for-a', { skip: 'A' }, { socket_id: aSocket }] },
    { call: 'trigger', args: [NEWS, 'with-info', { n: 4 }, { info: 'subscription_count' }] },
    { call: 'trigger', args: [ROOM, 'presence-info', { n: 5 }, { info: 'user_count,subscription_count' }] },
    { call: 'trigger', args: [ORDERS, 'pre-encoded', '{"already":"encoded"}', {}, true] },
    {
      call: 'triggerBatch',
      args: [
        [
          { channel: NEWS, name: 'batched', data: { n: 1 } },
          { channel: ORDERS, name: 'batched', data: { n: 2 } },
          { channel: ROOM, name: 'batched', data: { n: 3 }, socket_id: bSocket },
          { channel: ROOM, name: 'batched-info', data: { n: 4 }, info: 'user_count,subscription_count' },
        ],
      ],
    },
    { call: 'trigger', args: [VAULT, 'secret', secret] },
    // The last event on every channel: once it has arrived, everything before it has too, because a
    // channel delivers in publish order.
    { call: 'trigger', args: [[NEWS, ORDERS, ROOM], 'done', { last: true }] },
    { call: 'trigger', args: [VAULT, 'done', { last: true }] },
  ];
  const results = await php(calls, client);
  expectEqual(
    results,
    [
      {},
      {},
      {},
      { channels: { [NEWS]: { subscription_count: 2 } } },
      { channels: { [ROOM]: { user_count: 2, subscription_count: 2 } } },
      {},
      { batch: [{}, {}, {}, { user_count: 2, subscription_count: 2 }] },
      {},
      {},
      {},
    ],
    'what trigger and triggerBatch returned (with info only where asked)',
  );

  const done = (recorder, who, channel) =>
    recorder.waitFor(10_000, `'done' on ${channel} for ${who}`, (e) => e.event === 'done');
  for (const channel of [NEWS, ORDERS, ROOM, VAULT]) await done(aOn[channel], 'A', channel);
  for (const channel of [NEWS, ROOM]) await done(bOn[channel], 'B', channel);

  const last = ['done', { last: true }];
  expectEqual(
    received(aOn[NEWS]),
    [['headline', headline], ['both', { id: 2 }], ['with-info', { n: 4 }], ['batched', { n: 1 }], last],
    `A's events on ${NEWS} (not 'not-for-a': its socket_id was excluded)`,
  );
  expectEqual(
    received(bOn[NEWS]),
    [['headline', headline], ['both', { id: 2 }], ['not-for-a', { skip: 'A' }], ['with-info', { n: 4 }], ['batched', { n: 1 }], last],
    `B's events on ${NEWS} (with 'not-for-a')`,
  );
  expectEqual(
    received(aOn[ORDERS]),
    [['both', { id: 2 }], ['pre-encoded', { already: 'encoded' }], ['batched', { n: 2 }], last],
    `A's events on ${ORDERS}`,
  );
  expectEqual(
    received(aOn[ROOM]),
    [['presence-info', { n: 5 }], ['batched', { n: 3 }], ['batched-info', { n: 4 }], last],
    `A's events on ${ROOM}`,
  );
  expectEqual(
    received(bOn[ROOM]),
    [['presence-info', { n: 5 }], ['batched-info', { n: 4 }], last],
    `B's events on ${ROOM} (not the batched event whose socket_id excluded B)`,
  );
  expectEqual(received(aOn[VAULT]), [['secret', secret], last], `A decrypted the PHP SDK's events on ${VAULT}`);
  const [wire] = aFrames.matching((f) => f.event === 'secret');
  expectEqual(Object.keys(wire.data).sort(), ['ciphertext', 'nonce'], 'the encrypted frame carried only nonce and ciphertext');
  expect(!JSON.stringify(wire).includes('0420'), 'the plaintext never crossed the wire');

  for (const [name, c] of [['A', a], ['B', b]]) expect(c.connection.state === 'connected', `${name} is still connected`);
  step('the PHP SDK publishes, signs and reads against Herald as against Pusher');
});
