// Audit: the audit log with filters and pagination, the chain's status with a verify button, and
// CSV export.

import * as api from '../api.js';
import {field, h, replace, select, table, time, toRfc3339} from '../dom.js';

export function mount(container) {
  const organization = h('input', {name: 'organization', inputmode: 'numeric', size: 8});
  const actor = h('input', {name: 'actor', inputmode: 'numeric', size: 8});
  const action = h('input', {name: 'action', size: 16, placeholder: 'user_created or prefix_*'});
  const entityType = h('input', {name: 'entity_type', size: 10});
  const entityId = h('input', {name: 'entity_id', size: 10});
  const since = h('input', {name: 'since', type: 'datetime-local', step: 1});
  const until = h('input', {name: 'until', type: 'datetime-local', step: 1});
  const limit = select('limit', ['25', '50', '100', '500'], '50');
  const message = h('p', {class: 'error', role: 'alert'});
  const summary = h('p', {class: 'muted', role: 'status'});
  const chain = h('p', {id: 'chain-status', role: 'status'}, 'Chain not verified yet.');
  const verify = h('button', {type: 'button'}, 'Verify chain');
  const exportButton = h('button', {type: 'button', class: 'quiet'}, 'Export CSV');
  const older = h('button', {type: 'button', disabled: true}, 'Older');
  const newer = h('button', {type: 'button', disabled: true}, 'Newer');
  const {wrap, body} = table(
      'Audit records, newest first',
      ['Occurred', 'Action', 'Organization', 'Actor', 'Entity', 'Event', 'Position']);
  body.id = 'audit-rows';

  const form =
      h('form', {class: 'filters card', role: 'search', 'aria-label': 'Search the audit log'},
        field('Organization', organization), field('Actor', actor), field('Action', action),
        field('Entity type', entityType), field('Entity id', entityId), field('Since', since),
        field('Until', until), field('Per page', limit),
        h('div', {class: 'actions'}, h('button', {type: 'submit'}, 'Search'), exportButton));

  replace(
      container, h('h1', {}, 'Audit'),
      h('section', {class: 'card', 'aria-labelledby': 'chain-title'},
        h('h2', {id: 'chain-title'}, 'Hash chain'), h('div', {class: 'toolbar'}, verify, chain)),
      form, message, summary, wrap,
      h('nav', {class: 'pager', 'aria-label': 'Pages of audit records'}, newer, older));

  const cursors = [null];
  let next = null;

  function filters() {
    return {
      organization: organization.value.trim(),
      actor: actor.value.trim(),
      action: action.value.trim(),
      entity_type: entityType.value.trim(),
      entity_id: entityId.value.trim(),
      since: toRfc3339(since.value),
      until: toRfc3339(until.value),
    };
  }

  // Only the latest request may fill the page: an older answer arriving late is dropped.
  let loads = 0;
  async function load() {
    const ticket = ++loads;
    message.textContent = '';
    try {
      const page = await api.get(
          '/api/v1/audit', {...filters(), limit: limit.value, before: cursors[cursors.length - 1]});
      if (ticket !== loads) return;
      replace(
          body,
          page.records.map(
              (r) =>
                  h('tr', {}, h('td', {}, time(r.occurred_at)), h('td', {}, r.action),
                    h('td', {}, r.organization_id ?? ''),
                    h('td', {}, r.actor === -1 ? 'system' : (r.actor ?? '')),
                    h('td', {}, [r.entity_type, r.entity_id].filter(Boolean).join(' ')),
                    h('td', {class: 'mono'},
                      r.event_id ?
                          h('a', {href: `#/events/${r.event_id}`}, r.event_id.slice(0, 13) + '…') :
                          ''),
                    h('td', {class: 'num'}, r.position))));
      if (page.records.length === 0)
        body.append(h('tr', {}, h('td', {colspan: 7, class: 'muted'}, 'No records match.')));
      next = page.next_before;
      older.disabled = next === null;
      newer.disabled = cursors.length <= 1;
      summary.textContent = `${page.total} matching record(s); page ${cursors.length}.`;
    } catch (e) {
      if (ticket !== loads) return;
      replace(body);
      summary.textContent = '';
      message.textContent = e.field ? `${e.message} (${e.field})` : e.message;
    }
  }

  verify.addEventListener('click', async () => {
    verify.disabled = true;
    chain.className = '';
    chain.textContent = 'Verifying…';
    try {
      const result = await api.get('/api/v1/audit/verify');
      if (result.ok) {
        chain.className = 'ok';
        chain.textContent = `Chain intact: ${result.records} record(s), head ${result.head}.`;
      } else {
        chain.className = 'bad';
        chain.textContent = `Chain broken at record ${result.failure.position} (${
            result.failure.fault}): ${result.failure.message}`;
      }
    } catch (e) {
      chain.className = 'bad';
      chain.textContent = `Cannot verify: ${e.message}`;
    }
    verify.disabled = false;
  });

  exportButton.addEventListener('click', async () => {
    message.textContent = '';
    try {
      const response =
          await api.raw('GET', '/api/v1/audit/export', {params: {...filters(), format: 'csv'}});
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const link = h('a', {href: url, download: 'audit.csv', hidden: true});
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      summary.textContent = `Exported ${blob.size} bytes as audit.csv.`;
    } catch (e) {
      message.textContent = `Cannot export: ${e.message}`;
    }
  });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    cursors.length = 1;
    load();
  });
  older.addEventListener('click', () => {
    if (next === null) return;
    cursors.push(next);
    load();
  });
  newer.addEventListener('click', () => {
    if (cursors.length > 1) cursors.pop();
    load();
  });
  load();
  return null;
}
