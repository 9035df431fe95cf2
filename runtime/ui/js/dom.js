// Small DOM helpers: elements from data (never from HTML strings), formatting of times, sizes
// and digests. Nothing here sets a style attribute (the page's CSP forbids them).

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'text') el.textContent = String(v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
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

/** An HTML element: h('a', {href: '#/x', class: 'btn'}, 'text', child, [more]). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** Replaces the children of `el`. */
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** `#/pipelines/NAME` style links with each part encoded. */
export function href(...parts) {
  return '#/' + parts.map((p) => encodeURIComponent(String(p))).join('/');
}

const pad = (n) => String(n).padStart(2, '0');

/** A Unix-ms time as `2026-12-01 18:24:38` (local time), or '' for none. */
export function time(ms) {
  if (ms === null || ms === undefined) return '';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A <time> element with the ISO time as its datetime and a relative title. */
export function timeEl(ms) {
  if (ms === null || ms === undefined) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: new Date(ms).toISOString(), title: ago(ms) }, time(ms));
}

/** `5 s ago`, `in 3 min`. */
export function ago(ms) {
  const diff = (Date.now() - ms) / 1000;
  const abs = Math.abs(diff);
  const t = abs < 60 ? `${Math.round(abs)} s` : abs < 3600 ? `${Math.round(abs / 60)} min`
    : abs < 86400 ? `${Math.round(abs / 3600)} h` : `${Math.round(abs / 86400)} d`;
  return diff >= 0 ? `${t} ago` : `in ${t}`;
}

/** A duration in ms as `850 ms`, `12.3 s`, `4 min 2 s`. */
export function duration(ms) {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

/** Bytes as `512 B`, `1.2 KiB`, `3.4 MiB`. */
export function bytes(n) {
  if (n === null || n === undefined) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** A number with thousands separators. */
export function num(n) {
  return n === null || n === undefined ? '' : Number(n).toLocaleString('en-US');
}

/** `sha256:abcdef123456…` shortened, the whole digest in its title. */
export function digestEl(d) {
  if (!d) return h('span', { class: 'muted' }, '—');
  const hex = String(d).replace(/^sha256:/, '');
  return h('code', { class: 'digest', title: `sha256:${hex}` }, `sha256:${hex.slice(0, 12)}…`);
}

/** A run or step status as a coloured badge. */
export function statusEl(status) {
  return h('span', { class: ['status', `st-${status || 'none'}`] }, status || '—');
}

/** A message box for errors (role=alert), notes or successes. */
export function notice(kind, text) {
  return h('p', { class: ['notice', `notice-${kind}`], role: kind === 'error' ? 'alert' : 'status' }, text);
}

/** Debounces `fn` by `ms`. */
export function debounce(fn, ms) {
  let t = null;
  const d = (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
  d.cancel = () => clearTimeout(t);
  return d;
}
