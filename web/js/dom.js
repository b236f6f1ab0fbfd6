// Small DOM helpers: elements are built, never parsed from HTML strings, so data from the API is
// always text.

let nextId = 0;

/** Creates an element: h("a", {href: "#/x", class: "y", onclick: f}, "text", child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

/** Appends children (strings, numbers, nodes, arrays, null) to an element. */
export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A unique id for labelling. */
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** A labelled form control inside a div: {wrap, input}. */
export function field(label, input) {
  if (!input.id) input.id = uid('f');
  return h('div', {}, h('label', { for: input.id
           }, label), input);
}

/** A <select> from [value, text] pairs (or plain strings). */
export function select(name, options, value = '') {
  const el = h('select', {name});
  for (const option of options) {
    const [v, text] = Array.isArray(option) ? option : [option, option];
    el.append(h('option', {value: v, selected: String(v) === String(value)}, text));
  }
  return el;
}

/** A table with a caption and headers; returns {table, body}. */
export function table(caption, headers) {
  const body = h('tbody');
  const table = h(
      'table', {}, h('caption', {class: 'sr-only'}, caption),
      h('thead', {},
        h('tr', {},
          headers.map((name) => typeof name === 'string' ? h('th', {scope: 'col'}, name) : name))),
      body);
  return {table, body, wrap: h('div', {class: 'table-wrap'}, table)};
}

/** A timestamp for people: local date and time with seconds. */
export function time(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, {
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

/** A datetime-local input's value as RFC 3339 UTC, or "" when empty. */
export function toRfc3339(localValue) {
  if (!localValue) return '';
  const d = new Date(localValue);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

/** Announces a message to screen readers through the page's polite live region. */
export function announce(text) {
  const region = document.getElementById('announcer');
  if (region) region.textContent = text;
}
