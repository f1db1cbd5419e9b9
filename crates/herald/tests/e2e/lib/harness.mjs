// What every Node client script shares: the server settings from the environment that e2e.rs sets,
// a watchdog for the whole script, named waits that say what they were waiting for when they time
// out, and running the Python, Ruby and PHP SDK clients as child processes.

import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect, isDeepStrictEqual } from 'node:util';
import Pusher from 'pusher';

/** The directory holding package.json, node_modules and the client scripts. */
export const E2E_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');

export function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set; run this script through \`cargo test -p herald --features e2e --test e2e\``);
    process.exit(2);
  }
  return value;
}

/**
 * Where Herald listens and the one app it serves. `port` is for WebSocket clients, `restPort` for
 * the server SDKs: the same port on a single node, two nodes of one cluster otherwise.
 */
export const server = {
  host: required('HERALD_HOST'),
  port: Number(required('HERALD_PORT')),
  restPort: Number(process.env.HERALD_REST_PORT || required('HERALD_PORT')),
  /** wss:// and https:// only (the CA is in NODE_EXTRA_CA_CERTS, set by e2e.rs). */
  tls: process.env.HERALD_TLS === '1',
  appId: required('HERALD_APP_ID'),
  key: required('HERALD_KEY'),
  secret: required('HERALD_SECRET'),
};

/** Milliseconds the whole script may take; e2e.rs kills it a little after this. */
export const TIMEOUT_MS = Number(process.env.HERALD_E2E_TIMEOUT_MS || 120_000);

/** The wait in progress, named in the watchdog's message. */
let current = 'the scenario to start';
const started = Date.now();
const cleanups = [];

/** Log a step, so that a failure shows how far the script got. */
export function step(text) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${text}`);
}

/** Register something to undo (a browser, an HTTP server) before the script exits, even on failure. */
export function onCleanup(fn) {
  cleanups.push(fn);
}

async function cleanUp() {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch (err) {
      console.error(`cleanup failed: ${err?.message ?? err}`);
    }
  }
}

/** Print why the script failed, clean up, and exit non-zero. */
export async function fail(message) {
  console.error(`FAILED: ${message}`);
  await cleanUp();
  process.exit(1);
}

/**
 * Run the scenario: exit 0 when `main` resolves, 1 with the reason when it throws or when the
 * watchdog fires first.
 */
export function run(main) {
  const watchdog = setTimeout(() => {
    fail(`the whole scenario took longer than ${TIMEOUT_MS / 1000}s; it was waiting for: ${current}`);
  }, TIMEOUT_MS);
  main().then(
    async () => {
      clearTimeout(watchdog);
      await cleanUp();
      console.log('ok');
      process.exit(0);
    },
    // A timed-out wait already says everything; anything else gets its stack.
    (err) => fail(err instanceof WaitTimeout ? err.message : (err?.stack ?? String(err))),
  );
}

/** A wait that ran out of time; its message names what never happened. */
class WaitTimeout extends Error {}

/** The Node SDK's request errors keep the useful part (status, body, cause) outside `message`. */
function describe(err) {
  const parts = [err?.message ?? String(err)];
  if (err?.status) parts.push(`HTTP ${err.status} ${err.body ?? ''}`.trim());
  if (err?.error) parts.push(String(err.error.message ?? err.error));
  return parts.join(': ');
}

/**
 * Resolve with `promise`, or reject after `ms` with a message naming `what`. Every wait in a
 * scenario goes through here so that a hang reports what never happened.
 */
export function within(ms, what, promise) {
  current = what;
  step(`waiting for ${what}`);
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new WaitTimeout(`timed out after ${ms / 1000}s waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Poll `check` (async, returns truthy when done) every 100 ms until it passes or `ms` runs out. */
export async function until(ms, what, check) {
  let last;
  const poll = (async () => {
    for (;;) {
      try {
        const value = await check();
        if (value) return value;
      } catch (err) {
        last = err;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  try {
    return await within(ms, what, poll);
  } catch (err) {
    if (last) err.message += ` (last error: ${describe(last)})`;
    throw err;
  }
}

/** The Node server SDK pointed at Herald over plain HTTP; `options` add to its settings. */
export function nodeSdk(options = {}) {
  return new Pusher({
    appId: server.appId,
    key: server.key,
    secret: server.secret,
    host: server.host,
    port: server.restPort,
    useTLS: server.tls,
    ...options,
  });
}

/** Whether a channel has subscribers, asked through the signed REST API. */
export async function occupied(sdk, channel) {
  const response = await sdk.get({ path: `/channels/${channel}` });
  const body = await response.json();
  return body.occupied === true;
}

/**
 * Run a client program to completion with the server settings in its environment. Rejects with
 * its output when it exits non-zero; resolves with its stdout otherwise. The default timeout is
 * long because most of it is start-up: with every core busy, the Ruby launcher (two Ruby
 * processes) has taken over 20 s, a Python SDK client over 10 s. `env`, when given, is the
 * program's whole environment instead of this process's.
 */
export function runProgram(what, command, args, { input, timeoutMs = 60_000, env } = {}) {
  current = `${what} to finish`;
  step(`running ${what}: ${command} ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: E2E_DIR, env: env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${what} could not start: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) {
        resolve(stdout);
      } else {
        const how = signal ? `was killed by ${signal} (timeout ${timeoutMs / 1000}s)` : `exited with ${code}`;
        reject(new Error(`${what} ${how}\n--- its stdout ---\n${stdout}--- its stderr ---\n${stderr}`));
      }
    });
    child.stdin.end(input ?? '');
  });
}

/** Run a Ruby script with the vendored `pusher` gem (`gem` is "0.15.2" or "latest"). */
export function runRuby(gem, script, args = [], options = {}) {
  const launcher = join(required('HERALD_RUBY_CLIENTS'), 'pusher-ruby');
  return runProgram(`the Ruby pusher gem ${gem}`, launcher, ['--gem', gem, join(E2E_DIR, script), ...args], options);
}

/** Run a Python script with the `pusher` SDK from the test venv. */
export function runPython(script, args = [], options = {}) {
  const python = join(E2E_DIR, '.venv', 'bin', 'python');
  return runProgram('the Python pusher SDK', python, [join(E2E_DIR, script), ...args], options);
}

/**
 * Run a PHP script with the official PHP SDK loadable (`pusher-php` from HERALD_PHP_CLIENTS, which
 * needs no Composer).
 */
export function runPhp(script, args = [], options = {}) {
  const launcher = join(required('HERALD_PHP_CLIENTS'), 'pusher-php');
  return runProgram('the PHP pusher SDK', launcher, [join(E2E_DIR, script), ...args], options);
}

// ---- pusher-js clients -------------------------------------------------------------------------

/** The pusher-js packages a script can be parametrized with, by major version. */
const PUSHER_JS = { 8: 'pusher-js', 7: 'pusher-js-7' };

/**
 * The pusher-js constructor for `major` ("8": pusher-js 8.x, "7": pusher-js 7.6.0), from a script's
 * command line. Under Node both packages' main build is the one with encrypted-channel support
 * (tweetnacl built in), so `private-encrypted-` channels work with either.
 */
export async function pusherJs(major) {
  const name = PUSHER_JS[major];
  if (!name) {
    console.error(`unknown pusher-js major version ${inspect(major)}; use ${Object.keys(PUSHER_JS).join(' or ')}`);
    process.exit(2);
  }
  const { version } = createRequire(import.meta.url)(`${name}/package.json`);
  const { default: PusherJs } = await import(name);
  step(`using ${name} ${version}`);
  return PusherJs;
}

/**
 * A pusher-js client connected to Herald over plain WebSocket, named in every log line and
 * disconnected on cleanup. `options` go to the constructor on top of the connection settings.
 */
export function pusherClient(PusherJs, name, options = {}) {
  const client = new PusherJs(server.key, {
    cluster: 'mt1',
    wsHost: server.host,
    wsPort: server.port,
    wssPort: server.port,
    forceTLS: server.tls,
    enabledTransports: ['ws', 'wss'],
    ...options,
  });
  onCleanup(() => client.disconnect());
  client.connection.bind('state_change', ({ previous, current }) => step(`${name}: ${previous} -> ${current}`));
  client.connection.bind('error', (err) => step(`${name}: connection error ${inspect(err, { depth: 4 })}`));
  return client;
}

/**
 * pusher-js options that sign in this process with a Node SDK instance, as an app's auth endpoints
 * would: `channelAuthorization` (with `presence` as the member on presence channels) and
 * `userAuthentication` (with `user` as the user data).
 */
export function signedBy(sdk, { presence, user } = {}) {
  const sign = (what, fn, callback) => {
    let result;
    try {
      result = fn();
    } catch (err) {
      step(`signing ${what} failed: ${err.message}`);
      return callback(err, null);
    }
    callback(null, result);
  };
  return {
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, callback) =>
        sign(`channel ${channelName}`, () =>
          sdk.authorizeChannel(socketId, channelName, channelName.startsWith('presence-') ? presence : undefined),
        callback),
    },
    userAuthentication: {
      customHandler: ({ socketId }, callback) =>
        sign('user sign-in', () => sdk.authenticateUser(socketId, user), callback),
    },
  };
}

/** Wait until `client` is connected; resolves with its socket id. */
export function connected(client, name, ms = 10_000) {
  return within(
    ms,
    `${name} to reach connection state 'connected'`,
    new Promise((resolve) => {
      if (client.connection.state === 'connected') return resolve(client.connection.socket_id);
      client.connection.bind('connected', () => resolve(client.connection.socket_id));
    }),
  );
}

/**
 * Subscribe `client` to `channelName` and wait for `pusher:subscription_succeeded`; resolves with
 * `{ channel, data, events }`: `data` is what pusher-js passed (the members on presence channels),
 * `events` records everything the channel emits from the subscription on (so that what follows
 * `subscription_succeeded` at once, like a cached event, is not missed). A
 * `pusher:subscription_error` fails the wait with its payload.
 */
export function subscribed(client, channelName, name, ms = 10_000) {
  const channel = client.subscribe(channelName);
  const events = recordEvents(channel, `${name} ${channelName}`);
  return within(
    ms,
    `pusher:subscription_succeeded on ${channelName} for ${name}`,
    new Promise((resolve, reject) => {
      channel.bind('pusher:subscription_succeeded', (data) => resolve({ channel, data, events }));
      channel.bind('pusher:subscription_error', (err) =>
        reject(new Error(`${name}: subscribing to ${channelName} failed: ${inspect(err, { depth: 4 })}`)),
      );
    }),
  );
}

/**
 * What something emitted, in order, with waits on it. Entries are whatever `push` was given; waits
 * look at past entries too, so binding early and waiting late never misses anything.
 */
export class Recorder {
  constructor(label) {
    this.label = label;
    this.entries = [];
    this.waiters = new Set();
  }

  push(entry) {
    this.entries.push(entry);
    for (const waiter of [...this.waiters]) waiter();
  }

  /** Entries matching `test`. */
  matching(test) {
    return this.entries.filter(test);
  }

  /** Wait for `count` entries matching `test`; resolves with them. */
  waitFor(ms, what, test, count = 1) {
    const promise = new Promise((resolve) => {
      const check = () => {
        const found = this.matching(test);
        if (found.length < count) return false;
        this.waiters.delete(check);
        resolve(found);
        return true;
      };
      if (!check()) this.waiters.add(check);
    });
    return within(ms, `${what} (on ${this.label})`, promise).catch((err) => {
      err.message += `\n  ${this.label} had: ${inspect(this.entries, { depth: 5, breakLength: 160 })}`;
      throw err;
    });
  }
}

/** Every event a channel (or `pusher.user`, or a watchlist) emits, as `{ event, data }`. */
export function recordEvents(emitter, label) {
  const recorder = new Recorder(label);
  emitter.bind_global((event, data) => recorder.push({ event, data }));
  return recorder;
}

/** Every frame `client` receives, as pusher-js parsed it (`{ event, channel, data, user_id }`). */
export function recordFrames(client, label) {
  const recorder = new Recorder(label);
  client.connection.bind('message', (frame) => recorder.push(frame));
  return recorder;
}

// ---- checks ------------------------------------------------------------------------------------

/** Throw unless `actual` deep-equals `expected`, showing both. */
export function expectEqual(actual, expected, what) {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new Error(
      `${what}:\n  expected ${inspect(expected, { depth: 6 })}\n  got      ${inspect(actual, { depth: 6 })}`,
    );
  }
  step(`ok: ${what}`);
}

/** Throw `message` unless `condition`. */
/**
 * Poll `read` until its value deep-equals `expected` (up to 10 s), then pass as `expectEqual` does;
 * fail with the last value otherwise. For REST reads after a change: a node answers from its view
 * of the cluster, which hears of a change made on another node a moment later (reads on hosted
 * Pusher are eventually consistent too). On a single node the first read is already final.
 */
export async function settled(read, expected, what) {
  let last;
  try {
    await until(10_000, what, async () => {
      last = await read();
      return isDeepStrictEqual(last, expected);
    });
  } catch {
    // Report the difference rather than a bare timeout.
  }
  expectEqual(last, expected, what);
  return last;
}

export function expect(condition, message) {
  if (!condition) throw new Error(message);
  step(`ok: ${message}`);
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** GET a REST API path through the Node SDK (signed) and return the parsed JSON body. */
export async function restGet(sdk, path, params) {
  const response = await sdk.get({ path, params });
  const body = await response.json();
  step(`REST GET ${path}${params ? ` ${JSON.stringify(params)}` : ''} -> ${response.status} ${JSON.stringify(body)}`);
  return body;
}
