// pusher-js 8 under Node subscribes to two public channels and a private one, then a server SDK
// publishes to them through Herald's REST API: single-channel trigger, one trigger to two channels,
// and a batch. Every channel must receive exactly its events, in order, with the data intact.
//
//   node node/sdk_events.mjs node|python
//
// `node` publishes with the Node `pusher` SDK in this process; `python` hands the same plan to
// python/trigger_plan.py, which publishes with the Python `pusher` SDK.

import { isDeepStrictEqual, inspect } from 'node:util';
import PusherClient from 'pusher-js';
import { nodeSdk, run, runPython, server, step, within, onCleanup } from '../lib/harness.mjs';

const publisher = process.argv[2];
if (publisher !== 'node' && publisher !== 'python') {
  console.error('usage: node node/sdk_events.mjs node|python');
  process.exit(2);
}

const CHANNELS = ['orders-a', 'orders-b', 'private-orders-c'];

// The values travel as Pusher's double-encoded `data` string, so they include what a careless
// re-encoding would damage: non-ASCII text, escapes, nesting, null, and a string that is not JSON.
const plan = [
  {
    op: 'trigger',
    channels: 'orders-a',
    event: 'created',
    data: { id: 1, items: ['tea', 'cake'], note: 'Zoë paid 3,50 € ✓' },
  },
  {
    op: 'trigger',
    channels: ['orders-a', 'orders-b'],
    event: 'shipped',
    data: { id: 2, tracking: { carrier: null, legs: [1, 2.5, -3] }, text: 'quote " backslash \\ newline \n </script>' },
  },
  { op: 'trigger', channels: 'private-orders-c', event: 'note', data: 'plain text, not JSON' },
  {
    op: 'trigger_batch',
    batch: [
      { channel: 'orders-b', name: 'batched', data: { n: 1 } },
      { channel: 'private-orders-c', name: 'batched', data: { n: 2, empty: {} } },
      { channel: 'orders-a', name: 'batched.with.dots', data: [true, false, 'x'] },
    ],
  },
  // The last event on every channel: once it has arrived everywhere, everything before it has too,
  // because a channel delivers in publish order.
  { op: 'trigger', channels: CHANNELS, event: 'done', data: { last: true } },
];

/** What each channel should receive, in order: [event, data]. */
function expectedEvents() {
  const expected = Object.fromEntries(CHANNELS.map((channel) => [channel, []]));
  for (const op of plan) {
    if (op.op === 'trigger') {
      for (const channel of [op.channels].flat()) expected[channel].push([op.event, op.data]);
    } else {
      for (const { channel, name, data } of op.batch) expected[channel].push([name, data]);
    }
  }
  return expected;
}

async function publishWithNode() {
  const sdk = nodeSdk();
  // structuredClone: triggerBatch encodes each event's data in place, and the plan is also the expectation.
  for (const op of structuredClone(plan)) {
    const call = op.op === 'trigger' ? `trigger(${JSON.stringify(op.channels)}, '${op.event}', ...)` : 'triggerBatch(...)';
    step(`Node SDK: ${call}`);
    const response =
      op.op === 'trigger' ? await sdk.trigger(op.channels, op.event, op.data) : await sdk.triggerBatch(op.batch);
    const body = await response.text();
    if (response.status !== 200) throw new Error(`Node SDK ${call} got HTTP ${response.status}: ${body}`);
    step(`Node SDK: ${call} -> 200 ${body}`);
  }
}

async function publishWithPython() {
  const out = await runPython('python/trigger_plan.py', [], { input: JSON.stringify(plan) });
  process.stdout.write(out);
}

run(async () => {
  const sdk = nodeSdk();
  const client = new PusherClient(server.key, {
    cluster: 'mt1',
    wsHost: server.host,
    wsPort: server.port,
    wssPort: server.port,
    forceTLS: server.tls,
    enabledTransports: ['ws', 'wss'],
    channelAuthorization: {
      // No auth endpoint in a test: sign right here with the same secret an app backend would use.
      customHandler: ({ socketId, channelName }, callback) => callback(null, sdk.authorizeChannel(socketId, channelName)),
    },
  });
  onCleanup(() => client.disconnect());
  client.connection.bind('state_change', ({ previous, current }) => step(`pusher-js connection: ${previous} -> ${current}`));
  client.connection.bind('error', (err) => step(`pusher-js connection error: ${inspect(err, { depth: 4 })}`));

  const received = Object.fromEntries(CHANNELS.map((channel) => [channel, []]));
  const subscriptions = [];
  const finished = [];
  for (const name of CHANNELS) {
    const channel = client.subscribe(name);
    subscriptions.push(
      new Promise((resolve, reject) => {
        channel.bind('pusher:subscription_succeeded', resolve);
        channel.bind('pusher:subscription_error', (err) =>
          reject(new Error(`subscribing to ${name} failed: ${inspect(err, { depth: 4 })}`)),
        );
      }),
    );
    finished.push(
      new Promise((resolve) => {
        channel.bind_global((event, data) => {
          if (event.startsWith('pusher:') || event.startsWith('pusher_internal:')) return;
          received[name].push([event, data]);
          if (event === 'done') resolve();
        });
      }),
    );
  }
  // Publishing starts only when every subscription is confirmed, or early events would be lost.
  await within(15_000, `pusher:subscription_succeeded on ${CHANNELS.join(', ')}`, Promise.all(subscriptions));

  await (publisher === 'node' ? publishWithNode() : publishWithPython());

  try {
    await within(15_000, `the final 'done' event on ${CHANNELS.join(', ')}`, Promise.all(finished));
  } finally {
    step(`received: ${inspect(received, { depth: 6 })}`);
  }

  const expected = expectedEvents();
  for (const channel of CHANNELS) {
    if (!isDeepStrictEqual(received[channel], expected[channel])) {
      throw new Error(
        `${channel} received the wrong events.\n  expected: ${inspect(expected[channel], { depth: 6 })}\n` +
          `  received: ${inspect(received[channel], { depth: 6 })}`,
      );
    }
  }
  step('every channel received exactly the events published to it, in order');
});
