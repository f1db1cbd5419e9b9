// docs/migrating.md, run: every snippet in it comes from a file under migrating/ (a Rust test,
// tests/docs_snippets.rs, holds the doc to that), and this scenario runs each of those files against
// Herald as the guide tells users to:
//
// - receivers, in headless Chromium: pusher-js 3.0 with migrating/browser/pusher-js-3.js, pusher-js
//   7.6 and 8.x with migrating/browser/pusher-js-8.js, and Laravel Echo on pusher-js 8 with
//   migrating/laravel/resources/js/echo.js, its `import.meta.env.VITE_*` replaced from
//   migrating/laravel/.env as Vite would. Each page subscribes to `orders`.
// - senders, each in its own process: the Ruby gem (0.15.2 and latest) configured by PUSHER_URL alone
//   (migrating/rails/pusher_url.env) and by migrating/rails/config/initializers/pusher.rb; Laravel's
//   broadcaster configured by migrating/laravel/config/broadcasting.php and .env; the PHP, Node
//   (constructor and forURL) and Python SDKs configured by migrating/php, node and python. The
//   server SDKs get the variables of migrating/laravel/.env as their environment.
// - every receiver must get every sender's event exactly once, and no page may send a request
//   anywhere but this machine.
//
// It also checks two claims of the guide's pusher-js table: pusher-js 8 without `enabledTransports`
// falls back to HTTP transports on Pusher's own host (sockjs-mt1.pusher.com) when the WebSocket
// fails, and pusher-js 3 without `disableStats` reports to stats.pusher.com. (Those requests are
// refused here, as everything off this machine is.)
//
// Snippets with literal values (the .env lines, PUSHER_URL, the pusher-js options) use the guide's
// examples: app id 1, key app-key, secret app-secret, host localhost, port 6001. The scenario swaps in
// the test server's key, secret, host and port (its app id is 1 too), and nothing else. In a
// cluster, the browsers talk to one node and the server SDKs to the other.
//
//   node node/migrating.mjs

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import {
  E2E_DIR,
  expectEqual,
  onCleanup,
  run,
  runPhp,
  runProgram,
  runPython,
  runRuby,
  server,
  step,
  until,
} from '../lib/harness.mjs';
import { openBrowser, watchPage } from '../lib/browser.mjs';

const NODE_MODULES = join(E2E_DIR, 'node_modules');

/**
 * The files docs/migrating.md quotes, and what runs each here. tests/docs_snippets.rs accepts a code
 * block of the guide only if it is in one of the files named in this script.
 */
const SNIPPETS = {
  'rails/pusher_url.env': "PUSHER_URL for the Ruby gem and the Node SDK's forURL",
  'rails/config/initializers/pusher.rb': 'required by rails/trigger.rb',
  'laravel/.env': "the server SDKs' environment, and the VITE_ values built into echo.js",
  'laravel/config/broadcasting.php': 'loaded by laravel/broadcast.php',
  'laravel/resources/js/echo.js': 'the Laravel Echo page',
  'node/pusher.mjs': 'imported by node/trigger.mjs',
  'node/pusher_url.mjs': 'imported by node/trigger.mjs',
  'python/pusher_client.py': 'imported by python/trigger.py',
  'php/pusher.php': 'required by php/trigger.php',
  'browser/pusher-js-8.js': 'the pusher-js 7.6 and 8 pages',
  'browser/pusher-js-3.js': 'the pusher-js 3.0 page',
};

/** A snippet file under migrating/, as text. */
const snippet = (path) => readFileSync(join(E2E_DIR, 'migrating', path), 'utf8');

/** The guide's example values and what stands in for each here. */
function localize(text, port, what) {
  if (server.appId !== '1') throw new Error(`the guide's snippets use app id 1; the test server has ${server.appId}`);
  const swaps = [
    [/\bapp-key\b/g, server.key],
    [/\bapp-secret\b/g, server.secret],
    [/\blocalhost\b/g, server.host],
    [/\b6001\b/g, String(port)],
  ];
  let out = text;
  for (const [pattern, value] of swaps) out = out.replace(pattern, value);
  for (const example of ['app-key', 'localhost', '6001']) {
    if (!text.includes(example)) throw new Error(`${what} should use the example value ${example}`);
  }
  return out;
}

/**
 * KEY=VALUE lines as Laravel (phpdotenv) and Vite (dotenv) read them: comments and blank lines
 * skipped, quotes removed, `${NAME}` replaced by an earlier line's value except in single quotes.
 */
function parseDotenv(text, what) {
  const vars = {};
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([A-Z_][A-Z0-9_]*)=(.*)$/);
    if (!m) throw new Error(`${what} line ${i + 1} is not KEY=VALUE: ${raw}`);
    let value = m[2];
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.endsWith(quote) && value.length >= 2) value = value.slice(1, -1);
    if (quote !== "'") {
      value = value.replace(/\$\{([A-Z_][A-Z0-9_]*)\}/g, (_, name) => {
        if (!(name in vars)) throw new Error(`${what} line ${i + 1} uses \${${name}} before it is set`);
        return vars[name];
      });
    }
    vars[m[1]] = value;
  }
  return vars;
}

/** This process's environment without any Pusher, Vite or broadcasting settings, plus `vars`. */
function environment(vars) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^(PUSHER_|VITE_|BROADCAST_)/.test(name)),
  );
  return { ...env, ...vars };
}

/** The laravel/.env variables as one side sees them: the browser's port or the REST port. */
const laravelEnv = (port) => parseDotenv(localize(snippet('laravel/.env'), port, 'laravel/.env'), 'laravel/.env');

/** What Vite does to `import.meta.env.NAME` when it builds: the VITE_ variable's value, or undefined. */
function viteBuild(source, env) {
  return source.replace(/import\.meta\.env\.([A-Z_][A-Z0-9_]*)/g, (_, name) =>
    name.startsWith('VITE_') && name in env ? JSON.stringify(env[name]) : 'undefined',
  );
}

// ---- the pages ---------------------------------------------------------------------------------

/** The browser build of each pusher-js tested, by major version. */
const PUSHER_JS = {
  3: 'pusher-js-3/dist/pusher.min.js',
  7: 'pusher-js-7/dist/web/pusher.min.js',
  8: 'pusher-js/dist/web/pusher.min.js',
};

/** Runs after a snippet that made `pusher`: subscribe to `orders` and record what arrives. */
const PUSHER_PROBE = `
window.probe = { subscribed: false, received: [], states: [] };
pusher.connection.bind('state_change', function (s) { probe.states.push(s.current); });
var orders = pusher.subscribe('orders');
orders.bind('pusher:subscription_succeeded', function () { probe.subscribed = true; });
['shipped', 'App\\\\Events\\\\OrderShipped'].forEach(function (name) {
  orders.bind(name, function (data) { probe.received.push({ event: name, data: data }); });
});
`;

/** Runs after Laravel's echo.js: Echo's own listeners on `orders`. */
const ECHO_PROBE = `
import '/laravel/resources/js/echo.js';
window.probe = { subscribed: false, received: [], states: [] };
window.Echo.connector.pusher.connection.bind('state_change', (s) => probe.states.push(s.current));
window.Echo.channel('orders')
  .subscribed(() => { probe.subscribed = true; })
  .listen('OrderShipped', (data) => probe.received.push({ event: 'App\\\\Events\\\\OrderShipped', data }))
  .listen('.shipped', (data) => probe.received.push({ event: 'shipped', data }));
`;

const html = (body) => `<!doctype html><html><head><meta charset="utf-8"><title>migrating</title></head><body>${body}</body></html>`;
const js = (body) => ({ type: 'text/javascript', body });

/** Every file the pages load, by URL path; `selfPort` is the page server's own port. */
function pageFiles(selfPort) {
  const files = {};
  for (const [major, dist] of Object.entries(PUSHER_JS)) {
    files[`/assets/pusher-js-${major}.js`] = js(readFileSync(join(NODE_MODULES, dist)));
  }
  // The snippets, with the browser's view of Herald (in a cluster, node A).
  files['/browser/pusher-js-3.js'] = js(localize(snippet('browser/pusher-js-3.js'), server.port, 'browser/pusher-js-3.js'));
  files['/browser/pusher-js-8.js'] = js(localize(snippet('browser/pusher-js-8.js'), server.port, 'browser/pusher-js-8.js'));
  files['/probe.js'] = js(PUSHER_PROBE);
  for (const [major, options] of [
    [3, 'pusher-js-3'],
    [7, 'pusher-js-8'],
    [8, 'pusher-js-8'],
  ]) {
    files[`/pusher-js-${major}`] = {
      type: 'text/html; charset=utf-8',
      body: html(
        `<script src="/assets/pusher-js-${major}.js"></script>` +
          `<script src="/browser/${options}.js"></script><script src="/probe.js"></script>`,
      ),
    };
  }

  // Laravel Echo as Vite would bundle resources/js/echo.js: bare imports resolved by an import map.
  files['/laravel/resources/js/echo.js'] = js(viteBuild(snippet('laravel/resources/js/echo.js'), laravelEnv(server.port)));
  files['/modules/laravel-echo.js'] = js(readFileSync(join(NODE_MODULES, 'laravel-echo/dist/echo.js')));
  files['/modules/pusher-js.js'] = js("import '/assets/pusher-js-8.js';\nexport default self.Pusher;\n");
  files['/echo-probe.js'] = js(ECHO_PROBE);
  const importMap = { imports: { 'laravel-echo': '/modules/laravel-echo.js', 'pusher-js': '/modules/pusher-js.js' } };
  files['/laravel-echo'] = {
    type: 'text/html; charset=utf-8',
    body: html(`<script type="importmap">${JSON.stringify(importMap)}</script><script type="module" src="/echo-probe.js"></script>`),
  };

  // The two claims. No WebSocket is served on the page server's port, so pusher-js 8 without
  // enabledTransports must fall back; pusher-js 3 without disableStats connects and reports.
  files['/claim-fallback'] = {
    type: 'text/html; charset=utf-8',
    body: html(
      '<script src="/assets/pusher-js-8.js"></script><script>' +
        `new Pusher(${JSON.stringify(server.key)}, { cluster: 'mt1', wsHost: ${JSON.stringify(server.host)}, ` +
        `wsPort: ${selfPort}, wssPort: ${selfPort}, forceTLS: false });</script>`,
    ),
  };
  files['/claim-stats'] = {
    type: 'text/html; charset=utf-8',
    body: html(
      '<script src="/assets/pusher-js-3.js"></script><script>' +
        `var pusher = new Pusher(${JSON.stringify(server.key)}, { wsHost: ${JSON.stringify(server.host)}, ` +
        `wsPort: ${server.port}, wssPort: ${server.port}, encrypted: false, enabledTransports: ['ws', 'wss'] });` +
        '</script><script src="/probe.js"></script>',
    ),
  };
  return files;
}

/** Serve the pages on 127.0.0.1; resolves with the base URL. WebSocket upgrades are refused. */
async function servePages() {
  let files = {};
  const http = createServer((request, response) => {
    const path = new URL(request.url, 'http://127.0.0.1').pathname;
    const file = files[path];
    if (!file) {
      step(`page server: 404 for ${request.method} ${request.url}`);
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(file.body);
  });
  http.on('upgrade', (_request, socket) => socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'));
  await new Promise((resolve, reject) => http.listen(0, '127.0.0.1', resolve).once('error', reject));
  onCleanup(() => new Promise((resolve) => http.close(resolve)));
  files = pageFiles(http.address().port);
  return `http://127.0.0.1:${http.address().port}`;
}

/** Open `path` in a new tab; every request it makes to another host is recorded in `offMachine`. */
async function openPage(context, base, path, name) {
  const page = await context.newPage();
  const offMachine = [];
  page.on('request', (request) => {
    const { hostname } = new URL(request.url());
    if (hostname !== '127.0.0.1') offMachine.push(request.url());
  });
  watchPage(page, name);
  await page.goto(`${base}${path}`);
  return { page, name, offMachine };
}

// ---- the senders -------------------------------------------------------------------------------

/** Each sender: its label (also the event's data), the event name it sends, and how to run it. */
function senders() {
  // The server SDKs' view of Herald: in a cluster, the other node.
  const env = environment(laravelEnv(server.restPort));
  const { PUSHER_URL } = parseDotenv(localize(snippet('rails/pusher_url.env'), server.restPort, 'rails/pusher_url.env'), 'rails/pusher_url.env');
  if (!PUSHER_URL) throw new Error('rails/pusher_url.env does not set PUSHER_URL');
  const urlEnv = environment({ PUSHER_URL });
  const node = (label, how, options) =>
    runProgram('the Node pusher SDK', process.execPath, [join(E2E_DIR, 'migrating/node/trigger.mjs'), label, how], options);
  const list = [];
  for (const gem of ['0.15.2', 'latest']) {
    list.push({
      label: `Rails, PUSHER_URL only, gem ${gem}`,
      run: (label) => runRuby(gem, 'migrating/rails/trigger.rb', [label, 'url'], { env: urlEnv }),
    });
    list.push({
      label: `Rails, config/initializers/pusher.rb, gem ${gem}`,
      run: (label) => runRuby(gem, 'migrating/rails/trigger.rb', [label, 'initializer'], { env }),
    });
  }
  list.push({
    label: 'Laravel broadcaster, config/broadcasting.php',
    event: 'App\\Events\\OrderShipped',
    run: (label) => runPhp('migrating/laravel/broadcast.php', [label], { env }),
  });
  list.push({ label: 'PHP SDK', run: (label) => runPhp('migrating/php/trigger.php', [label], { env }) });
  list.push({ label: 'Node SDK, constructor', run: (label) => node(label, 'constructor', { env }) });
  list.push({ label: 'Node SDK, Pusher.forURL', run: (label) => node(label, 'url', { env: urlEnv }) });
  list.push({ label: 'Python SDK', run: (label) => runPython('migrating/python/trigger.py', [label], { env }) });
  return list.map((sender) => ({ event: 'shipped', ...sender }));
}

/** Run `jobs` (functions returning promises), at most `limit` at once. */
async function pool(jobs, limit) {
  const queue = [...jobs];
  const workers = Array.from({ length: limit }, async () => {
    while (queue.length) await queue.shift()();
  });
  await Promise.all(workers);
}

// ---- the scenario ------------------------------------------------------------------------------

run(async () => {
  for (const [path, use] of Object.entries(SNIPPETS)) step(`migrating/${path} (${use}): ${snippet(path).length} bytes`);
  const base = await servePages();
  const context = await openBrowser();
  const receivers = await Promise.all([
    openPage(context, base, '/pusher-js-3', 'pusher-js 3.0 (browser/pusher-js-3.js)'),
    openPage(context, base, '/pusher-js-7', 'pusher-js 7.6 (browser/pusher-js-8.js)'),
    openPage(context, base, '/pusher-js-8', 'pusher-js 8 (browser/pusher-js-8.js)'),
    openPage(context, base, '/laravel-echo', 'Laravel Echo (laravel/resources/js/echo.js)'),
  ]);
  const probe = (receiver) => receiver.page.evaluate(() => window.probe ?? null);
  for (const receiver of receivers) {
    await until(20_000, `${receiver.name} subscribed to orders`, async () => (await probe(receiver))?.subscribed);
  }

  // The claims, meanwhile: both pages report to Pusher's hosts within seconds.
  const fallback = await openPage(context, base, '/claim-fallback', 'pusher-js 8 without enabledTransports');
  const stats = await openPage(context, base, '/claim-stats', 'pusher-js 3 without disableStats');

  const list = senders();
  await pool(
    list.map((sender) => async () => {
      const out = await sender.run(sender.label);
      step(out.trim());
    }),
    3,
  );

  const expected = list.map(({ label, event }) => ({ event, data: { from: label } })).sort(byLabel);
  for (const receiver of receivers) {
    let last;
    try {
      await until(20_000, `${receiver.name} to receive the event of each of ${list.length} senders`, async () => {
        last = await probe(receiver);
        return last.received.length >= list.length;
      });
    } finally {
      step(`${receiver.name} received ${JSON.stringify(last?.received)}`);
    }
    expectEqual([...last.received].sort(byLabel), expected, `${receiver.name} got every sender's event once`);
    expectEqual(receiver.offMachine, [], `${receiver.name} sent no request off this machine`);
  }

  await until(20_000, 'pusher-js 8 without enabledTransports to try sockjs-mt1.pusher.com', () =>
    fallback.offMachine.some((url) => new URL(url).hostname === 'sockjs-mt1.pusher.com'),
  );
  step(`pusher-js 8 without enabledTransports tried: ${fallback.offMachine.join(', ')}`);
  await until(20_000, 'pusher-js 3 without disableStats to report to stats.pusher.com', () =>
    stats.offMachine.some((url) => new URL(url).hostname === 'stats.pusher.com'),
  );
  step(`pusher-js 3 without disableStats sent: ${stats.offMachine.join(', ')}`);
});

function byLabel(a, b) {
  return a.data.from < b.data.from ? -1 : a.data.from > b.data.from ? 1 : 0;
}
