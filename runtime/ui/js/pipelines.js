// The pipelines page: every pipeline with its newest version, schedule in words and next fire,
// last run and a strip of its last 20 runs; searchable. The list comes in one request; each
// row's schedule and runs are asked for when the row comes into view (a few at a time).
import { get, path } from './api.js';
import { cronWords, nextFire } from './cron.js';
import { ago, h, href, notice, put, statusEl, time, timeEl } from './dom.js';

const AT_ONCE = 4;

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
  // The list says each pipeline's schedule and last runs (a server that does not is asked
  // row by row below).
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
    return { p, tr, cells, loaded: false, last: undefined };
  });
  tbody.append(...items.map((i) => i.tr));

  function applyFilter() {
    const q = filter.value.trim().toLowerCase();
    const st = statusFilter.value;
    let shown = 0;
    for (const i of items) {
      const ok = (!q || i.p.name.toLowerCase().includes(q)) && (!st || (i.loaded && (i.last || 'none') === st));
      i.tr.hidden = !ok;
      if (ok) shown++;
    }
    count.textContent = `${shown} of ${items.length} pipeline${items.length === 1 ? '' : 's'}`;
    if (st) items.filter((i) => !i.loaded).forEach(queue);
  }
  filter.addEventListener('input', applyFilter);
  statusFilter.addEventListener('change', applyFilter);
  applyFilter();
  if (!items.length) main.append(notice('info', 'No pipelines yet.'));

  // Details, a few requests at a time, for the rows that are in view.
  const waiting = [];
  let running = 0;
  function queue(item) {
    if (item.queued) return;
    item.queued = true;
    waiting.push(item);
    pump();
  }
  function pump() {
    while (running < AT_ONCE && waiting.length && !ctx.signal.aborted) {
      const item = waiting.shift();
      running++;
      details(item).finally(() => {
        running--;
        pump();
      });
    }
  }
  function fill(item, schedule, runs) {
    const { cells } = item;
    if (schedule) {
      const tz = schedule.timezone || 'UTC';
      put(cells.schedule, h('span', { title: `${schedule.cron} (${tz})` }, cronWords(schedule.cron)), tz !== 'UTC' ? h('span', { class: 'muted' }, ` (${tz})`) : null);
      cells.schedule.className = '';
      const next = schedule.next_fire_at !== undefined ? schedule.next_fire_at : nextFire(schedule.cron, tz);
      put(cells.next, next ? h('time', { datetime: new Date(next).toISOString(), title: ago(next) }, time(next)) : '');
    } else {
      put(cells.schedule, 'on demand');
    }
    item.last = runs.length ? runs[0].status : null;
    put(cells.last, runs.length ? h('a', { href: href('runs', runs[0].id) }, statusEl(runs[0].status)) : h('span', { class: 'muted' }, 'never run'));
    put(cells.strip, runs.length ? strip(runs) : '');
    item.loaded = true;
    item.queued = true;
    item.tr.dataset.loaded = '1';
  }
  const listed = rows.length > 0 && Array.isArray(rows[0].recent_runs) && 'schedule' in rows[0];
  if (listed) items.forEach((i) => fill(i, i.p.schedule, i.p.recent_runs));

  async function details(item) {
    const { p, cells } = item;
    try {
      const [shown, runs] = await Promise.all([
        get(path`/v1/pipelines/${p.name}`, { signal: ctx.signal }),
        get(path`/v1/pipelines/${p.name}/runs?limit=20`, { signal: ctx.signal }),
      ]);
      const schedule = shown.latest && shown.latest.definition && shown.latest.definition.schedule;
      if (schedule) {
        const tz = schedule.timezone || 'UTC';
        put(cells.schedule, h('span', { title: `${schedule.cron} (${tz})` }, cronWords(schedule.cron)), tz !== 'UTC' ? h('span', { class: 'muted' }, ` (${tz})`) : null);
        cells.schedule.className = '';
        const next = nextFire(schedule.cron, tz);
        put(cells.next, next ? h('time', { datetime: new Date(next).toISOString(), title: ago(next) }, time(next)) : '');
      } else {
        put(cells.schedule, 'on demand');
      }
      item.last = runs.length ? runs[0].status : null;
      put(cells.last, runs.length ? h('a', { href: href('runs', runs[0].id) }, statusEl(runs[0].status)) : h('span', { class: 'muted' }, 'never run'));
      put(cells.strip, runs.length ? strip(runs) : '');
    } catch (e) {
      if (e.name === 'AbortError') return;
      put(cells.schedule, h('span', { class: 'error-text' }, e.message));
    }
    item.loaded = true;
    item.tr.dataset.loaded = '1';
    if (statusFilter.value) applyFilter();
  }
  const byRow = new Map(items.map((i) => [i.tr, i]));
  const seen = new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      seen.unobserve(e.target);
      const item = byRow.get(e.target);
      if (item) queue(item);
    }
  }, { rootMargin: '200px' });
  if (!listed) items.forEach((i) => seen.observe(i.tr));
  if (listed && statusFilter.value) applyFilter();
  return () => {
    seen.disconnect();
    waiting.length = 0;
  };
}
