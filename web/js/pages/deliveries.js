// Deliveries: the queue by status and channel, each delivery with its attempts, re-send for dead
// or failed ones; webhook endpoints: add, disable or enable, rotate the secret.

import * as api from '../api.js';
import {field, h, replace, select, table, time} from '../dom.js';

const statuses = ['', 'pending', 'sending', 'sent', 'retrying', 'failed', 'dead'];

function summaryTable(items) {
  const channels = [...new Set(items.map((i) => i.channel))].sort();
  const used = statuses.slice(1).filter((s) => items.some((i) => i.status === s));
  const count = (c, s) => items.find((i) => i.channel === c && i.status === s)?.count ?? 0;
  const {wrap, body} = table(
      'Deliveries by channel and status',
      ['Channel', ...used.map((s) => h('th', {scope: 'col', class: 'num'}, s))]);
  for (const c of channels) {
    body.append(
        h('tr', {}, h('th', {scope: 'row'}, c),
          used.map((s) => h('td', {class: 'num'}, count(c, s)))));
  }
  if (channels.length === 0)
    body.append(h('tr', {}, h('td', {class: 'muted'}, 'No deliveries yet.')));
  return wrap;
}

function webhooks(section) {
  const organization =
      h('input', {name: 'organization_id', inputmode: 'numeric', size: 8, required: true});
  const url =
      h('input', {name: 'url', type: 'url', size: 40, required: true, placeholder: 'https://…'});
  const types =
      h('input', {name: 'event_types', size: 30, placeholder: 'TournamentStartedEvent, …'});
  const message = h('p', {class: 'error', role: 'alert'});
  const secret = h('div', {role: 'status'});
  const {wrap, body} = table(
      'Webhook endpoints', ['Id', 'Organization', 'URL', 'Types', 'State', 'Secret', 'Actions']);
  body.id = 'webhook-rows';

  function showSecret(endpoint) {
    replace(
        secret,
        h('p', {class: 'secret'}, `Secret of endpoint ${endpoint.id} (shown only now; store it): `,
          h('code', {}, endpoint.secret)));
  }

  async function act(work) {
    message.textContent = '';
    try {
      await work();
      await load();
    } catch (e) {
      message.textContent = e.field ? `${e.message} (${e.field})` : e.message;
    }
  }

  async function load() {
    const list = await api.get('/api/v1/webhooks');
    replace(
        body,
        list.items.map(
            (w) =>
                h('tr', {}, h('td', {}, w.id), h('td', {}, w.organization_id),
                  h('td', {class: 'mono'}, w.url),
                  h('td', {}, (w.event_types || []).join(', ') || 'all'),
                  h('td', {},
                    w.active ? 'active' :
                               `disabled${w.disabled_reason ? ': ' + w.disabled_reason : ''}`),
                  h('td', {class: 'mono'}, w.secret_hint || ''),
                  h('td', {},
                    h('button', {
                      type: 'button',
                      class: 'quiet',
                      'aria-label': `${w.active ? 'Disable' : 'Enable'} endpoint ${w.id}`,
                      onclick: () =>
                          act(() => api.json(
                                  'PATCH', `/api/v1/webhooks/${w.id}`, {body: {active: !w.active}}))
                    },
                      w.active ? 'Disable' : 'Enable'),
                    h('button', {
                      type: 'button',
                      class: 'quiet',
                      'aria-label': `Rotate the secret of endpoint ${w.id}`,
                      onclick: () =>
                          act(async () => showSecret(
                                  await api.json('POST', `/api/v1/webhooks/${w.id}/rotate`)))
                    },
                      'Rotate secret')))));
    if (list.items.length === 0)
      body.append(h('tr', {}, h('td', {colspan: 7, class: 'muted'}, 'No webhook endpoints.')));
  }

  const form =
      h('form', {class: 'filters card', 'aria-label': 'Add a webhook endpoint'},
        field('Organization', organization), field('URL', url),
        field('Event types (comma-separated, empty for all)', types),
        h('div', {class: 'actions'}, h('button', {type: 'submit'}, 'Add endpoint')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const eventTypes = types.value.split(',').map((t) => t.trim()).filter(Boolean);
    act(async () => {
      const created = await api.json('POST', '/api/v1/webhooks', {
        body: {
          organization_id: Number(organization.value),
          url: url.value.trim(),
          event_types: eventTypes
        },
      });
      showSecret(created);
      form.reset();
    });
  });
  replace(
      section, h('h2', {id: 'webhooks-title'}, 'Webhook endpoints'), form, message, secret, wrap);
  load().catch((e) => {
    message.textContent = e.message;
  });
}

export function mount(container) {
  const status = select('status', statuses.map((s) => [s, s || 'Any status']));
  const channel = select('channel', [['', 'Any channel']]);
  const message = h('p', {class: 'error', role: 'alert'});
  const summary = h('div');
  const detail =
      h('section', {class: 'card', 'aria-live': 'polite', 'aria-labelledby': 'delivery-title'});
  const older = h('button', {type: 'button', disabled: true}, 'Older');
  const {wrap, body} = table('Deliveries, newest first', [
    'Id', 'Channel', 'Recipient', 'Kind', 'Status', 'Attempts', 'Last error', 'Updated', 'Actions'
  ]);
  body.id = 'delivery-rows';
  const hooks = h('section', {'aria-labelledby': 'webhooks-title'});
  detail.hidden = true;

  const form =
      h('form', {class: 'filters card', role: 'search', 'aria-label': 'Filter deliveries'},
        field('Status', status), field('Channel', channel),
        h('div', {class: 'actions'}, h('button', {type: 'submit'}, 'Show')));

  replace(
      container, h('h1', {}, 'Deliveries'),
      h('section', {class: 'card', 'aria-labelledby': 'summary-title'},
        h('h2', {id: 'summary-title'}, 'Summary'), summary),
      form, message, wrap, h('nav', {class: 'pager', 'aria-label': 'Pages of deliveries'}, older),
      detail, hooks);

  // The channels come from the API (notification-kinds), so a new channel needs no change here.
  api.get('/api/v1/notification-kinds')
      .then((k) => {
        for (const c of k.channels || []) channel.append(h('option', {value: c}, c));
      })
      .catch(() => {});

  let before = null;
  let next = null;

  async function showDelivery(id) {
    detail.hidden = false;
    replace(detail, h('h2', {id: 'delivery-title'}, `Delivery ${id}`), h('p', {}, 'Loading…'));
    try {
      const d = await api.get(`/api/v1/deliveries/${id}`);
      const {wrap: attemptsWrap, body: attempts} = table(
          `Attempts of delivery ${id}`,
          ['Attempt', 'Started', 'Duration', 'Outcome', 'Status code', 'Error']);
      for (const a of d.attempts || []) {
        attempts.append(h(
            'tr', {}, h('td', {}, a.attempt), h('td', {}, time(a.started_at)),
            h('td', {class: 'num'}, `${(a.duration_us / 1000).toFixed(1)} ms`),
            h('td', {}, a.outcome), h('td', {}, a.status_code ?? ''), h('td', {}, a.error ?? '')));
      }
      replace(
          detail, h('h2', {id: 'delivery-title'}, `Delivery ${id}: ${d.status}`),
          h('p', {}, `${d.channel} to ${d.recipient}, ${d.kind}, event `,
            h('a', {href: `#/events/${d.event_id}`}, d.event_id)),
          attemptsWrap);
    } catch (e) {
      replace(
          detail, h('h2', {id: 'delivery-title'}, `Delivery ${id}`),
          h('p', {class: 'error'}, e.message));
    }
  }

  async function resend(id) {
    message.textContent = '';
    try {
      await api.json('POST', `/api/v1/deliveries/${id}/resend`);
      await load();
      await showDelivery(id);
    } catch (e) {
      message.textContent = e.message;
    }
  }

  // Only the latest request may fill the page: an older answer arriving late is dropped.
  let loads = 0;
  async function load() {
    const ticket = ++loads;
    message.textContent = '';
    try {
      const [list, counts] = await Promise.all([
        api.get(
            '/api/v1/deliveries',
            {status: status.value, channel: channel.value, before, limit: 50}),
        api.get('/api/v1/deliveries/summary'),
      ]);
      if (ticket !== loads) return;
      replace(summary, summaryTable(counts.items));
      replace(
          body,
          list.items.map(
              (d) =>
                  h('tr', {'data-status': d.status},
                    h('td', {},
                      h('button', {
                        type: 'button',
                        class: 'quiet',
                        'aria-label': `Show delivery ${d.id} and its attempts`,
                        onclick: () => showDelivery(d.id)
                      },
                        d.id)),
                    h('td', {}, d.channel), h('td', {class: 'mono'}, d.recipient),
                    h('td', {}, d.kind), h('td', {}, d.status), h('td', {class: 'num'}, d.attempts),
                    h('td', {}, d.last_error ?? ''), h('td', {}, time(d.updated_at)),
                    h('td', {},
                      d.status === 'dead' || d.status === 'failed' ? h('button', {
                        type: 'button',
                        'aria-label': `Re-send delivery ${d.id}`,
                        onclick: () => resend(d.id)
                      },
                                                                       'Re-send') :
                                                                     ''))));
      if (list.items.length === 0)
        body.append(h('tr', {}, h('td', {colspan: 9, class: 'muted'}, 'No deliveries match.')));
      next = list.next_before;
      older.disabled = next === null;
    } catch (e) {
      if (ticket !== loads) return;
      message.textContent = e.status === 403 ?
          `${e.message} (deliveries need a token with the admin or notify scope)` :
          e.message;
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    before = null;
    load();
  });
  older.addEventListener('click', () => {
    before = next;
    load();
  });
  load();
  webhooks(hooks);
  return null;
}
