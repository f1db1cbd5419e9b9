// The Ruby gem's and the Python SDK's read API, auth helpers and user endpoints against live
// connections. pusher-js clients hold presence-x open (alice on two tabs, bob) and the public
// channel news (two connections); then the SDK under test:
// - reads: channel info with user_count and subscription_count, the channel list filtered to
//   presence- with user_count, the presence users (Python also: the unfiltered list, a public
//   channel's subscription_count, an empty channel);
// - signs a private subscription, a presence subscription with its own channel_data (Python's
//   json.dumps puts spaces in it, so the server must verify the string as sent) and a user
//   sign-in for one more pusher-js connection, and the server accepts all three;
// - Python only: send_to_user reaches that connection's `pusher.user`, and
//   terminate_user_connections (sent without /apps/ID) disconnects it for good, with the
//   presence members told it left, while everyone else stays connected.
//
//   node node/read_api.mjs ruby|python 8|7      (the SDK; pusher-js 8.x or 7.6.0)
//
// The Ruby side is ruby/read_api.rb with the latest gem, the Python side python/read_api.py.

import {
  connected,
  expect,
  expectEqual,
  nodeSdk,
  pusherClient,
  pusherJs,
  recordEvents,
  recordFrames,
  restGet,
  run,
  runPython,
  runRuby,
  settled,
  signedBy,
  sleep,
  step,
  subscribed,
  until,
} from '../lib/harness.mjs';

const sdkName = process.argv[2];
if (sdkName !== 'ruby' && sdkName !== 'python') {
  console.error('usage: node node/read_api.mjs ruby|python 8|7');
  process.exit(2);
}
const PusherJs = await pusherJs(process.argv[3]);

const PRESENCE = 'presence-x';
const PRIVATE = 'private-y';
const PUBLIC = 'news';

/** The sorted user ids in a `/users` answer. */
const ids = (body) => body.users.map((user) => user.id).sort();

/** The last line of a program's output, as JSON. */
function lastJson(output) {
  const line = output.trim().split('\n').pop();
  step(`the SDK returned: ${line}`);
  return JSON.parse(line);
}

/** Run python/read_api.py with `calls`; resolves with what each returned. */
async function python(calls) {
  return lastJson(await runPython('python/read_api.py', [], { input: JSON.stringify(calls) }));
}

/**
 * A pusher-js client whose auth answers are the tokens the SDK under test produced (for its
 * socket id, which must match), plus how it fared: its frames and `pusher.user` events.
 */
async function clientWithTokens(name, tokensFor) {
  let tokens;
  const handler = (kind) => (params, callback) => {
    const token = tokens?.[kind === 'user' ? 'user' : params.channelName];
    if (!token || params.socketId !== tokens.socketId) {
      const what = params.channelName ?? 'sign-in';
      return callback(new Error(`no ${kind} token from the SDK for ${what} on ${params.socketId}`), null);
    }
    callback(null, token);
  };
  const client = pusherClient(PusherJs, name, {
    channelAuthorization: { customHandler: handler('channel') },
    userAuthentication: { customHandler: handler('user') },
  });
  const frames = recordFrames(client, `${name} frames`);
  const userEvents = recordEvents(client.user, `${name} pusher.user`);
  const socketId = await connected(client, name);
  tokens = { socketId, ...(await tokensFor(socketId)) };
  return { client, frames, userEvents };
}

/** Sign in and subscribe with the SDK's tokens; the server must accept each. */
async function useTokens({ client, frames }, name, member) {
  await subscribed(client, PRIVATE, name);
  step(`the server accepted the ${sdkName} SDK's private-channel token`);
  const { data: members } = await subscribed(client, PRESENCE, name);
  expectEqual(
    { count: members.count, me: members.me },
    { count: 3, me: { id: member.user_id, info: member.user_info } },
    `the ${sdkName} SDK's presence token was accepted: 3 members, me = ${member.user_id}`,
  );
  client.signin();
  const [success] = await frames.waitFor(10_000, 'pusher:signin_success', (f) => f.event === 'pusher:signin_success');
  step(`the server accepted the ${sdkName} SDK's user token: ${JSON.stringify(success.data)}`);
}

run(async () => {
  const sdk = nodeSdk();
  const alice = { user_id: 'alice', user_info: { name: 'Alice' } };
  const holders = {
    A1: pusherClient(PusherJs, 'A1 (alice, tab 1)', signedBy(sdk, { presence: alice })),
    A2: pusherClient(PusherJs, 'A2 (alice, tab 2)', signedBy(sdk, { presence: alice })),
    B: pusherClient(PusherJs, 'B (bob)', signedBy(sdk, { presence: { user_id: 'bob', user_info: { name: 'Bob' } } })),
  };
  const { events: bobPresence } = await subscribed(holders.B, PRESENCE, 'B');
  await subscribed(holders.A1, PRESENCE, 'A1');
  await subscribed(holders.A2, PRESENCE, 'A2');
  await subscribed(holders.A1, PUBLIC, 'A1');
  await subscribed(holders.B, PUBLIC, 'B');
  // The SDK below reads from the node its REST calls reach, which in a cluster hears of these
  // subscriptions (made on another node) a moment later.
  await settled(
    () => restGet(sdk, `/channels/${PRESENCE}`, { info: 'user_count,subscription_count' }),
    { occupied: true, user_count: 2, subscription_count: 3 },
    'REST sees both presence users on three connections',
  );
  await settled(
    () => restGet(sdk, `/channels/${PUBLIC}`, { info: 'subscription_count' }),
    { occupied: true, subscription_count: 2 },
    'REST sees both public subscriptions',
  );

  if (sdkName === 'ruby') {
    let answers;
    const joiner = await clientWithTokens('R (Ruby-signed)', async (socketId) => {
      answers = lastJson(await runRuby('latest', 'ruby/read_api.rb', [PRESENCE, PRIVATE, socketId]));
      return { [PRIVATE]: answers.private_auth, [PRESENCE]: answers.presence_auth, user: answers.user_auth };
    });
    step(`Ruby gem ${answers.gem}`);
    expectEqual(
      answers.channel_info,
      { occupied: true, user_count: 2, subscription_count: 3 },
      "Pusher.channel_info(presence-x, info: 'user_count,subscription_count')",
    );
    expectEqual(
      answers.channels,
      { channels: { [PRESENCE]: { user_count: 2 } } },
      "Pusher.channels(filter_by_prefix: 'presence-', info: 'user_count')",
    );
    expectEqual(ids(answers.channel_users), ['alice', 'bob'], 'Pusher.channel_users(presence-x)');
    // The member the gem's channel_data declares (user_id 'ruby', with the gem and Ruby versions).
    await useTokens(joiner, 'R', JSON.parse(answers.presence_auth.channel_data));
  } else {
    let answers;
    const member = { user_id: 'py', user_info: { name: 'Python SDK', langs: ['py', 'é'] } };
    const user = { id: 'py', user_info: { name: 'Python SDK' } };
    const joiner = await clientWithTokens('P (Python-signed)', async (socketId) => {
      const calls = [
        { call: 'channels_info', args: ['presence-', ['user_count']] },
        { call: 'channels_info', args: [] },
        { call: 'channel_info', args: [PRESENCE, ['user_count', 'subscription_count']] },
        { call: 'channel_info', args: [PUBLIC, ['subscription_count']] },
        { call: 'channel_info', args: ['nobody-here'] },
        { call: 'users_info', args: [PRESENCE] },
        { call: 'authenticate', args: [PRIVATE, socketId] },
        { call: 'authenticate', args: [PRESENCE, socketId, member] },
        { call: 'authenticate_user', args: [socketId, user] },
      ];
      answers = await python(calls);
      return { [PRIVATE]: answers[6], [PRESENCE]: answers[7], user: answers[8] };
    });
    const [presenceList, allList, presenceInfo, publicInfo, emptyInfo, users, , presenceAuth] = answers;
    expectEqual(presenceList, { channels: { [PRESENCE]: { user_count: 2 } } }, "channels_info('presence-', ['user_count'])");
    expectEqual(allList, { channels: { [PRESENCE]: {}, [PUBLIC]: {} } }, 'channels_info() lists the occupied channels');
    expectEqual(
      presenceInfo,
      { occupied: true, user_count: 2, subscription_count: 3 },
      "channel_info(presence-x, ['user_count', 'subscription_count'])",
    );
    expectEqual(publicInfo, { occupied: true, subscription_count: 2 }, "channel_info(news, ['subscription_count'])");
    expectEqual(emptyInfo, { occupied: false }, 'channel_info of a channel nobody is on');
    expectEqual(ids(users), ['alice', 'bob'], 'users_info(presence-x)');
    expect(
      presenceAuth.channel_data.includes('": "'),
      `Python's channel_data has json.dumps spacing: ${presenceAuth.channel_data}`,
    );
    await useTokens(joiner, 'P', member);
    const memberEvent = (event, id) => (e) => e.event === event && e.data.id === id;
    await bobPresence.waitFor(10_000, 'pusher:member_added for py', memberEvent('pusher:member_added', 'py'));

    // send_to_user reaches the signed-in connection.
    await joiner.frames.waitFor(10_000, 'subscription_succeeded on #server-to-user-py', (f) =>
      f.event === 'pusher_internal:subscription_succeeded' && f.channel === '#server-to-user-py',
    );
    const hello = { text: 'from Python', n: [1, 2, 3], ok: true };
    await python([{ call: 'send_to_user', args: ['py', 'hello', hello] }]);
    const [got] = await joiner.userEvents.waitFor(10_000, "send_to_user('py', 'hello')", (e) => e.event === 'hello');
    expectEqual(got.data, hello, 'pusher.user got the send_to_user event unchanged');

    // terminate_user_connections, on the path without /apps/ID.
    const states = [];
    joiner.client.connection.bind('state_change', ({ current }) => states.push(current));
    const [terminated] = await python([{ call: 'terminate_user_connections', args: ['py'] }]);
    expectEqual(terminated, {}, 'terminate_user_connections returned {}');
    await until(10_000, "P: pusher-js state 'disconnected'", () => joiner.client.connection.state === 'disconnected');
    await bobPresence.waitFor(10_000, 'pusher:member_removed for py', memberEvent('pusher:member_removed', 'py'));
    await sleep(2_500);
    expectEqual(states, ['disconnected'], 'P went to disconnected and never tried to reconnect');
  }

  for (const [name, client] of Object.entries(holders)) {
    expect(client.connection.state === 'connected', `${name} is still connected`);
  }
  step(`the ${sdkName} SDK's read API and tokens work against Herald`);
});
