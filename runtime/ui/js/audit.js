// The audit log (admins): who changed what, when, from where; filtered on this page.
import { get } from './api.js';
import { h, put, timeEl } from './dom.js';

export async function render(main, _params, ctx) {
  const rows = await get('/v1/audit?limit=500', { signal: ctx.signal });
  const filter = h('input', { id: 'audit-filter', type: 'search', placeholder: 'actor, action, target…', autocomplete: 'off' });
  const trs = rows.map((a) => {
    const tr = h('tr', {},
      h('td', {}, timeEl(a.at)), h('td', {}, a.actor), h('td', {}, h('code', {}, a.action)), h('td', {}, a.target || ''),
      h('td', {}, a.remote || ''), h('td', { class: 'num' }, a.count), h('td', { class: 'desc' }, a.detail || ''));
    tr.dataset.text = [a.actor, a.action, a.target, a.remote, a.detail].join(' ').toLowerCase();
    return tr;
  });
  filter.addEventListener('input', () => {
    const q = filter.value.trim().toLowerCase();
    for (const tr of trs) tr.hidden = q && !tr.dataset.text.includes(q);
  });
  put(main, h('h1', {}, 'Audit log'),
    h('div', { class: 'toolbar', role: 'search' }, h('label', { for: 'audit-filter' }, 'Filter'), filter),
    h('div', { class: 'table-wrap' }, h('table', { class: 'list', id: 'audit' },
      h('thead', {}, h('tr', {}, ['When', 'Who', 'What', 'On', 'From', 'Count', 'Detail'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, trs))));
}
