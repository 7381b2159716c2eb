// The status page's script, served as /page/status.js (see src/server/page/). No framework and no
// build step. It only ever builds DOM nodes and sets text (never innerHTML): names, messages and
// client names come from upstreams and clients, so none of them may become markup.
import { h, plural, table, when } from './dom.js';
import { calls, problems, publicListener, snippets } from './sections.js';
import { upstreamCard } from './upstream-card.js';

const KEY_STORE = 'mcp-bridge.pageKey';
const app = document.getElementById('app');
const live = document.getElementById('live');
const notes = new Map();
let key = takeKey();
let last;

/** The page key arrives in the login redirect's fragment; it is kept per origin and leaves the address bar. */
function takeKey() {
  const match = /^#key=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (match) {
    localStorage.setItem(KEY_STORE, match[1]);
    history.replaceState(null, '', location.pathname);
  }
  return localStorage.getItem(KEY_STORE);
}

async function post(path, body) {
  const response = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-page-key': key },
    body: JSON.stringify(body ?? {}),
  });
  if (response.status === 401) ended('Your login to this page ended.');
  const data = await response.json().catch(() => ({}));
  return { ok: response.ok, data };
}
/** A line under an upstream's buttons: gone after 15 s, or once the upstream is ready again. */
function note(name, text, untilReady = false) {
  const entry = { text, at: Date.now(), untilReady };
  notes.set(name, entry);
  setTimeout(() => notes.get(name) === entry && notes.delete(name) && last && render(last), 15000);
  if (last) render(last);
}
async function reconnect(name) {
  note(name, 'Reconnecting…', true);
  const { ok, data } = await post('/page/actions/reconnect', { upstream: name });
  if (!ok) note(name, data.error ?? 'Could not reconnect.');
  else if (!data.reconnecting) note(name, 'It is connecting already (or waiting between attempts).');
}
async function logIn(name) {
  // Opened now, while the click still counts as one: after the await a popup blocker would stop it.
  const tab = window.open('about:blank', '_blank');
  const { ok, data } = await post('/page/actions/login', { upstream: name });
  const url =
    typeof data.authorizationUrl === 'string' && /^https?:\/\//.test(data.authorizationUrl)
      ? data.authorizationUrl
      : undefined;
  if (!ok || !url) {
    tab?.close();
    note(name, `Could not start the login: ${data.error ?? 'unknown error'}`);
    return;
  }
  if (tab) {
    tab.opener = null;
    tab.location.href = url;
    note(name, 'The login page opened in a new tab; this page turns ready when it is done.', true);
  } else note(name, `Open the login page: ${url}`);
}

function render(d) {
  last = d;
  for (const u of d.upstreams) {
    const entry = notes.get(u.name);
    if (entry?.untilReady && u.state === 'ready' && Date.parse(u.since) > entry.at) notes.delete(u.name);
  }
  const focused = document.activeElement?.dataset?.focus;
  const clients = d.clients.map((c) =>
    h(
      'tr',
      null,
      h('td', null, c.name ?? 'unknown'),
      h('td', null, c.version ?? '—'),
      h('td', null, c.era),
      h('td', null, c.protocolVersion ?? '—'),
      h('td', null, when(c.since)),
    ),
  );
  app.replaceChildren(
    h(
      'p',
      { class: 'muted' },
      `Daemon pid ${d.pid}, up `,
      when(d.startedAt, 'for'),
      `, ${plural(d.sessions, 'session')}.`,
    ),
    ...problems(d),
    h('h2', null, `Upstreams (${d.upstreams.length})`),
    d.upstreams.length
      ? h(
          'div',
          { class: 'cards' },
          d.upstreams.map((u) => upstreamCard(u, { notes, reconnect, logIn })),
        )
      : h('p', { class: 'muted' }, 'No upstreams are configured: add them to config.json (see the README).'),
    h('h2', null, 'Connected clients'),
    clients.length
      ? table(['Client', 'Version', 'Era', 'Protocol', 'Connected'], clients)
      : h('p', { class: 'muted' }, 'No 2025 sessions are open (2026-07-28 clients keep none).'),
    ...calls(d),
    ...publicListener(d),
    ...snippets(d),
    h('p', null, h('a', { href: '/docs/errors' }, 'What each error code means')),
  );
  app.removeAttribute('aria-busy');
  if (focused) document.querySelector(`[data-focus="${CSS.escape(focused)}"]`)?.focus();
}

function ended(why) {
  key = null;
  localStorage.removeItem(KEY_STORE);
  live.textContent = '';
  document.getElementById('logout')?.remove();
  app.replaceChildren(
    h('h2', null, 'Open the status page from a terminal'),
    why && h('p', { class: 'note', role: 'alert' }, why),
    h(
      'p',
      null,
      'The page needs the local access token, so it is opened with a one-time login link, as the user who runs the daemon:',
    ),
    h('pre', { class: 'cmd' }, h('code', null, 'mcp-bridge open')),
    h(
      'p',
      { class: 'muted' },
      'The login ends when the browser closes, the daemon restarts or the access token is rotated.',
    ),
  );
}

async function follow() {
  for (;;) {
    const response = await fetch('/page/events', { headers: { 'x-page-key': key }, cache: 'no-store' }).catch(
      () => undefined,
    );
    if (response && (response.status === 401 || response.status === 403))
      return ended('Your login to this page ended (the daemon restarted, or the token was rotated).');
    if (response?.ok && response.body) {
      live.textContent = 'live';
      live.dataset.live = 'yes';
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const event = /^event: (.*)$/m.exec(block)?.[1];
            if (event === 'ended') return ended('Your login to this page ended.');
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event === 'status' && data) render(JSON.parse(data));
          }
        }
      } catch {}
    }
    live.textContent = 'not connected to the daemon; trying again…';
    live.dataset.live = 'no';
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

if (key) {
  const logOut = async () => {
    await post('/page/actions/logout');
    ended('Logged out.');
  };
  const logout = h('button', { type: 'button', id: 'logout', onclick: logOut }, 'Log out');
  document.querySelector('.top')?.append(logout);
  follow();
} else ended();
