// Building blocks of the status page (see status.js): DOM nodes and text only, never markup.
const DOCS = '/docs/errors#';

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(2)) {
    if (child !== null && child !== undefined && child !== false) el.append(child);
  }
  return el;
}

export const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
function span(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return plural(s, 'second');
  if (s < 3600) return plural(Math.round(s / 60), 'minute');
  if (s < 172800) return plural(Math.round(s / 3600), 'hour');
  return plural(Math.round(s / 86400), 'day');
}
/** A time that stays current: the ticker rewrites every element with data-at each second. */
export function when(iso, mode = 'ago') {
  return h(
    'time',
    { datetime: iso, 'data-at': iso, 'data-mode': mode, title: new Date(iso).toLocaleString() },
    relative(iso, mode),
  );
}
function relative(iso, mode) {
  const ms = Date.parse(iso) - Date.now();
  if (mode === 'for') return span(-ms);
  if (mode === 'in') return ms >= 0 ? `in ${span(ms)}` : `${span(-ms)} ago (expired)`;
  return `${span(-ms)} ago`;
}
setInterval(() => {
  for (const el of document.querySelectorAll('[data-at]'))
    el.textContent = relative(el.dataset.at, el.dataset.mode);
}, 1000);

export const codeLink = (code) =>
  h('a', { href: DOCS + encodeURIComponent(code), class: 'code' }, h('code', null, code));
export const badge = (state) =>
  h('span', { class: `badge s-${state}`, 'data-field': 'state' }, state.replace('_', ' '));

export function copyButton(text, label, id) {
  return h(
    'button',
    { type: 'button', 'data-focus': id, onclick: (e) => copy(text, e.currentTarget) },
    label,
  );
}
async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = h('textarea', { class: 'offscreen' }, text);
    document.body.append(area);
    area.select();
    document.execCommand('copy');
    area.remove();
  }
  button.textContent = 'Copied';
  setTimeout(() => {
    button.textContent = 'Copy';
  }, 1500);
}

export function table(headings, rows) {
  return h(
    'div',
    { class: 'scroll' },
    h(
      'table',
      null,
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          headings.map((t) => h('th', { scope: 'col' }, t)),
        ),
      ),
      h('tbody', null, rows),
    ),
  );
}
