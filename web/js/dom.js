// DOM building and formatting helpers shared by every view.

// h('a', {href: '#/', class: 'x', onclick: fn}, 'text', child, [more]) builds
// an element. Attributes: class, text, html is not supported (no innerHTML
// anywhere: every string from the API is text), on<event> handlers,
// dataset: {...}, and any other attribute by name (null/false leave it out).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'selected' || k === 'disabled') el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// A <select> with options [{value, label}] or plain strings.
export function select(attrs, options, selected) {
  const s = h('select', attrs);
  for (const o of options) {
    const opt = typeof o === 'string' ? { value: o, label: o } : o;
    s.append(h('option', { value: opt.value, selected: String(opt.value) === String(selected ?? '') }, opt.label));
  }
  return s;
}

export function labelled(text, control) {
  return h('label', {}, text, control);
}

export function badge(text, kind) {
  return h('span', { class: 'badge ' + String(kind ?? text).replace(/\s+/g, '-') }, text);
}

export function shortSha(sha) {
  return sha ? sha.slice(0, 8) : '—';
}

export function firstLine(msg) {
  if (!msg) return '';
  const line = msg.split('\n')[0];
  return line.length > 90 ? line.slice(0, 89) + '…' : line;
}

const dateFmt = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
});

export function fmtTime(ts) {
  if (!ts) return '—';
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? String(ts) : dateFmt.format(d);
}

export function fmtAgo(ts, now = Date.now()) {
  if (!ts) return 'never';
  const s = Math.round((now - new Date(ts).getTime()) / 1000);
  if (s < 0) return 'just now';
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

// Three significant digits, no exponent for everyday magnitudes.
export function fmtNum(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  const a = Math.abs(v);
  if (a !== 0 && (a < 0.001 || a >= 1e7)) return v.toExponential(2);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  return Number(v.toPrecision(4)).toString();
}

const BYTE_UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];

// A value with its unit; bytes are scaled to kB, MB, GB (powers of 1000, as
// goals are written: "peak memory < 4 GB").
export function fmtValue(v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  if (unit === 'bytes' || unit === 'bytes/req' || unit === 'B') {
    let x = v, i = 0;
    while (Math.abs(x) >= 1000 && i < BYTE_UNITS.length - 1) { x /= 1000; i++; }
    const suffix = unit === 'bytes/req' ? '/req' : '';
    return `${fmtNum(x)} ${BYTE_UNITS[i]}${suffix}`;
  }
  return unit ? `${fmtNum(v)} ${unit}` : fmtNum(v);
}

export function fmtPct(v, digits = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  return (v > 0 ? '+' : '') + v.toFixed(digits) + '%';
}

export function fmtP(p) {
  if (p === null || p === undefined) return '—';
  if (p < 0.0001) return 'p < 0.0001';
  return 'p = ' + Number(p.toPrecision(2));
}

export function loading(text = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, text);
}

// The clear empty state: a title and what to do about it.
export function emptyState(title, ...body) {
  return h('div', { class: 'empty', role: 'status', dataset: { empty: '' } }, h('strong', {}, title), ...body);
}

// The clear message when the API fails, with a retry button.
export function errorState(err, retry) {
  const what = err && err.url ? ` (${err.method || 'GET'} ${err.url})` : '';
  const status = err && err.status ? `HTTP ${err.status}: ` : '';
  return h('div', { class: 'error', role: 'alert', dataset: { apiError: err && err.status ? String(err.status) : 'network' } },
    h('strong', {}, 'The benchline API did not answer as expected.'),
    h('span', {}, status + (err && err.message ? err.message : String(err)) + what),
    retry ? h('div', { class: 'buttons', style: 'margin-top:0.6rem' },
      h('button', { type: 'button', onclick: retry }, 'Try again')) : null);
}

export function table(headers, rows, attrs = {}) {
  return h('div', { class: 'table-wrap' },
    h('table', attrs,
      h('thead', {}, h('tr', {}, headers.map((x) => typeof x === 'string'
        ? h('th', { scope: 'col' }, x) : h('th', { scope: 'col', class: x.class }, x.label)))),
      h('tbody', {}, rows)));
}

export function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(Boolean).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}
