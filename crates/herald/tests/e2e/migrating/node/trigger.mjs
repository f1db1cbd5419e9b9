// One trigger with the Node SDK configured by node/pusher.mjs (`constructor`) or node/pusher_url.mjs
// (`url`). Run by node/migrating.mjs:
//
//   node migrating/node/trigger.mjs LABEL constructor|url

const [label, how] = process.argv.slice(2);
const files = { constructor: './pusher.mjs', url: './pusher_url.mjs' };
if (!label || !files[how]) {
  console.error('usage: trigger.mjs LABEL constructor|url');
  process.exit(2);
}

const { default: pusher } = await import(files[how]);
const response = await pusher.trigger('orders', 'shipped', { from: label }).catch((err) => {
  console.error(`pusher.trigger('orders', 'shipped', ...) failed: ${err.message} ${err.status ?? ''} ${err.body ?? ''}`);
  process.exit(1);
});
console.log(`${label}: HTTP ${response.status} from ${pusher.config.getBaseURL()}`);
