// Workers seen in the last minute: labels, runs held, heartbeat.
import { get } from './api.js';
import { h, put, timeEl } from './dom.js';

export async function render(main, _params, ctx) {
  const rows = await get('/v1/workers', { signal: ctx.signal });
  put(main, h('h1', {}, 'Workers'),
    rows.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'list', id: 'workers' },
      h('thead', {}, h('tr', {}, ['Worker', 'Name', 'Labels', 'Runs held', 'Started', 'Last heartbeat'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows.map((w) => h('tr', {},
        h('th', { scope: 'row' }, h('code', {}, w.id)), h('td', {}, w.name),
        h('td', {}, w.labels.map((l) => h('span', { class: 'tag' }, l))),
        h('td', { class: 'num' }, w.running), h('td', {}, timeEl(w.started_at)), h('td', {}, timeEl(w.heartbeat_at)))))))
      : h('p', { class: 'muted' }, 'No worker seen in the last minute (the server runs pipelines itself unless told otherwise).'));
}
