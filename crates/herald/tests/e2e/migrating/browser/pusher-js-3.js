// pusher-js 3.x to 5.x pointed at Herald (node/migrating.mjs loads this after pusher.min.js).
var pusher = new Pusher('app-key', {
  wsHost: 'localhost',
  wsPort: 6001,
  wssPort: 6001,
  encrypted: false,
  disableStats: true,
  enabledTransports: ['ws', 'wss'],
});
