// The dashboard's shell: sign in and out, the pages behind hash routes, and the unread badge.

import * as api from './api.js';
import {h, replace} from './dom.js';
import * as audit from './pages/audit.js';
import * as deliveries from './pages/deliveries.js';
import * as events from './pages/events.js';
import * as inbox from './pages/inbox.js';
import * as live from './pages/live.js';

const pages = {
  live,
  events,
  audit,
  deliveries,
  inbox
};
const notifyPages = new Set(['deliveries', 'inbox']);

const state = {
  /** null until checked; then {available, kinds, channels, note}. */
  notify: null,
  unmount: null,
  inboxUser: sessionStorage.getItem('herald.user') || 'me',
  inboxStream: null,
};

const $ = (id) => document.getElementById(id);

function signedOut(message = '') {
  api.clearToken();
  stopInboxStream();
  if (state.unmount) state.unmount();
  state.unmount = null;
  state.notify = null;
  $('nav').hidden = true;
  $('sign-out').hidden = true;
  $('page').replaceChildren();
  $('sign-in').hidden = false;
  $('sign-in-error').textContent = message;
  $('token').value = '';
  $('token').focus();
}

async function checkToken(candidate) {
  // Any endpoint that needs a token tells a bad one apart: 401 is a bad or revoked token, 403 a
  // good one without the read scope (still a valid sign-in, for an inbox-only token).
  try {
    await api.json('GET', '/api/v1/catalog', {tokenOverride: candidate});
    return '';
  } catch (e) {
    if (e.status === 403) return '';
    if (e.status === 401) {
      return `This token was not accepted (${e.message}). Check that it was copied whole and ` +
          'has not been revoked; \'herald token list\' shows the tokens.';
    }
    return `Cannot sign in: ${e.message}`;
  }
}

async function detectNotify() {
  try {
    const body = await api.get('/api/v1/notification-kinds');
    state.notify = {available: true, kinds: body.kinds || [], channels: body.channels || []};
  } catch (e) {
    state.notify = {
      available: false,
      kinds: [],
      channels: [],
      note: e.status === 404 ?
          'This server does not offer the notification API yet, so deliveries and notifications ' +
              'are hidden.' :
          `The notification API did not answer: ${e.message}`,
    };
  }
  for (const item of document.querySelectorAll('[data-notify]')) {
    item.hidden = !state.notify.available;
  }
  if (state.notify.available) startInboxStream();
}

// --- the unread badge: the inbox stream says something arrived, the count comes from the API ---

function inboxBase(user = state.inboxUser) {
  return user === 'me' ? '/api/v1/me' : `/api/v1/users/${encodeURIComponent(user)}`;
}

function setUnread(count) {
  const badge = $('unread-badge');
  if (typeof count !== 'number') {
    badge.hidden = true;
    return;
  }
  badge.hidden = count === 0;
  badge.textContent = String(count);
  badge.setAttribute('aria-label', `${count} unread`);
}

async function refreshUnread() {
  try {
    const body = await api.get(`${inboxBase()}/inbox/unread-count`);
    setUnread(body.unread);
  } catch {
    setUnread(undefined);
  }
}

function stopInboxStream() {
  if (state.inboxStream) state.inboxStream.close();
  state.inboxStream = null;
  setUnread(undefined);
}

function startInboxStream() {
  stopInboxStream();
  refreshUnread();
  const source = api.stream(`${inboxBase()}/inbox/stream`);
  source.addEventListener('notification', () => {
    refreshUnread();
    window.dispatchEvent(new CustomEvent('herald:notification'));
  });
  state.inboxStream = source;
}

const context = {
  get notify() {
    return state.notify;
  },
  get inboxUser() {
    return state.inboxUser;
  },
  setInboxUser(user) {
    state.inboxUser = user || 'me';
    sessionStorage.setItem('herald.user', state.inboxUser);
    if (state.notify && state.notify.available) startInboxStream();
  },
  inboxBase,
  setUnread,
  refreshUnread,
};

// --- routing ---

function route() {
  if (!api.token()) return signedOut();
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  const name = pages[parts[0]] ? parts[0] : 'live';
  for (const link of document.querySelectorAll('#nav a[data-page]')) {
    if (link.dataset.page === name)
      link.setAttribute('aria-current', 'page');
    else
      link.removeAttribute('aria-current');
  }
  if (state.unmount) state.unmount();
  state.unmount = null;
  const container = $('page');
  replace(container);
  if (notifyPages.has(name) && !state.notify.available) {
    replace(
        container, h('h1', {}, name === 'inbox' ? 'My notifications' : 'Deliveries'),
        h('p', {class: 'note', role: 'status'}, state.notify.note));
    return;
  }
  state.unmount = pages[name].mount(container, parts.slice(1), context) || null;
  document.title = `herald: ${container.querySelector('h1')?.textContent || name}`;
}

async function enter() {
  $('sign-in').hidden = true;
  $('nav').hidden = false;
  $('sign-out').hidden = false;
  await detectNotify();
  route();
}

function start() {
  document.body.append(h('div', {id: 'announcer', class: 'sr-only', 'aria-live': 'polite'}));
  api.onUnauthorized((error) => {
    signedOut(
        `Signed out: the server no longer accepts this token (${error.message}). ` +
        'Sign in with a valid token.');
  });
  $('sign-in-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const candidate = $('token').value.trim();
    const button = event.submitter;
    if (!candidate) {
      $('sign-in-error').textContent = 'Enter an API token.';
      return;
    }
    if (button) button.disabled = true;
    const problem = await checkToken(candidate);
    if (button) button.disabled = false;
    if (problem) {
      $('sign-in-error').textContent = problem;
      $('token').select();
      return;
    }
    api.setToken(candidate);
    $('sign-in-error').textContent = '';
    enter();
  });
  $('sign-out').addEventListener('click', () => signedOut('Signed out.'));
  window.addEventListener('hashchange', () => {
    if (api.token() && state.notify) {
      route();
      $('main').focus();
    }
  });
  if (api.token())
    enter();
  else
    signedOut();
}

start();
