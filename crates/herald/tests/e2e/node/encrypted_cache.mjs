// Encrypted channels, cache channels and subscription counts with pusher-js:
// - `private-encrypted-vault`: the Node SDK, configured with `encryptionMasterKeyBase64`, signs the
//   subscription (its answer carries `shared_secret`) and triggers; the frame on the wire holds
//   only `nonce` and `ciphertext`, and pusher-js decrypts the original data;
// - `cache-scores`: the first subscriber of the empty channel gets `pusher:cache_miss`; after a
//   Node SDK trigger, a new subscriber gets that event right after `subscription_succeeded` (and
//   no miss), and REST `info=cache` reports it;
// - `counted` (public): with two subscribers both see `pusher:subscription_count` with count 2
//   (pusher-js re-emits `pusher_internal:subscription_count`), and the one left sees 1 after the
//   other unsubscribes.
//
//   node node/encrypted_cache.mjs 8|7      (pusher-js 8.x or 7.6.0)

import { randomBytes } from 'node:crypto';
import {
  connected,
  expect,
  expectEqual,
  nodeSdk,
  pusherClient,
  pusherJs,
  recordFrames,
  restGet,
  run,
  settled,
  signedBy,
  step,
  subscribed,
} from '../lib/harness.mjs';

const PusherJs = await pusherJs(process.argv[2]);

const ENCRYPTED = 'private-encrypted-vault';
const CACHE = 'cache-scores';
const COUNTED = 'counted';

/** The events a recorder holds other than pusher-js's own bookkeeping. */
const names = (recorder) => recorder.entries.map((e) => e.event).filter((e) => e !== 'pusher:subscription_count');

run(async () => {
  // ---- encrypted channel ----
  const sdk = nodeSdk({ encryptionMasterKeyBase64: randomBytes(32).toString('base64') });
  const auth = sdk.authorizeChannel('123.456', ENCRYPTED);
  expect(
    typeof auth.shared_secret === 'string' && auth.shared_secret.length === 44,
    'the Node SDK adds a shared_secret to encrypted-channel auth',
  );

  const vaultClient = pusherClient(PusherJs, 'E (encrypted subscriber)', signedBy(sdk));
  const frames = recordFrames(vaultClient, 'E frames');
  const { events: vault } = await subscribed(vaultClient, ENCRYPTED, 'E');
  const secret = { pin: '0420', owner: 'Zoë', list: [1, 2, { three: null }], quote: 'a "b" \\ c' };
  await sdk.trigger(ENCRYPTED, 'secret', secret);
  const [decrypted] = await vault.waitFor(10_000, "the decrypted 'secret' event", (e) => e.event === 'secret');
  expectEqual(decrypted.data, secret, 'pusher-js decrypted the original data');
  const [wire] = frames.matching((f) => f.event === 'secret');
  expectEqual(Object.keys(wire.data).sort(), ['ciphertext', 'nonce'], 'the frame carried only nonce and ciphertext');
  expect(!JSON.stringify(wire).includes('Zoë'), 'the plaintext never crossed the wire');

  // ---- cache channel ----
  const first = pusherClient(PusherJs, 'C1 (cache, empty)', signedBy(sdk));
  const { events: c1 } = await subscribed(first, CACHE, 'C1');
  await c1.waitFor(10_000, 'pusher:cache_miss on the empty cache channel', (e) => e.event === 'pusher:cache_miss');
  expectEqual(names(c1), ['pusher:subscription_succeeded', 'pusher:cache_miss'], 'C1: subscription_succeeded, then cache_miss');

  const score = { home: 2, away: 1, minute: 90 };
  await sdk.trigger(CACHE, 'score', score);
  const [live] = await c1.waitFor(10_000, "the live 'score' event", (e) => e.event === 'score');
  expectEqual(live.data, score, 'C1 got the live event');

  const second = pusherClient(PusherJs, 'C2 (cache, after a trigger)', signedBy(sdk));
  await connected(second, 'C2');
  const { events: c2 } = await subscribed(second, CACHE, 'C2');
  const [cached] = await c2.waitFor(10_000, "the cached 'score' event right after subscribing", (e) => e.event === 'score');
  expectEqual(cached.data, score, 'C2 got the cached event');
  expectEqual(
    names(c2),
    ['pusher:subscription_succeeded', 'score'],
    'C2: subscription_succeeded, then the cached event, no miss',
  );
  const info = await restGet(sdk, `/channels/${CACHE}`, { info: 'cache' });
  expect(
    info.occupied === true && info.cache?.data === JSON.stringify(score) && info.cache.ttl > 0 && info.cache.ttl <= 1800,
    `REST info=cache reports the cached data with a TTL of at most 30 minutes: ${JSON.stringify(info)}`,
  );

  // ---- subscription count ----
  const x1 = pusherClient(PusherJs, 'X1 (counted)');
  const x2 = pusherClient(PusherJs, 'X2 (counted)');
  const { channel: x1Channel, events: x1Events } = await subscribed(x1, COUNTED, 'X1');
  const { channel: x2Channel, events: x2Events } = await subscribed(x2, COUNTED, 'X2');
  const count = (n) => (e) => e.event === 'pusher:subscription_count' && e.data?.subscription_count === n;
  const [x1Count] = await x1Events.waitFor(10_000, 'pusher:subscription_count 2', count(2));
  const [x2Count] = await x2Events.waitFor(10_000, 'pusher:subscription_count 2', count(2));
  expectEqual(
    [x1Count.data, x2Count.data],
    [{ subscription_count: 2 }, { subscription_count: 2 }],
    'both subscribers saw count 2',
  );
  expect(x1Channel.subscriptionCount === 2 && x2Channel.subscriptionCount === 2, 'pusher-js stored subscriptionCount 2 on both');
  const seen = x1Events.entries.length;
  x2.unsubscribe(COUNTED);
  await x1Events.waitFor(10_000, 'pusher:subscription_count 1 after X2 unsubscribed', (e, i) => i >= seen && count(1)(e));
  await settled(
    () => restGet(sdk, `/channels/${COUNTED}`, { info: 'subscription_count' }),
    { occupied: true, subscription_count: 1 },
    'REST subscription_count agrees',
  );
  step('encrypted channels, cache channels and subscription counts behave as on Pusher');
});
