// Live: the event stream (SSE) as a table, newest first, with filters, pause, counts per type, a
// rate chart of the last five minutes, and the consumers' lag and error counters.

import * as api from '../api.js';
import {announce, field, h, replace, select, table, time} from '../dom.js';
import {RateChart} from '../rate_chart.js';

const maxRows = 500;

/** Who caused an event, as the table shows it. */
export function actorOf(event) {
  if (event.user_id === undefined || event.user_id === null) return '';
  return event.user_id === -1 ? 'system' : String(event.user_id);
}

/** The entity an event is about: "Race 17". */
export function entityOf(event) {
  return [event.entity_type, event.entity_id]
      .filter((v) => v !== undefined && v !== null)
      .join(' ');
}

/**
 * Sums the samples of one metric in the Prometheus text format, optionally filtered by a label
 * predicate.
 */
export function sumMetric(text, name, labelTest = () => true) {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    if (!labelTest(match[2] || '')) continue;
    const value = Number(match[3]);
    if (Number.isFinite(value)) total += value;
  }
  return total;
}

export function mount(container, _args, _context) {
  const received = [];       // every event seen, newest last (bounded)
  const counts = new Map();  // type -> count since the page opened
  let paused = false;
  let pending = 0;
  let drawQueued = false;
  // Screen readers hear a summary at most every few seconds, not every event of a busy stream.
  let unannounced = 0;
  function announceArrivals() {
    if (unannounced === 0) return;
    announce(`${unannounced} new event${unannounced === 1 ? '' : 's'} in the live table`);
    unannounced = 0;
  }

  const typeFilter = select('type', [['', 'All types']]);
  const orgFilter =
      h('input', {name: 'organization', inputmode: 'numeric', size: 8, placeholder: 'any'});
  const pauseButton = h('button', {type: 'button', 'aria-pressed': 'false'}, 'Pause');
  const status = h('span', {class: 'muted', role: 'status'}, 'Connecting…');
  const countsList = h('ul', {class: 'counts', 'aria-label': 'Events per type'});
  const canvas = h('canvas', {
    class: 'rate',
    role: 'img',
    'aria-label': 'Events per 5 seconds over the last five minutes'
  });
  const consumersBody = h('tbody');
  const errorsLine = h('p', {class: 'muted'});
  const {wrap, body} = table(
      'Live events, newest first', ['Time', 'Type', 'Organization', 'Actor', 'Entity', 'Position']);
  body.id = 'live-rows';

  replace(
      container, h('h1', {}, 'Live'),
      h('div', {class: 'card'},
        h('form', {
          class: 'filters',
          role: 'search',
          'aria-label': 'Filter the live events',
          onsubmit: (e) => e.preventDefault()
        },
          field('Type', typeFilter), field('Organization', orgFilter),
          h('div', {class: 'actions'}, pauseButton)),
        h('div', {class: 'toolbar'}, status)),
      h('div', {class: 'grid'},
        h('section', {class: 'card', 'aria-labelledby': 'rate-title'},
          h('h2', {id: 'rate-title'}, 'Rate, last five minutes'), canvas),
        h('section', {class: 'card', 'aria-labelledby': 'counts-title'},
          h('h2', {id: 'counts-title'}, 'Counts per type'), countsList),
        h('section', {class: 'card', 'aria-labelledby': 'consumers-title'},
          h('h2', {id: 'consumers-title'}, 'Consumers'),
          h('div', {class: 'table-wrap'},
            h('table', {}, h('caption', {class: 'sr-only'}, 'Durable consumers and their lag'),
              h('thead', {},
                h('tr', {}, h('th', {scope: 'col'}, 'Name'),
                  h('th', {scope: 'col', class: 'num'}, 'Lag'),
                  h('th', {scope: 'col', class: 'num'}, 'Parked'),
                  h('th', {scope: 'col', class: 'num'}, 'Checkpoint'))),
              consumersBody)),
          errorsLine)),
      h('section', {'aria-labelledby': 'events-title'}, h('h2', {id: 'events-title'}, 'Events'),
        wrap));

  const chart = new RateChart(canvas, {windowSeconds: 300, bucketSeconds: 5});

  function matches(event) {
    if (typeFilter.value && event.event_type !== typeFilter.value) return false;
    const org = orgFilter.value.trim();
    if (org && String(event.organization_id ?? '') !== org) return false;
    return true;
  }

  function row(position, event) {
    return h(
        'tr', {'data-type': event.event_type}, h('td', {}, time(event.timestamp)),
        h('td', {}, h('a', {href: `#/events/${event.event_id}`}, event.event_type)),
        h('td', {}, event.organization_id ?? ''), h('td', {}, actorOf(event)),
        h('td', {}, entityOf(event)), h('td', {class: 'num'}, position));
  }

  function render() {
    const rows = [];
    for (let i = received.length - 1; i >= 0 && rows.length < maxRows; i -= 1) {
      const [position, event] = received[i];
      if (matches(event)) rows.push(row(position, event));
    }
    replace(body, rows);
  }

  function renderCounts() {
    const sorted = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    replace(
        countsList,
        sorted.map(
            ([type, n]) =>
                h('li', {'data-type': type}, h('span', {}, type), ': ', h('strong', {}, n))));
    if (sorted.length === 0) countsList.append(h('li', {class: 'muted'}, 'No events yet.'));
  }

  function onEvent(message) {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    const position = Number(message.lastEventId);
    received.push([position, event]);
    if (received.length > maxRows * 4) received.splice(0, received.length - maxRows * 4);
    counts.set(event.event_type, (counts.get(event.event_type) || 0) + 1);
    chart.add(Date.now());
    if (!drawQueued) {
      drawQueued = true;
      requestAnimationFrame(() => {
        drawQueued = false;
        chart.draw(Date.now());
      });
    }
    renderCounts();
    if (paused) {
      pending += 1;
      status.textContent = `Paused; ${pending} new event(s) waiting.`;
      return;
    }
    if (matches(event)) {
      body.prepend(row(position, event));
      while (body.rows.length > maxRows) body.lastElementChild.remove();
      unannounced += 1;
    }
  }

  // Each event arrives as an SSE event named after its type, so the stream opens once the catalog
  // has named every type to listen for.
  let source = null;
  function connect(types) {
    source = api.stream('/api/v1/events/stream');
    source.onopen = () => {
      status.textContent = paused ? 'Paused.' : 'Connected; showing events as they arrive.';
    };
    source.onerror = () => {
      status.textContent = 'Disconnected; reconnecting (events missed meanwhile are replayed)…';
      // A refused token makes the browser give up: ask the API, so a revoked token signs out.
      if (source.readyState === EventSource.CLOSED) api.get('/api/v1/catalog').catch(() => {});
    };
    source.onmessage = onEvent;
    for (const type of types) source.addEventListener(type, onEvent);
  }
  api.get('/api/v1/catalog')
      .then((catalog) => {
        const types = catalog.types.map((t) => t.name).sort();
        for (const type of types) typeFilter.append(h('option', {value: type}, type));
        connect(types);
      })
      .catch((e) => {
        status.textContent = `Cannot read the catalog (${e.message}); types are not listed.`;
        connect([]);
      });

  typeFilter.addEventListener('change', render);
  orgFilter.addEventListener('input', render);
  pauseButton.addEventListener('click', () => {
    paused = !paused;
    pauseButton.textContent = paused ? 'Resume' : 'Pause';
    pauseButton.setAttribute('aria-pressed', String(paused));
    if (!paused) {
      pending = 0;
      render();
      status.textContent = 'Connected; showing events as they arrive.';
    } else {
      status.textContent = 'Paused.';
    }
  });

  async function refreshConsumers() {
    try {
      const body = await api.get('/api/v1/consumers');
      replace(
          consumersBody,
          body.consumers.map(
              (c) =>
                  h('tr', {}, h('td', {}, c.name), h('td', {class: 'num'}, c.lag),
                    h('td', {class: 'num'}, c.parked), h('td', {class: 'num'}, c.checkpoint))));
      if (body.consumers.length === 0)
        consumersBody.append(h('tr', {}, h('td', {colspan: 4, class: 'muted'}, 'No consumers.')));
    } catch (e) {
      replace(
          consumersBody,
          h('tr', {},
            h('td', {colspan: 4, class: 'muted'},
              e.status === 403 ? 'Consumers need an admin token.' :
                                 `Cannot read consumers: ${e.message}`)));
    }
    try {
      const metrics = await api.text('/metrics');
      const failures = sumMetric(metrics, 'herald_handler_failures_total');
      const serverErrors = sumMetric(
          metrics, 'herald_http_requests_total', (labels) => /status="5\d\d"/.test(labels));
      const clients = sumMetric(metrics, 'herald_stream_clients');
      replace(
          errorsLine,
          `Handler failures: ${failures} · HTTP 5xx answers: ${serverErrors} · stream clients: ${
              clients}`);
    } catch (e) {
      replace(errorsLine, `Cannot read metrics: ${e.message}`);
    }
  }
  refreshConsumers();
  renderCounts();
  const timers = [
    setInterval(refreshConsumers, 5000), setInterval(() => chart.draw(Date.now()), 1000),
    setInterval(announceArrivals, 5000)
  ];

  return () => {
    if (source) source.close();
    for (const timer of timers) clearInterval(timer);
  };
}
