// A pipeline: its graph, schedule, versions with a side-by-side diff between any two and a
// roll-back button, its runs with a status filter, and Trigger (with a field for each run
// parameter) and Edit.
import { get, path, post } from './api.js';
import { cronWords } from './cron.js';
import { dagView } from './dag.js';
import { diffTable } from './diff.js';
import { duration, h, href, notice, put, statusEl, timeEl } from './dom.js';
import { toYaml } from './yaml.js';

export async function render(main, [name], ctx) {
  ctx.title(name);
  const signal = ctx.signal;
  const [shown, versions] = await Promise.all([
    get(path`/v1/pipelines/${name}`, { signal }),
    get(path`/v1/pipelines/${name}/versions`, { signal }),
  ]);
  const latest = shown.latest;
  const def = (latest && latest.definition) || { steps: [] };
  const pins = Object.fromEntries(((latest && latest.plugins) || []).map((p) => [p.step, p.digest]));
  const message = h('div', { id: 'pipeline-message', 'aria-live': 'polite' });

  // Run parameters: one field per declared parameter, its default filled in; the server
  // checks the values (a 422 names the parameter).
  const params = Object.entries(def.params || {});
  const paramFields = params.map(([pname, spec]) => {
    const id = `param-${pname}`;
    const type = spec.type;
    const has = spec.default !== undefined && spec.default !== null;
    const input = type === 'boolean'
      ? h('input', { type: 'checkbox', id, name: pname, checked: has && spec.default === true })
      : h('input', {
        id, name: pname, required: !has,
        type: type === 'date' ? 'date' : (type === 'integer' || type === 'number') ? 'number' : 'text',
        step: type === 'integer' ? '1' : type === 'number' ? 'any' : undefined,
        value: has ? String(spec.default) : undefined,
      });
    const value = () => {
      if (type === 'boolean') return input.checked;
      if (input.value === '') return undefined;
      return (type === 'integer' || type === 'number') ? Number(input.value) : input.value;
    };
    return { pname, value, el: h('div', { class: 'field' },
      h('label', { for: id }, pname, ' ', h('span', { class: 'muted' }, type, has ? '' : ', required')),
      input,
      spec.description ? h('span', { class: 'muted' }, spec.description) : null) };
  });
  const paramsBox = params.length
    ? h('fieldset', { id: 'run-params', class: 'params' }, h('legend', {}, 'Run parameters'), paramFields.map((f) => f.el))
    : null;

  const trigger = h('button', { type: 'button', class: 'btn btn-primary', id: 'trigger' }, 'Trigger run');
  trigger.addEventListener('click', async () => {
    trigger.disabled = true;
    put(message);
    const body = {};
    if (paramFields.length) {
      body.params = {};
      for (const f of paramFields) {
        const v = f.value();
        if (v !== undefined) body.params[f.pname] = v;
      }
    }
    try {
      const r = await post(path`/v1/pipelines/${name}/runs`, body);
      location.hash = href('runs', r.id);
    } catch (e) {
      put(message, notice('error', e.message));
      trigger.disabled = false;
    }
  });

  const schedule = def.schedule;
  const next = shown.schedule ? shown.schedule.next_fire_at : null;
  const graph = dagView(def.steps || [], pins, { label: `Steps of ${name}` });

  // Versions and their diff.
  const texts = new Map();
  const textOf = async (v) => {
    if (!texts.has(v)) {
      texts.set(v, get(path`/v1/pipelines/${name}/versions/${v}`, { signal }).then((row) => toYaml(row.definition)));
    }
    return texts.get(v);
  };
  const list = [...versions.versions].sort((a, b) => b.version - a.version);
  const newest = list.length ? list[0].version : shown.latest_version;
  let pickA = list.length > 1 ? list[1].version : newest;
  let pickB = newest;
  const diffOut = h('div', { id: 'diff', 'aria-live': 'polite' });
  const unified = h('input', { type: 'checkbox', id: 'diff-unified', checked: window.matchMedia('(max-width: 760px)').matches });
  const showDiff = async () => {
    put(diffOut, h('p', { class: 'muted' }, 'Comparing…'));
    try {
      const [a, b] = await Promise.all([textOf(pickA), textOf(pickB)]);
      put(diffOut,
        h('div', { class: 'section-head' }, h('h3', {}, `Version ${pickA} → version ${pickB}`),
          h('label', { class: 'check', for: 'diff-unified' }, unified, 'unified')),
        diffTable(a, b, `version ${pickA}`, `version ${pickB}`, unified.checked));
    } catch (e) {
      if (e.name !== 'AbortError') put(diffOut, notice('error', e.message));
    }
  };
  unified.addEventListener('change', showDiff);
  const radio = (group, v, checked) => {
    const input = h('input', { type: 'radio', name: `diff-${group}`, value: v, id: `diff-${group}-${v}`, checked });
    input.addEventListener('change', () => {
      if (group === 'a') pickA = v;
      else pickB = v;
      showDiff();
    });
    return h('label', { class: 'radio', for: `diff-${group}-${v}` }, input, h('span', { class: 'sr-only' }, `compare ${group === 'a' ? 'from' : 'to'} version ${v}`));
  };
  const versionRows = list.map((v) => {
    let action = null;
    if (v.version !== newest && ctx.can('editor')) {
      action = h('button', { type: 'button', class: 'btn btn-small', dataset: { rollback: v.version } }, `Roll back to v${v.version}`);
      action.addEventListener('click', async () => {
        if (!confirm(`Make a new version of ${name} equal to version ${v.version}?`)) return;
        action.disabled = true;
        try {
          const made = await post(path`/v1/pipelines/${name}/rollback`, { version: v.version });
          sessionStorage.setItem('autoflow-flash', `Rolled back: version ${made.version} is version ${v.version} again.`);
          window.dispatchEvent(new HashChangeEvent('hashchange'));
        } catch (e) {
          put(message, notice('error', e.message));
          action.disabled = false;
        }
      });
    }
    return h('tr', { dataset: { version: v.version } },
      h('th', { scope: 'row' }, `v${v.version}`, v.version === newest ? h('span', { class: 'tag' }, 'current') : null),
      h('td', {}, timeEl(v.created_at)),
      h('td', {}, v.created_by || ''),
      h('td', { class: 'center' }, radio('a', v.version, v.version === pickA)),
      h('td', { class: 'center' }, radio('b', v.version, v.version === pickB)),
      h('td', {}, action));
  });

  // Runs, with a status filter.
  const runFilter = h('select', { id: 'run-status' }, h('option', { value: '' }, 'all'),
    ['queued', 'running', 'succeeded', 'failed', 'cancelled'].map((st) => h('option', { value: st }, st)));
  const runsBody = h('tbody', {});
  const runsNote = h('div', {});
  const loadRuns = async () => {
    const q = runFilter.value ? `&status=${encodeURIComponent(runFilter.value)}` : '';
    try {
      const runs = await get(`${path`/v1/pipelines/${name}/runs`}?limit=50${q}`, { signal });
      put(runsNote, runs.length ? null : h('p', { class: 'muted' }, 'No runs.'));
      put(runsBody, runs.map((r) => h('tr', {},
        h('th', { scope: 'row' }, h('a', { href: href('runs', r.id) }, h('code', {}, r.id.slice(0, 12)))),
        h('td', {}, statusEl(r.status)),
        h('td', { class: 'num' }, `v${r.version}`),
        h('td', {}, r.trigger || ''),
        h('td', {}, timeEl(r.created_at)),
        h('td', { class: 'num' }, r.started_at && r.finished_at ? duration(r.finished_at - r.started_at) : ''))));
    } catch (e) {
      if (e.name !== 'AbortError') put(runsNote, notice('error', e.message));
    }
  };
  runFilter.addEventListener('change', loadRuns);

  // Checkpoints: where each source resumes, and each step's state keys.
  const checkpointsBox = h('div', { id: 'checkpoints' });
  const loadCheckpoints = async () => {
    try {
      const list = await get(path`/v1/pipelines/${name}/checkpoints`, { signal });
      put(checkpointsBox, list.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'list' },
        h('thead', {}, h('tr', {}, ['Step', 'Cursor', 'State keys', 'Committed by', 'When'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, list.map((c) => h('tr', {},
          h('th', { scope: 'row' }, c.step), h('td', {}, c.cursor ? h('code', {}, c.cursor) : h('span', { class: 'muted' }, '—')),
          h('td', {}, Object.keys(c.state || {}).join(', ')),
          h('td', {}, c.run_id ? h('a', { href: href('runs', c.run_id) }, c.run_id.slice(0, 12)) : ''),
          h('td', {}, timeEl(c.updated_at)))))))
        : h('p', { class: 'muted' }, 'No checkpoint yet.'));
    } catch (e) {
      if (e.name !== 'AbortError') put(checkpointsBox, notice('error', e.message));
    }
  };

  const flash = sessionStorage.getItem('autoflow-flash');
  sessionStorage.removeItem('autoflow-flash');
  put(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/pipelines' }, 'Pipelines'), ' / ', name),
    h('div', { class: 'page-head' },
      h('h1', {}, name, ' ', h('span', { class: 'muted', id: 'current-version' }, `v${shown.latest_version}`)),
      h('div', { class: 'actions' },
        ctx.can('editor') ? trigger : null,
        ctx.can('editor') ? h('a', { class: 'btn', href: href('pipelines', name, 'edit'), id: 'edit' }, 'Edit') : null)),
    def.description ? h('p', { class: 'lead' }, def.description) : null,
    flash ? notice('success', flash) : null,
    ctx.can('editor') ? paramsBox : null,
    message,
    h('section', { 'aria-labelledby': 'graph-h' },
      h('h2', { id: 'graph-h' }, 'Steps'),
      h('p', { class: 'muted' }, schedule
        ? [`Runs ${cronWords(schedule.cron)} (${schedule.timezone || 'UTC'})`, next ? ['; next: ', timeEl(next)] : null, '.']
        : 'Runs on demand (no schedule).'),
      graph.el),
    h('section', { 'aria-labelledby': 'versions-h' },
      h('h2', { id: 'versions-h' }, 'Versions'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'list', id: 'versions' },
        h('thead', {}, h('tr', {}, ['Version', 'Made', 'By', 'From', 'To', ''].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, versionRows))),
      list.length > 1 ? diffOut : h('p', { class: 'muted' }, 'One version so far: nothing to compare.')),
    h('section', { 'aria-labelledby': 'runs-h' },
      h('div', { class: 'section-head' }, h('h2', { id: 'runs-h' }, 'Runs'),
        h('div', { class: 'toolbar' }, h('label', { for: 'run-status' }, 'Status'), runFilter)),
      h('div', { class: 'table-wrap' }, h('table', { class: 'list', id: 'runs' },
        h('thead', {}, h('tr', {}, ['Run', 'Status', 'Version', 'Trigger', 'Queued', 'Took'].map((t) => h('th', { scope: 'col' }, t)))),
        runsBody)),
      runsNote),
    h('section', { 'aria-labelledby': 'checkpoints-h' }, h('h2', { id: 'checkpoints-h' }, 'Checkpoints'), checkpointsBox));
  if (list.length > 1) showDiff();
  loadCheckpoints();
  await loadRuns();
  return null;
}
