// A request body over Herald's REST body limit (1 MiB for the default 10 KB event limit) surfaces in
// the official PHP SDK as ApiErrorException 413, as event data over 10 KB does
// (node/php_sdk_users.mjs). Guzzle sends bodies of 1 MB or more with `Expect: 100-Continue`: Herald
// refuses them from their Content-Length before `100 Continue`, so the body is never sent. (Herald
// used to answer `100 Continue`, read 1 MiB, answer 413 and close with the rest unread; curl then
// often reported "Send failure: Broken pipe" before reading the 413, about one request in five.)
//
// It makes ATTEMPTS such triggers in one PHP process and expects ApiErrorException 413 for each.
//
//   node node/php_sdk_body_limit.mjs

import { expectEqual, run, step } from '../lib/harness.mjs';
import { phpAnswers } from '../lib/php_sdk.mjs';

const ATTEMPTS = 20;
/** Twice the body limit. */
const DATA_BYTES = 2 << 20;

run(async () => {
  const data = { text: 'y'.repeat(DATA_BYTES) };
  const answers = await phpAnswers(Array.from({ length: ATTEMPTS }, () => ({ call: 'trigger', args: ['php-big', 'big', data] })));
  const outcomes = {};
  for (const { result, error } of answers) {
    const outcome = error ? `${error.class} (code ${error.status}): ${error.message.slice(0, 80)}` : `returned ${JSON.stringify(result)}`;
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  }
  step(`outcomes of ${ATTEMPTS} triggers with ${DATA_BYTES} bytes of data: ${JSON.stringify(outcomes, null, 2)}`);
  expectEqual(
    answers.map(({ error }) => error && { class: error.class, status: error.status }),
    Array(ATTEMPTS).fill({ class: 'Pusher\\ApiErrorException', status: 413 }),
    `every body over the limit surfaced as ApiErrorException 413 (${ATTEMPTS} attempts)`,
  );
});
