// pusher-js 6.x to 8.x pointed at Herald (node/migrating.mjs loads this after pusher.min.js).
const pusher = new Pusher('app-key', {
  cluster: 'mt1',
  wsHost: 'localhost',
  wsPort: 6001,
  wssPort: 6001,
  forceTLS: false,
  enabledTransports: ['ws', 'wss'],
});
