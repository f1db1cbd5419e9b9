// The official PHP SDK as the Node scenarios use it: calls run through php/sdk.php (one PHP process
// per batch of calls), and pusher-js options whose authorizers ask the PHP SDK for every token, as
// a Laravel app's auth endpoints would.

import { inspect } from 'node:util';
import { runPhp, step } from './harness.mjs';

/**
 * Run `calls` (`[{ call, args }]`, methods of `Pusher\Pusher`) in one PHP process, with `client`
 * replacing some of its settings (see php/sdk.php). Resolves with one `{ result }` or
 * `{ error: { class, status, message } }` per call.
 */
export async function phpAnswers(calls, client = {}) {
  const out = await runPhp('php/sdk.php', [], { input: JSON.stringify({ client, calls }) });
  const line = out.trim().split('\n').pop();
  let answers;
  try {
    answers = JSON.parse(line);
  } catch {
    throw new Error(`php/sdk.php did not end with a JSON line; its stdout:\n${out}`);
  }
  if (!Array.isArray(answers) || answers.length !== calls.length) {
    throw new Error(`php/sdk.php answered ${inspect(answers)} to ${calls.length} calls`);
  }
  return answers;
}

/** What each call returned; rejects naming the call and the SDK's exception if any threw. */
export async function php(calls, client = {}) {
  const answers = await phpAnswers(calls, client);
  return answers.map(({ result, error }, i) => {
    if (error) {
      const shown = `${calls[i].call}(${JSON.stringify(calls[i].args ?? []).slice(1, -1).slice(0, 200)})`;
      throw new Error(`the PHP SDK's ${shown} threw ${error.class} (code ${error.status}): ${error.message}`);
    }
    return result;
  });
}

/** One PHP SDK call; resolves with what it returned. */
export async function php1(call, args, client = {}) {
  const [result] = await php([{ call, args }], client);
  return result;
}

/**
 * pusher-js options (`channelAuthorization` and `userAuthentication` custom handlers) that get
 * every token from the PHP SDK: `authorizePresenceChannel` with `presence` (`{ user_id, user_info }`)
 * on presence channels, `authorizeChannel` on the others, `authenticateUser` with `user` (the user
 * data) on sign-in. The SDK answers with the JSON text an auth endpoint sends, parsed here as
 * pusher-js parses an endpoint's answer. Each token goes to `tokens` (when given) as
 * `{ kind, channelName, socketId, token }`.
 */
export function phpSigned({ presence, user, client = {}, tokens } = {}) {
  const sign = (what, call, args, params, callback) => {
    php1(call, args, client).then(
      (json) => {
        const token = JSON.parse(json);
        // A copy: pusher-js deletes `shared_secret` from the object it is given.
        tokens?.push({ ...params, kind: call, token: structuredClone(token) });
        callback(null, token);
      },
      (err) => {
        step(`the PHP SDK could not sign ${what}: ${err.message}`);
        callback(err, null);
      },
    );
  };
  return {
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, callback) => {
        const [call, args] =
          presence && channelName.startsWith('presence-')
            ? ['authorizePresenceChannel', [channelName, socketId, presence.user_id, presence.user_info]]
            : ['authorizeChannel', [channelName, socketId]];
        sign(`channel ${channelName}`, call, args, { socketId, channelName }, callback);
      },
    },
    userAuthentication: {
      customHandler: ({ socketId }, callback) =>
        sign('the user sign-in', 'authenticateUser', [socketId, user], { socketId }, callback),
    },
  };
}
