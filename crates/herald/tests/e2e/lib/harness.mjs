// What every Node client script shares: the server settings from the environment that e2e.rs sets,
// a watchdog for the whole script, named waits that say what they were waiting for when they time
// out, and running the Python and Ruby SDK clients as child processes.

import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

/** Where Herald listens and the one app it serves. */
export const server = {
  host: required('HERALD_HOST'),
  port: Number(required('HERALD_PORT')),
  appId: required('HERALD_APP_ID'),
  key: required('HERALD_KEY'),
  secret: required('HERALD_SECRET'),
};

/** Milliseconds the whole script may take; e2e.rs kills it a little after this. */
export const TIMEOUT_MS = Number(process.env.HERALD_E2E_TIMEOUT_MS || 60_000);

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

/** The Node server SDK pointed at Herald over plain HTTP. */
export function nodeSdk() {
  return new Pusher({
    appId: server.appId,
    key: server.key,
    secret: server.secret,
    host: server.host,
    port: server.port,
    useTLS: false,
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
 * its output when it exits non-zero; resolves with its stdout otherwise.
 */
export function runProgram(what, command, args, { input, timeoutMs = 30_000 } = {}) {
  current = `${what} to finish`;
  step(`running ${what}: ${command} ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: E2E_DIR, stdio: ['pipe', 'pipe', 'pipe'] });
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
export function runRuby(gem, script, args = []) {
  const launcher = join(required('HERALD_RUBY_CLIENTS'), 'pusher-ruby');
  return runProgram(`the Ruby pusher gem ${gem}`, launcher, ['--gem', gem, join(E2E_DIR, script), ...args]);
}

/** Run a Python script with the `pusher` SDK from the test venv. */
export function runPython(script, args = [], options = {}) {
  const python = join(E2E_DIR, '.venv', 'bin', 'python');
  return runProgram('the Python pusher SDK', python, [join(E2E_DIR, script), ...args], options);
}
