// My notifications: the inbox (mark read, all read, archive) and the preferences grid, kind by
// channel, for all organizations or one.

import * as api from '../api.js';
import {announce, field, h, replace, table, time} from '../dom.js';

const USER_CHANNELS = ['in_app', 'discord', 'email'];

/**
 * Whether `kind` goes to `channel` for `organization` (null: all) under `rules`: the rule for
 * that organization, else the rule for all organizations, else the kind's default.
 */
export function effective(rules, kind, channel, organization) {
  const find = (org) => rules.find(
      (r) => r.kind === kind.name && r.channel === channel && (r.organization_id ?? null) === org);
  const own = find(organization);
  if (own) return own.enabled;
  if (organization !== null) {
    const general = find(null);
    if (general) return general.enabled;
  }
  return (kind.default_channels || []).includes(channel);
}

function preferences(section, context) {
  const {kinds} = context.notify;
  // Webhooks and announcement channels belong to organizations: a user chooses among these.
  const channels = context.notify.channels.filter((c) => USER_CHANNELS.includes(c));
  const scope =
      h('input', {name: 'organization_id', inputmode: 'numeric', size: 8, placeholder: 'all'});
  const message = h('p', {class: 'error', role: 'alert'});
  const saved = h('p', {role: 'status', class: 'muted'});
  const grid = h('div', {class: 'table-wrap'});
  const mutedBox = h('fieldset', {}, h('legend', {}, 'Muted channels (nothing is sent on them)'));
  const save = h('button', {type: 'submit'}, 'Save preferences');
  let prefs = null;

  function organization() {
    const text = scope.value.trim();
    return text === '' ? null : Number(text);
  }

  function setRule(kind, channel, org, enabled) {
    prefs.rules = prefs.rules.filter(
        (r) => !(r.kind === kind && r.channel === channel && (r.organization_id ?? null) === org));
    prefs.rules.push({kind, channel, organization_id: org, enabled});
  }

  function render() {
    const org = organization();
    if (org !== null && !Number.isInteger(org)) {
      message.textContent =
          'Organization: expected a whole number, or empty for all organizations.';
      return;
    }
    message.textContent = '';
    const headers = ['Kind', ...channels.map((c) => h('th', {scope: 'col'}, c))];
    const {table: grid_table, body} = table(
        `Which channels each kind of notification uses, ${
            org === null ? 'for all organizations' : 'in organization ' + org}`,
        headers);
    grid_table.id = 'preferences-grid';
    for (const kind of kinds) {
      body.append(
          h('tr', {},
            h('th', {scope: 'row'}, kind.name,
              kind.critical ? h('span', {class: 'muted'}, ' (critical)') : '',
              kind.description ? h('div', {class: 'help'}, kind.description) : ''),
            channels.map((channel) => {
              const locked = kind.critical && channel === 'in_app';
              const box = h('input', {
                type: 'checkbox',
                name: `${kind.name}:${channel}`,
                'aria-label': `${kind.name} by ${channel}${locked ? ' (always on: critical)' : ''}`,
                checked: locked || effective(prefs.rules, kind, channel, org),
                disabled: locked,
              });
              box.addEventListener('change', () => setRule(kind.name, channel, org, box.checked));
              return h('td', {}, box);
            })));
    }
    replace(grid, grid_table);
    replace(
        mutedBox, h('legend', {}, 'Muted channels (nothing is sent on them)'),
        channels.map((channel) => {
          const box = h(
              'input',
              {type: 'checkbox', name: `muted:${channel}`, checked: prefs.muted.includes(channel)});
          box.addEventListener('change', () => {
            prefs.muted = box.checked ? [...new Set([...prefs.muted, channel])] :
                                        prefs.muted.filter((c) => c !== channel);
          });
          return h('label', {class: 'inline'}, box, ` ${channel} `);
        }));
  }

  async function load() {
    try {
      prefs = await api.get(`${context.inboxBase()}/preferences`);
      prefs.rules = prefs.rules || [];
      prefs.muted = prefs.muted || [];
      render();
    } catch (e) {
      message.textContent = e.message;
      replace(grid);
    }
  }

  const form =
      h('form', {'aria-label': 'Notification preferences'},
        h('div', {class: 'filters'}, field('Organization (empty: all organizations)', scope),
          h('div', {class: 'actions'},
            h('button', {type: 'button', class: 'quiet', onclick: render}, 'Show'))),
        grid, mutedBox, h('div', {class: 'toolbar'}, save, saved), message);
  scope.addEventListener('change', render);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    saved.textContent = '';
    message.textContent = '';
    try {
      prefs = await api.json(
          'PUT', `${context.inboxBase()}/preferences`,
          {body: {rules: prefs.rules, muted: prefs.muted}});
      prefs.rules = prefs.rules || [];
      prefs.muted = prefs.muted || [];
      render();
      saved.textContent = `Saved at ${time(new Date().toISOString())}.`;
    } catch (e) {
      message.textContent = e.field ? `${e.message} (${e.field})` : e.message;
    }
  });
  replace(section, h('h2', {id: 'prefs-title'}, 'Preferences'), form);
  load();
}

export function mount(container, _args, context) {
  const user = h('input', {
    name: 'user',
    size: 10,
    value: context.inboxUser === 'me' ? '' : context.inboxUser,
    placeholder: 'me'
  });
  const unreadOnly = h('input', {type: 'checkbox', name: 'unread'});
  const archived = h('input', {type: 'checkbox', name: 'archived'});
  const message = h('p', {class: 'error', role: 'alert'});
  const summary = h('p', {role: 'status', class: 'muted'});
  const allRead = h('button', {type: 'button'}, 'Mark all read');
  const {wrap, body} =
      table('Notifications, newest first', ['', 'Time', 'Kind', 'Title', 'Actions']);
  body.id = 'inbox-rows';
  const prefsSection = h('section', {class: 'card', 'aria-labelledby': 'prefs-title'});

  const whoForm =
      h('form', {class: 'filters card', 'aria-label': 'Whose notifications'},
        field('User id (empty: the token\'s user)', user),
        h('div', {}, h('label', {}, unreadOnly, ' Unread only'),
          h('label', {}, archived, ' Archived')),
        h('div', {class: 'actions'}, h('button', {type: 'submit'}, 'Show'), allRead));

  replace(
      container, h('h1', {}, 'My notifications'), whoForm, message, summary, wrap, prefsSection);

  async function mark(ids, what) {
    message.textContent = '';
    try {
      const result = await api.json(
          'POST', `${context.inboxBase()}/inbox/mark`,
          {body: ids ? {ids, mark: what} : {mark: what}});
      context.setUnread(result.unread);
      announce(`${result.changed} notification(s) marked ${what}; ${result.unread} unread.`);
      await load();
    } catch (e) {
      message.textContent = e.message;
    }
  }

  // Only the latest request may fill the page: an older answer arriving late is dropped.
  let loads = 0;
  async function load() {
    const ticket = ++loads;
    try {
      const page = await api.get(`${context.inboxBase()}/inbox`, {
        unread: unreadOnly.checked ? 'true' : '',
        archived: archived.checked ? 'true' : '',
        limit: 100,
      });
      if (ticket !== loads) return;
      context.setUnread(page.unread);
      summary.textContent = `${page.unread} unread.`;
      replace(
          body,
          page.items.map(
              (n) => h(
                  'tr', {class: n.read_at ? '' : 'unread', 'data-id': n.id},
                  h('td', {},
                    n.read_at ? '' : h('span', {class: 'badge', 'aria-label': 'unread'}, '•')),
                  h('td', {}, time(n.created_at)), h('td', {}, n.kind),
                  h('td', {},
                    n.link ? h('a', {href: n.link, rel: 'noopener noreferrer'}, n.title) : n.title,
                    n.body ? h('div', {class: 'help'}, n.body) : ''),
                  h('td', {},
                    h('button', {
                      type: 'button',
                      class: 'quiet',
                      'aria-label': `Mark "${n.title}" ${n.read_at ? 'unread' : 'read'}`,
                      onclick: () => mark([n.id], n.read_at ? 'unread' : 'read')
                    },
                      n.read_at ? 'Mark unread' : 'Mark read'),
                    h('button', {
                      type: 'button',
                      class: 'quiet',
                      'aria-label': `${n.archived_at ? 'Unarchive' : 'Archive'} "${n.title}"`,
                      onclick: () => mark([n.id], n.archived_at ? 'unarchived' : 'archived')
                    },
                      n.archived_at ? 'Unarchive' : 'Archive')))));
      if (page.items.length === 0)
        body.append(h('tr', {}, h('td', {colspan: 5, class: 'muted'}, 'No notifications.')));
      message.textContent = '';
    } catch (e) {
      if (ticket !== loads) return;
      replace(body);
      summary.textContent = '';
      message.textContent = e.code === 'no_user' || e.status === 400 ?
          `${e.message} Enter a user id above to act for a user (admin or notify tokens).` :
          e.message;
    }
  }

  whoForm.addEventListener('submit', (event) => {
    event.preventDefault();
    context.setInboxUser(user.value.trim() || 'me');
    load();
    preferences(prefsSection, context);
  });
  allRead.addEventListener('click', () => mark(null, 'read'));
  const onNotification = () => load();
  window.addEventListener('herald:notification', onNotification);
  load();
  preferences(prefsSection, context);
  return () => window.removeEventListener('herald:notification', onNotification);
}
