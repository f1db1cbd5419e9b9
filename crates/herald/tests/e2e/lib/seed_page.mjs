// Builds the seed demo's chat page from its own Rails files, the way Rails would have served it, but
// pointed at Herald: the layout and the form view with their ERB rendered, jQuery, jquery_ujs and
// pusher-js from node_modules instead of the asset pipeline and Pusher's CDN, and the demo's
// application.js with only the `new Pusher(...)` options changed. Any ERB this file does not know
// about is an error, so a change to the seed files shows up here instead of as a silently different
// page. Used by the browser tests and by scripts/demo, so it needs nothing from the test harness.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** node_modules of the e2e package, installed from its lock file. */
const NODE_MODULES = join(dirname(fileURLToPath(import.meta.url)), '..', 'node_modules');

/** The channel the demo's config/secrets.yml sets for development and test. */
export const CHAT_CHANNEL = 'test_chat_channel';

/** The demo's one line that creates the client; its options are all that change. */
const DEMO_CONSTRUCTOR = 'new Pusher(pusherKey, { encrypted: true })';

/** For each pusher-js major version tested: the browser build, and the options that reach Herald. */
const PUSHER_JS = {
  3: {
    dist: 'pusher-js-3/dist/pusher.min.js',
    options: (host, port) =>
      `{ wsHost: ${JSON.stringify(host)}, wsPort: ${port}, wssPort: ${port}, encrypted: false, ` +
      `disableStats: true, enabledTransports: ['ws', 'wss'] }`,
    // Its log goes to the page console, which the test prints when it fails.
    debug: 'Pusher.log = function (message) { console.log(message); };',
  },
  8: {
    dist: 'pusher-js/dist/web/pusher.min.js',
    options: (host, port) =>
      `{ cluster: 'mt1', wsHost: ${JSON.stringify(host)}, wsPort: ${port}, wssPort: ${port}, forceTLS: false, ` +
      `enabledTransports: ['ws', 'wss'] }`,
    debug: 'Pusher.logToConsole = true;',
  },
};

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Rails' id for a form field: `pusher_event_name` for `f.text_field :name`. */
function fieldInput(attribute, placeholder) {
  return (
    `<input placeholder="${escapeHtml(placeholder)}" type="text" ` +
    `name="pusher_event[${attribute}]" id="pusher_event_${attribute}" />`
  );
}

/**
 * `home/index.html.erb` as the HTML `form_for @event, url: events_path, remote: true` produces for a
 * new `PusherEvent`. jquery_ujs submits it as an XHR `POST /events` (form-encoded
 * `pusher_event[name]`, `pusher_event[message]`) and runs the JavaScript that comes back; answering
 * that takes the Rails app's place (scripts/demo has a backend for it; the seed_demo test does not
 * submit).
 */
function renderForm(erb) {
  return erb.replace(/<%(=?)\s*(.*?)\s*%>/gs, (tag, _output, code) => {
    let m;
    if ((m = code.match(/^form_for @event, url: events_path, remote: true, html: \{class: "([^"]*)"\} do \|f\|$/))) {
      return (
        `<form class="${escapeHtml(m[1])}" id="new_pusher_event" action="/events" accept-charset="UTF-8" ` +
        `data-remote="true" method="post"><input name="utf8" type="hidden" value="&#x2713;" />`
      );
    }
    if ((m = code.match(/^f\.text_field :(\w+), placeholder: "([^"]*)"$/))) return fieldInput(m[1], m[2]);
    if ((m = code.match(/^f\.submit "([^"]*)", class: "([^"]*)"$/))) {
      return `<input type="submit" name="commit" value="${escapeHtml(m[1])}" class="${escapeHtml(m[2])}" />`;
    }
    if (code === 'end') return '</form>';
    throw new Error(`home/index.html.erb has ERB this test cannot render: ${tag}`);
  });
}

/**
 * `layouts/application.html.erb` rendered. `javascript_include_tag 'application'` was one
 * concatenated file in Rails (jquery, jquery_ujs, turbolinks, then the demo's code); here it is
 * jQuery, jquery_ujs and the demo's code, and the shim below stands in for Turbolinks.
 */
function renderLayout(erb, { key, form, scripts }) {
  const rendered = erb.replace(/<%(=?)\s*(.*?)\s*%>/gs, (tag, _output, code) => {
    if (code === 'Rails.application.secrets.pusher_key') return escapeHtml(key);
    if (code === 'Rails.application.secrets.pusher_channel') return CHAT_CHANNEL;
    if (code.startsWith('stylesheet_link_tag')) return '';
    if (code === 'csrf_meta_tags') return '';
    if (code.startsWith("javascript_include_tag 'application'")) return scripts.application;
    if (code === 'yield') return form;
    throw new Error(`layouts/application.html.erb has ERB this test cannot render: ${tag}`);
  });
  const cdnTag = '<script src="//js.pusher.com/3.0/pusher.min.js"></script>';
  if (!rendered.includes(cdnTag)) throw new Error(`layouts/application.html.erb no longer has ${cdnTag}`);
  return rendered.replace(cdnTag, scripts.pusher);
}

/**
 * The page and the files it loads, keyed by URL path, for pusher-js `major` (3 or 8) talking to
 * Herald at `host:port` with app `key`.
 */
export function seedPage({ seedDir, major, host, port, key }) {
  const version = PUSHER_JS[major];
  if (!version) throw new Error(`no page for pusher-js ${major}; known: ${Object.keys(PUSHER_JS).join(', ')}`);
  const read = (path) => readFileSync(join(seedDir, path), 'utf8');

  const demoJs = read('app/assets/javascripts/application.js');
  if (demoJs.split(DEMO_CONSTRUCTOR).length !== 2) {
    throw new Error(`app/assets/javascripts/application.js should contain \`${DEMO_CONSTRUCTOR}\` exactly once`);
  }
  const applicationJs = demoJs.replace(DEMO_CONSTRUCTOR, `new Pusher(pusherKey, ${version.options(host, port)})`);

  const scripts = {
    application: [
      '<script src="/assets/jquery.js"></script>',
      '<script src="/assets/jquery_ujs.js"></script>',
      '<script src="/assets/application.js"></script>',
    ].join('\n  '),
    pusher: [
      '<script src="/assets/pusher.min.js"></script>',
      `<script>${version.debug}</script>`,
      // Turbolinks 2 fires `page:change` once the page has loaded, and the demo subscribes from that
      // handler. Turbolinks is not loaded here, so fire it on DOM ready the same way.
      `<script>$(function () { $(document).trigger('page:change'); });</script>`,
    ].join('\n  '),
  };
  const form = renderForm(read('app/views/home/index.html.erb'));
  const html = renderLayout(read('app/views/layouts/application.html.erb'), { key, form, scripts });

  const installed = (path) => ({ type: 'text/javascript', body: readFileSync(join(NODE_MODULES, path)) });
  return {
    '/': { type: 'text/html; charset=utf-8', body: html },
    '/assets/jquery.js': installed('jquery/dist/jquery.js'),
    // jquery-ujs 1.1.0, the version jquery-rails 4.0.5 (the demo's Gemfile.lock) bundled.
    '/assets/jquery_ujs.js': installed('jquery-ujs/src/rails.js'),
    '/assets/application.js': { type: 'text/javascript', body: applicationJs },
    '/assets/pusher.min.js': installed(version.dist),
  };
}
