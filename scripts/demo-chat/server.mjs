// The seed chat on Herald, started by scripts/demo (which checks and installs what this needs first).
//
// Starts `herald serve` on 127.0.0.1 with one app, then serves the seed demo's page rebuilt from its
// own files (crates/herald/tests/e2e/lib/seed_page.mjs) and stands in for its Rails app: the form's
// `POST /events` triggers with the Node `pusher` SDK exactly as the demo's job did with the Ruby gem,
// `trigger('test_chat_channel', 'new_message', { name, message })`, and answers with the demo's
// `events/create.js.erb`. SIGINT or SIGTERM stops Herald (by its PID) and then this process.
//
//   node scripts/demo-chat/server.mjs --herald-bin PATH --seed DIR [--port N] [--herald-port N]
//                                     [--pusher-js 8|3]

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CHAT_CHANNEL, seedPage } from '../../crates/herald/tests/e2e/lib/seed_page.mjs';

// The Node SDK from the e2e package's node_modules, installed from its lock file.
const Pusher = createRequire(new URL('../../crates/herald/tests/e2e/package.json', import.meta.url))('pusher');

const HOST = '127.0.0.1';
/** The demo's one app; the same credentials as README's examples. */
const APP = { id: '1', key: 'app-key', secret: 'app-secret' };
/** How long Herald may take to say which port it listens on. */
const HERALD_START_MS = 30_000;
/** How long Herald may take to stop after SIGTERM before it is killed. */
const HERALD_STOP_MS = 10_000;

const say = (text) => console.log(`demo: ${text}`);

function options() {
  const { values } = parseArgs({
    options: {
      'herald-bin': { type: 'string' },
      seed: { type: 'string' },
      port: { type: 'string', default: '3000' },
      'herald-port': { type: 'string', default: '6001' },
      'pusher-js': { type: 'string', default: '8' },
    },
  });
  for (const name of ['herald-bin', 'seed']) {
    if (!values[name]) throw new Error(`--${name} is required (scripts/demo passes it)`);
  }
  const port = (name) => {
    const value = Number(values[name]);
    if (!Number.isInteger(value) || value < 0 || value > 65535) throw new Error(`--${name} must be a port number`);
    return value;
  };
  if (!['3', '8'].includes(values['pusher-js'])) throw new Error('--pusher-js must be 8 or 3');
  return {
    heraldBin: values['herald-bin'],
    seed: values.seed,
    port: port('port'),
    heraldPort: port('herald-port'),
    pusherJs: Number(values['pusher-js']),
  };
}

/**
 * Start Herald, in a process group of its own so that only this process stops it (a terminal's
 * Ctrl-C reaches this one, which then stops Herald by its PID). Its log goes to this process's
 * stderr. None of the caller's HERALD_* variables reach it: the flags are its whole configuration.
 */
function startHerald(bin, port) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('HERALD_')));
  const args = ['serve', '--app-id', APP.id, '--key', APP.key, '--secret', APP.secret];
  args.push('--host', HOST, '--port', String(port));
  return spawn(bin, args, { env, stdio: ['ignore', 'inherit', 'pipe'], detached: true });
}

/** The port Herald says it listens on, once it has said so. */
function listeningPort(child, bin, port) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`Herald (${bin}) did not log "listening on" within ${HERALD_START_MS / 1000}s`));
    }, HERALD_START_MS);
    let pending = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      process.stderr.write(chunk);
      const lines = (pending + chunk).split('\n');
      pending = lines.pop();
      for (const line of lines) {
        const found = line.match(/listening on http:\/\/\S*:(\d+)/);
        if (found) {
          clearTimeout(timer);
          resolve(Number(found[1]));
        }
      }
    });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot start Herald (${bin}): ${err.message}`));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const how = signal ? `was killed by ${signal}` : `exited with ${code}`;
      reject(new Error(`Herald ${how} before listening (is port ${port} taken? choose another with --herald-port)`));
    });
  });
}

/** Stop Herald by its PID: SIGTERM (it closes connections with 4200), SIGKILL if it hangs. */
function stopHerald(child) {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), HERALD_STOP_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * `events/create.js.erb`, what the demo's `POST /events` answers: it clears and refocuses the message
 * field. It has no ERB; any would be an error here rather than sent as is.
 */
function createJs(seed) {
  const js = readFileSync(join(seed, 'app/views/events/create.js.erb'), 'utf8');
  if (js.includes('<%')) throw new Error('app/views/events/create.js.erb now has ERB, which the demo cannot render');
  return js;
}

/** The request body, up to `limit` bytes. */
function body(request, limit = 64 * 1024) {
  return new Promise((resolve, reject) => {
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk) => {
      text += chunk;
      if (text.length > limit) reject(new Error('request body too large'));
    });
    request.on('end', () => resolve(text));
    request.on('error', reject);
  });
}

/** `EventsController#create` and `SendEventsJob`: the form's params, triggered on the chat channel. */
async function createEvent(request, response, { sdk, created }) {
  const form = new URLSearchParams(await body(request));
  const name = form.get('pusher_event[name]');
  const message = form.get('pusher_event[message]');
  // `params.require(:pusher_event).permit(:name, :message)`: a missing field is nil, both missing a 400.
  if (name === null && message === null) {
    response.writeHead(400, { 'content-type': 'text/plain' }).end('param is missing: pusher_event\n');
    return;
  }
  const data = { name, message };
  say(`POST /events: trigger('${CHAT_CHANNEL}', 'new_message', ${JSON.stringify(data)})`);
  try {
    await sdk.trigger(CHAT_CHANNEL, 'new_message', data);
  } catch (err) {
    const detail = err.status ? `HTTP ${err.status} ${err.body ?? ''}` : (err.error?.message ?? err.message);
    say(`the trigger failed: ${detail}`);
    response.writeHead(502, { 'content-type': 'text/plain' }).end(`trigger failed: ${detail}\n`);
    return;
  }
  response.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
  response.end(created);
}

/** The page's files and `POST /events`, on HOST:`port`; resolves with the server once listening. */
function servePage(port, files, backend) {
  const http = createServer((request, response) => {
    const path = new URL(request.url, `http://${HOST}`).pathname;
    if (request.method === 'POST' && path === '/events') {
      createEvent(request, response, backend).catch((err) => {
        say(`POST /events failed: ${err.message}`);
        if (!response.headersSent) response.writeHead(500, { 'content-type': 'text/plain' });
        response.end();
      });
      return;
    }
    const file = request.method === 'GET' ? files[path] : undefined;
    if (!file) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    response.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-store' }).end(file.body);
  });
  return new Promise((resolve, reject) => {
    http.once('error', (err) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new Error(`port ${port} is taken; choose another with --port`)
          : new Error(`cannot serve the page on ${HOST}:${port}: ${err.message}`),
      ),
    );
    http.listen(port, HOST, () => resolve(http));
  });
}

async function main() {
  const opts = options();
  // Read before anything starts, so that a seed file this cannot handle stops the demo at once.
  const created = createJs(opts.seed);
  seedPage({ seedDir: opts.seed, major: opts.pusherJs, host: HOST, port: opts.heraldPort, key: APP.key });

  const herald = startHerald(opts.heraldBin, opts.heraldPort);
  let http;
  let stopping = false;
  const stop = async (code) => {
    if (stopping) return;
    stopping = true;
    say('stopping');
    await stopHerald(herald);
    http?.closeAllConnections();
    http?.close();
    process.exit(code);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => stop(0));

  try {
    const heraldPort = await listeningPort(herald, opts.heraldBin, opts.heraldPort);
    herald.on('exit', (code, signal) => {
      if (stopping) return;
      say(`Herald stopped on its own (${signal ?? `exit code ${code}`}); stopping the demo`);
      stop(1);
    });
    const files = seedPage({ seedDir: opts.seed, major: opts.pusherJs, host: HOST, port: heraldPort, key: APP.key });
    const sdk = new Pusher({
      appId: APP.id,
      key: APP.key,
      secret: APP.secret,
      host: HOST,
      port: heraldPort,
      useTLS: false,
    });
    http = await servePage(opts.port, files, { sdk, created });
    const url = `http://${HOST}:${http.address().port}/`;
    console.log('');
    say(`Herald (pid ${herald.pid}) on http://${HOST}:${heraldPort}`);
    say(`its app: id ${APP.id}, key ${APP.key}, secret ${APP.secret}`);
    say(`the seed chat with pusher-js ${opts.pusherJs}: open ${url} in two tabs and send a message from one`);
    say('Ctrl-C stops Herald and the page');
    console.log('');
  } catch (err) {
    say(err.message);
    await stop(1);
  }
}

main().catch((err) => {
  say(err.message);
  process.exit(1);
});
