// Events: search the store with the list API's filters and cursor pagination; one event's JSON.

import * as api from '../api.js';
import {field, h, replace, select, table, time, toRfc3339} from '../dom.js';

import {actorOf, entityOf} from './live.js';

// The newest page starts before any possible position.
const newest = '9007199254740991';

function detail(container, id) {
  const out = h('div', {}, h('p', {role: 'status'}, 'Loading…'));
  replace(
      container, h('p', {}, h('a', {href: '#/events'}, '← All events')),
      h('h1', {}, 'Event ', h('span', {class: 'mono'}, id)), out);
  api.get(`/api/v1/events/${encodeURIComponent(id)}`)
      .then((stored) => {
        const e = stored.event;
        replace(
            out,
            h('dl', {class: 'card'}, h('dt', {}, 'Type'), h('dd', {}, e.event_type),
              h('dt', {}, 'Position'), h('dd', {}, stored.position), h('dt', {}, 'Occurred'),
              h('dd', {}, time(e.timestamp)), h('dt', {}, 'Recorded'),
              h('dd', {}, time(stored.recorded_at)), h('dt', {}, 'Organization'),
              h('dd', {}, e.organization_id ?? 'none'), h('dt', {}, 'Actor'),
              h('dd', {}, actorOf(e) || 'unknown'), h('dt', {}, 'Entity'),
              h('dd', {}, entityOf(e))),
            h('h2', {}, 'JSON'),
            h('pre', {id: 'event-json', tabindex: '0', 'aria-label': 'The event as JSON'},
              JSON.stringify(stored, null, 2)));
      })
      .catch((e) => replace(out, h('p', {class: 'error', role: 'alert'}, e.message)));
}

export function mount(container, args) {
  if (args.length > 0) return detail(container, decodeURIComponent(args[0]));

  const type = select('type', [['', 'Any type']]);
  const organization = h('input', {name: 'organization', inputmode: 'numeric', size: 8});
  const entityType = h('input', {name: 'entity_type', size: 10});
  const entityId = h('input', {name: 'entity_id', size: 10});
  const since = h('input', {name: 'since', type: 'datetime-local', step: 1});
  const until = h('input', {name: 'until', type: 'datetime-local', step: 1});
  const limit = select('limit', ['25', '50', '100', '500'], '50');
  const message = h('p', {class: 'error', role: 'alert'});
  const summary = h('p', {class: 'muted', role: 'status'});
  const older = h('button', {type: 'button', disabled: true}, 'Older');
  const newer = h('button', {type: 'button', disabled: true}, 'Newer');
  const {wrap, body} = table(
      'Events, newest first', ['Time', 'Type', 'Organization', 'Actor', 'Entity', 'Position']);
  body.id = 'event-rows';

  const form =
      h('form', {class: 'filters card', role: 'search', 'aria-label': 'Search events'},
        field('Type', type), field('Organization', organization), field('Entity type', entityType),
        field('Entity id', entityId), field('Since', since), field('Until', until),
        field('Per page', limit),
        h('div', {class: 'actions'}, h('button', {type: 'submit'}, 'Search')));

  replace(
      container, h('h1', {}, 'Events'), form, message, summary, wrap,
      h('nav', {class: 'pager', 'aria-label': 'Pages of events'}, newer, older));

  api.get('/api/v1/catalog')
      .then((catalog) => {
        for (const name of catalog.types.map((t) => t.name).sort())
          type.append(h('option', {value: name}, name));
      })
      .catch(() => {});

  // The cursors of the pages shown so far: going back pops one.
  const cursors = [newest];
  let next = null;

  // Only the latest request may fill the page: an older answer arriving late is dropped.
  let loads = 0;
  async function load() {
    const ticket = ++loads;
    message.textContent = '';
    const params = {
      type: type.value,
      organization: organization.value.trim(),
      entity_type: entityType.value.trim(),
      entity_id: entityId.value.trim(),
      since: toRfc3339(since.value),
      until: toRfc3339(until.value),
      limit: limit.value,
      before: cursors[cursors.length - 1],
    };
    try {
      const page = await api.get('/api/v1/events', params);
      if (ticket !== loads) return;
      replace(body, page.events.map((stored) => {
        const e = stored.event;
        return h(
            'tr', {}, h('td', {}, time(e.timestamp)),
            h('td', {}, h('a', {href: `#/events/${e.event_id}`}, e.event_type)),
            h('td', {}, e.organization_id ?? ''), h('td', {}, actorOf(e)), h('td', {}, entityOf(e)),
            h('td', {class: 'num'}, stored.position));
      }));
      if (page.events.length === 0)
        body.append(h('tr', {}, h('td', {colspan: 6, class: 'muted'}, 'No events match.')));
      next = page.next_before;
      older.disabled = next === null;
      newer.disabled = cursors.length <= 1;
      summary.textContent = `Page ${cursors.length}: ${page.events.length} event(s).`;
    } catch (e) {
      if (ticket !== loads) return;
      replace(body);
      message.textContent = e.field ? `${e.message} (${e.field})` : e.message;
      summary.textContent = '';
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    cursors.length = 1;
    load();
  });
  older.addEventListener('click', () => {
    if (next === null) return;
    cursors.push(String(next));
    load();
  });
  newer.addEventListener('click', () => {
    if (cursors.length > 1) cursors.pop();
    load();
  });
  load();
  return null;
}
