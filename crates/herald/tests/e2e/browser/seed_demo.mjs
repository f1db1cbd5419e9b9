// The seed demo end to end: its chat page (lib/seed_page.mjs) open in headless Chromium and
// subscribed to Herald with pusher-js, the demo's trigger sent by the Ruby `pusher` gem, and the
// message line appearing in `.message-receiver`.
//
//   node browser/seed_demo.mjs PUSHER_JS_MAJOR RUBY_GEM      e.g. `3 0.15.2` or `8 latest`

import { createServer } from 'node:http';
import { nodeSdk, occupied, onCleanup, required, run, runRuby, server, step, until, within } from '../lib/harness.mjs';
import { openBrowser, watchPage } from '../lib/browser.mjs';
import { CHAT_CHANNEL, seedPage } from '../lib/seed_page.mjs';

const [major, gem] = process.argv.slice(2);
if (!major || !gem) {
  console.error('usage: node browser/seed_demo.mjs PUSHER_JS_MAJOR RUBY_GEM');
  process.exit(2);
}

/** Serve the page's files on 127.0.0.1, on a free port. */
async function servePage(files) {
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
  await new Promise((resolve, reject) => http.listen(0, '127.0.0.1', resolve).once('error', reject));
  onCleanup(() => new Promise((resolve) => http.close(resolve)));
  return `http://127.0.0.1:${http.address().port}/`;
}

run(async () => {
  const files = seedPage({
    seedDir: required('HERALD_SEED_DEMO'),
    major: Number(major),
    host: server.host,
    port: server.port,
    key: server.key,
  });
  const url = await servePage(files);
  const context = await openBrowser();
  const page = context.pages()[0] ?? (await context.newPage());
  watchPage(page, 'browser');

  await within(15_000, `the seed page to load from ${url}`, page.goto(url));

  const sdk = nodeSdk();
  await until(15_000, `GET /apps/${server.appId}/channels/${CHAT_CHANNEL} to report occupied: true`, () =>
    occupied(sdk, CHAT_CHANNEL),
  );

  const name = 'Ann';
  const message = `hello from pusher-js ${major} via the Ruby gem ${gem}, ünïcødé ✓`;
  const out = await runRuby(gem, 'ruby/trigger_chat.rb', [name, message]);
  step(`Ruby: ${out.trim()}`);

  // The demo appends `<p><strong>NAME<strong>: MESSAGE</p>`; its text is `NAME: MESSAGE`.
  const expected = `${name}: ${message}`;
  let lines = [];
  try {
    await until(15_000, `the line "${expected}" in .message-receiver`, async () => {
      lines = await page.$$eval('.message-receiver p', (ps) => ps.map((p) => p.textContent));
      return lines.length > 0;
    });
  } finally {
    step(`.message-receiver lines: ${JSON.stringify(lines)}`);
  }
  if (lines.length !== 1 || lines[0] !== expected) {
    throw new Error(`.message-receiver should hold exactly ${JSON.stringify([expected])}, got ${JSON.stringify(lines)}`);
  }
});
