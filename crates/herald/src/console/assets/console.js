// Herald's debug console. Plain JavaScript, no build step, nothing loaded from elsewhere.
//
// Signing in: for each request it will make, the page signs
// "herald-console\n{key}\n{expires}\n{METHOD} {endpoint}" with the app's secret (or console token)
// using HMAC-SHA256 computed here, and sends key, expires and that signature with the request. The
// secret itself is never sent, and only the signatures are kept (in sessionStorage).
'use strict';

// ---- HMAC-SHA256 ------------------------------------------------------------------------------
// Written out rather than taken from crypto.subtle, which browsers only offer on https and
// localhost pages: the console must also open over plain http on a private network.

const SHA256_K = new Uint32Array(64);
const SHA256_H = new Uint32Array(8);
(() => {
  // The first 32 bits of the fractional parts of the square roots (H) and cube roots (K) of the
  // first primes, as FIPS 180-4 defines them.
  const primes = [];
  for (let n = 2; primes.length < 64; n++) {
    if (primes.every((p) => n % p !== 0)) primes.push(n);
  }
  const frac = (x) => Math.floor((x - Math.floor(x)) * 2 ** 32) >>> 0;
  primes.forEach((p, i) => {
    SHA256_K[i] = frac(Math.cbrt(p));
    if (i < 8) SHA256_H[i] = frac(Math.sqrt(p));
  });
})();

function sha256(bytes) {
  const length = bytes.length;
  const blocks = Math.ceil((length + 9) / 64);
  const padded = new Uint8Array(blocks * 64);
  padded.set(bytes);
  padded[length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(length / 2 ** 29));
  view.setUint32(padded.length - 4, (length * 8) >>> 0);
  const h = Uint32Array.from(SHA256_H);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let block = 0; block < blocks; block++) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(block * 64 + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 = hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + SHA256_K[i] + w[i];
      const t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      [hh, g, f, e, d, c, b, a] = [g, f, e, (d + t1) >>> 0, c, b, a, (t1 + t2) >>> 0];
    }
    [a, b, c, d, e, f, g, hh].forEach((v, i) => { h[i] = (h[i] + v) >>> 0; });
  }
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  h.forEach((v, i) => outView.setUint32(i * 4, v));
  return out;
}

function hmacSha256Hex(secret, message) {
  const encoder = new TextEncoder();
  let key = encoder.encode(secret);
  if (key.length > 64) key = sha256(key);
  const block = (pad) => Uint8Array.from({ length: 64 }, (_, i) => (key[i] || 0) ^ pad);
  const concat = (a, b) => { const c = new Uint8Array(a.length + b.length); c.set(a); c.set(b, a.length); return c; };
  const inner = sha256(concat(block(0x36), encoder.encode(message)));
  const digest = sha256(concat(block(0x5c), inner));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

// A check of the code above against RFC 4231's second test case, at load: the constants come from
// Math.sqrt and Math.cbrt, which a browser may compute less precisely than it should.
const HMAC_WORKS = hmacSha256Hex('Jefe', 'what do ya want for nothing?')
  === '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843';

// ---- session and API --------------------------------------------------------------------------

const SESSION_SECONDS = 12 * 3600;
// Each request the page makes, signed on its own: a signature seen somewhere (the stream's is in
// its URL, since EventSource cannot send headers) opens that request only.
const REQUESTS = ['GET session', 'GET overview', 'GET members', 'GET stream', 'POST events'];
const $ = (id) => document.getElementById(id);

function stored() {
  try {
    return JSON.parse(sessionStorage.getItem('herald-console') || 'null');
  } catch {
    return null;
  }
}

function store(value) {
  try {
    if (value) sessionStorage.setItem('herald-console', JSON.stringify(value));
    else sessionStorage.removeItem('herald-console');
  } catch {
    // Site data blocked: the session lasts as long as the page.
  }
}

let session = null;

function sign(key, credential) {
  const expires = Math.floor(Date.now() / 1000) + SESSION_SECONDS;
  const signatures = {};
  for (const request of REQUESTS) {
    signatures[request] = hmacSha256Hex(credential, `herald-console\n${key}\n${expires}\n${request}`);
  }
  return { key, expires, signatures };
}

function endpointOf(request) {
  return request.split(' ')[1];
}

async function api(request, params = {}, init = {}) {
  const query = new URLSearchParams(params).toString();
  const url = `/console/api/${endpointOf(request)}${query ? `?${query}` : ''}`;
  const authorization = `HeraldConsole ${session.key}:${session.expires}:${session.signatures[request]}`;
  const response = await fetch(url, { ...init, headers: { ...(init.headers || {}), authorization } });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) signOut(body.error || 'Sign in again.');
  if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
  return body;
}

function streamUrl() {
  const query = new URLSearchParams({
    key: session.key, expires: session.expires, signature: session.signatures['GET stream'],
  });
  return `/console/api/stream?${query}`;
}

// ---- signing in and out -----------------------------------------------------------------------

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  $('login-error').textContent = '';
  if (!HMAC_WORKS) {
    $('login-error').textContent = 'This browser computes SHA-256 wrongly here; try another browser.';
    return;
  }
  session = sign(form.key.value.trim(), form.credential.value);
  form.credential.value = '';
  try {
    const opened = await api('GET session');
    store(session);
    start(opened);
  } catch (error) {
    session = null;
    $('login-error').textContent = error.message;
  }
});

$('sign-out').addEventListener('click', () => signOut(''));

let timers = [];
let stream = null;

function signOut(message) {
  session = null;
  store(null);
  timers.forEach(clearInterval);
  timers = [];
  if (stream) stream.close();
  stream = null;
  $('console').hidden = true;
  $('sign-out').hidden = true;
  $('login').hidden = false;
  $('app-label').textContent = '';
  $('login-error').textContent = message;
}

function start(opened) {
  $('login').hidden = true;
  $('console').hidden = false;
  $('sign-out').hidden = false;
  $('app-label').textContent = `app ${opened.app_id} · key ${opened.key}`;
  $('stat-node').textContent = opened.cluster ? 'cluster (this node\u2019s activity)' : 'single';
  refreshOverview();
  timers.push(setInterval(refreshOverview, 2000));
  timers.push(setInterval(refreshMembers, 2000));
  openStream();
}

// ---- channels and members ---------------------------------------------------------------------

let membersOf = null;

async function refreshOverview() {
  if (!session) return;
  const prefix = $('channel-prefix').value;
  const overview = await api('GET overview', { filter_by_prefix: prefix }).catch(() => null);
  // An answer for a prefix typed over since is dropped.
  if (!overview || prefix !== $('channel-prefix').value) return;
  $('stat-connections').textContent = overview.connections;
  $('stat-channels').textContent = overview.channel_count;
  const rows = overview.channels.map((channel) => {
    const row = document.createElement('tr');
    row.dataset.channel = channel.name;
    for (const text of [channel.name, channel.subscription_count, channel.user_count ?? '']) {
      const cell = document.createElement('td');
      cell.textContent = text;
      row.append(cell);
    }
    if (channel.name.startsWith('presence-')) {
      row.className = 'presence';
      row.firstChild.title = 'Show members';
      row.firstChild.addEventListener('click', () => { membersOf = channel.name; refreshMembers(); });
    }
    return row;
  });
  $('channel-rows').replaceChildren(...rows);
  const hidden = overview.channel_count - overview.channels.length;
  $('channels-note').textContent = hidden > 0 ? `${hidden} more not shown: narrow with a prefix.` : '';
}

let typing = null;
$('channel-prefix').addEventListener('input', () => {
  clearTimeout(typing);
  typing = setTimeout(refreshOverview, 300);
});

async function refreshMembers() {
  if (!session || !membersOf) return;
  const answer = await api('GET members', { channel: membersOf }).catch(() => null);
  if (!answer) return;
  $('members').hidden = false;
  $('members-channel').textContent = answer.channel;
  $('member-list').replaceChildren(...answer.members.map((member) => {
    const item = document.createElement('li');
    item.textContent = member.id;
    if (member.info !== null && member.info !== undefined) {
      const info = document.createElement('code');
      info.textContent = ` ${JSON.stringify(member.info)}`;
      item.append(info);
    }
    return item;
  }));
}

// ---- the event creator ------------------------------------------------------------------------

$('event-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const result = $('event-result');
  result.className = '';
  result.textContent = 'Sending…';
  const body = JSON.stringify({ name: form.event.value, channel: form.channel.value, data: form.data.value });
  try {
    await api('POST events', {}, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    result.textContent = `Sent ${form.event.value} on ${form.channel.value}.`;
  } catch (error) {
    result.className = 'failed';
    result.textContent = error.message;
  }
});

// ---- the activity stream ----------------------------------------------------------------------

const KEPT_LINES = 1000;
const KINDS = {
  connections: ['connected', 'disconnected'],
  subscriptions: ['subscribed', 'unsubscribed', 'signed_in'],
  events: ['triggered', 'client_event'],
  refused: ['refused'],
  webhooks: ['webhook_sent', 'webhook_failed'],
};
let lines = [];
let paused = false;
let held = [];
let lost = 0;

function countLost(count) {
  lost += count;
  $('lost').hidden = false;
  $('lost').textContent = `${lost} lines lost: this page fell behind the server.`;
}

function openStream() {
  stream = new EventSource(streamUrl());
  stream.onmessage = (message) => {
    const line = JSON.parse(message.data);
    if (line.kind === 'lost') {
      countLost(line.count);
      return;
    }
    if (paused) {
      held.push(line);
      if (held.length > KEPT_LINES) {
        held.shift();
        countLost(1);
      }
      $('held').textContent = `${held.length} held`;
      return;
    }
    keep([line]);
  };
  stream.onerror = () => {
    // EventSource retries by itself after a dropped connection, and gives up on an error answer:
    // the session was refused (api() then signs out) or too many consoles watch.
    if (!stream || stream.readyState !== EventSource.CLOSED) return;
    api('GET session').then(() => {
      $('lost').hidden = false;
      $('lost').textContent = 'The activity stream was refused (too many consoles open?); reload to retry.';
    }).catch(() => {});
  };
}

function keep(fresh) {
  lines = lines.concat(fresh).slice(-KEPT_LINES);
  const list = $('activity-list');
  const shown = fresh.filter(matches).reverse().map(render);
  list.prepend(...shown);
  while (list.children.length > KEPT_LINES) list.lastChild.remove();
}

function matches(line) {
  const channel = $('filter-channel').value;
  const eventName = $('filter-event').value;
  const kind = $('filter-kind').value;
  return (!channel || (line.channel || '').includes(channel))
    && (!eventName || (line.event || '').includes(eventName))
    && (!kind || KINDS[kind].includes(line.kind));
}

function rerender() {
  $('activity-list').replaceChildren(...lines.filter(matches).reverse().map(render));
}

for (const id of ['filter-channel', 'filter-event', 'filter-kind']) $(id).addEventListener('input', rerender);

$('pause').addEventListener('click', () => {
  paused = !paused;
  $('pause').textContent = paused ? 'Resume' : 'Pause';
  if (!paused) {
    keep(held);
    held = [];
    $('held').textContent = '';
  }
});

$('clear').addEventListener('click', () => {
  lines = [];
  lost = 0;
  $('lost').hidden = true;
  $('activity-list').replaceChildren();
});

function describe(line) {
  const who = line.socket_id ? `socket ${line.socket_id}` : 'a client';
  switch (line.kind) {
    case 'connected': return `${who} connected`;
    case 'disconnected': return `${who} disconnected (${line.reason}${line.code ? `, ${line.code}` : ''})`;
    case 'subscribed': return `${who} subscribed to ${line.channel}${line.user_id ? ` as ${line.user_id}` : ''}`;
    case 'unsubscribed': return `${who} unsubscribed from ${line.channel}`;
    case 'signed_in': return `${who} signed in as ${line.user_id}`;
    case 'client_event': return `${line.event} on ${line.channel} from ${who}`;
    case 'triggered': {
      const excluded = line.excluded ? `, except ${line.excluded}` : '';
      return `${line.event} on ${line.channel} by ${line.source}: ${line.delivered} delivered here${excluded}`;
    }
    case 'refused': {
      const where = line.channel ? ` on ${line.channel}` : '';
      // Without a socket: a REST request, whose message names it.
      if (!line.socket_id) return `${line.code ?? 'error'}${where}: ${line.message}`;
      return `${line.code ?? 'error'}${where} for ${who}: ${line.message}`;
    }
    case 'webhook_sent': return `${line.event} sent to ${line.url}`;
    case 'webhook_failed':
      return `${line.event} to ${line.url} failed: ${line.message}${line.retrying ? ' (retrying)' : ' (given up)'}`;
    default: return JSON.stringify(line);
  }
}

function render(line) {
  const item = document.createElement('li');
  item.dataset.kind = line.kind;
  const time = document.createElement('time');
  const at = new Date(line.at);
  time.textContent = `${at.toLocaleTimeString([], { hour12: false })}.${String(at.getMilliseconds()).padStart(3, '0')}`;
  const kind = document.createElement('span');
  kind.className = `kind ${line.kind}`;
  kind.textContent = line.kind.replace('_', ' ');
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = describe(line);
  if (line.data !== undefined) {
    const data = document.createElement('code');
    data.className = 'data';
    const cut = line.data_cut ? ` … (${line.data_bytes} bytes)` : '';
    data.textContent = line.data + cut;
    text.append(data);
  }
  item.append(time, kind, text);
  return item;
}

// ---- resume a session after a reload ------------------------------------------------------------

session = stored();
if (session && session.signatures && session.expires > Date.now() / 1000 + 60) {
  api('GET session').then(start).catch(() => {});
} else if (session) {
  signOut('The session has expired; sign in again.');
}
