// The pipelines page: every pipeline with its newest version, schedule in words and next fire,
// last run and a strip of its last 20 runs; searchable. It all comes in one request
// (`GET /v1/pipelines?recent=20`).
import { get } from './api.js';
import { cronWords } from './cron.js';
import { ago, h, href, notice, put, statusEl, time, timeEl } from './dom.js';

function strip(runs) {
  const last = runs.slice(0, 20).reverse();
  return h('ol', { class: 'strip', 'aria-label': `last ${last.length} runs, oldest first` },
    last.map((r) => h('li', {}, h('a', {
      href: href('runs', r.id), class: ['sq', `st-${r.status}`],
      title: `${r.status} · ${time(r.created_at)}${r.version ? ` · v${r.version}` : ''}`,
      'aria-label': `run ${r.id.slice(0, 8)} ${r.status} ${time(r.created_at)}`,
    }))));
}

export async function render(main, _params, ctx) {
  const filter = h('input', { id: 'pipeline-filter', type: 'search', placeholder: 'Filter by name', autocomplete: 'off' });
  const statusFilter = h('select', { id: 'pipeline-status-filter' },
    h('option', { value: '' }, 'any last run'),
    ['succeeded', 'failed', 'running', 'queued', 'cancelled', 'none'].map((st) => h('option', { value: st }, st === 'none' ? 'never run' : st)));
  const count = h('p', { class: 'muted', id: 'pipeline-count', 'aria-live': 'polite' });
  const tbody = h('tbody', {});
  const table = h('table', { class: 'list', id: 'pipelines' },
    h('caption', { class: 'sr-only' }, 'Pipelines'),
    h('thead', {}, h('tr', {},
      ['Name', 'Version', 'Schedule', 'Next fire', 'Last run', 'Last 20 runs', 'Updated'].map((t) => h('th', { scope: 'col' }, t)))),
    tbody);
  put(main,
    h('div', { class: 'page-head' },
      h('h1', {}, 'Pipelines'),
      ctx.can('editor') ? h('a', { class: 'btn btn-primary', href: '#/new', id: 'new-pipeline' }, 'New pipeline') : null),
    h('div', { class: 'toolbar', role: 'search' },
      h('label', { for: 'pipeline-filter' }, 'Search'), filter,
      h('label', { for: 'pipeline-status-filter' }, 'Last run'), statusFilter),
    count,
    h('div', { class: 'table-wrap' }, table));
  // The list says each pipeline's schedule, its next slot and its last runs.
  const rows = await get('/v1/pipelines?recent=20', { signal: ctx.signal });
  rows.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  const items = rows.map((p) => {
    const cells = {
      schedule: h('td', { class: 'muted' }, '…'),
      next: h('td', { class: 'muted' }, ''),
      last: h('td', {}, ''),
      strip: h('td', {}, ''),
    };
    const tr = h('tr', { dataset: { name: p.name } },
      h('th', { scope: 'row' }, h('a', { href: href('pipelines', p.name) }, p.name)),
      h('td', { class: 'num' }, `v${p.latest_version}`),
      cells.schedule, cells.next, cells.last, cells.strip,
      h('td', {}, timeEl(p.updated_at)));
    return { p, tr, cells, last: undefined };
  });
  tbody.append(...items.map((i) => i.tr));

  function applyFilter() {
    const q = filter.value.trim().toLowerCase();
    const st = statusFilter.value;
    let shown = 0;
    for (const i of items) {
      const ok = (!q || i.p.name.toLowerCase().includes(q)) && (!st || (i.last || 'none') === st);
      i.tr.hidden = !ok;
      if (ok) shown++;
    }
    count.textContent = `${shown} of ${items.length} pipeline${items.length === 1 ? '' : 's'}`;
  }
  function fill(item, schedule, runs) {
    const { cells } = item;
    if (schedule) {
      const tz = schedule.timezone || 'UTC';
      put(cells.schedule, h('span', { title: `${schedule.cron} (${tz})` }, cronWords(schedule.cron)), tz !== 'UTC' ? h('span', { class: 'muted' }, ` (${tz})`) : null);
      cells.schedule.className = '';
      const next = schedule.next_fire_at;
      put(cells.next, next ? h('time', { datetime: new Date(next).toISOString(), title: ago(next) }, time(next)) : '');
    } else {
      put(cells.schedule, 'on demand');
    }
    item.last = runs.length ? runs[0].status : null;
    put(cells.last, runs.length ? h('a', { href: href('runs', runs[0].id) }, statusEl(runs[0].status)) : h('span', { class: 'muted' }, 'never run'));
    put(cells.strip, runs.length ? strip(runs) : '');
    item.tr.dataset.loaded = '1';
  }
  items.forEach((i) => fill(i, i.p.schedule, i.p.recent_runs || []));
  filter.addEventListener('input', applyFilter);
  statusFilter.addEventListener('change', applyFilter);
  applyFilter();
  if (!items.length) main.append(notice('info', 'No pipelines yet.'));
}
