// A run: its status, attempts and per-step counts, live while it runs (the log stream's
// `progress` events), the graph coloured by step status, the log streaming with level filters,
// the error and its failing step, dead letters with a replay button, and cancel. The stream
// reconnects by itself when the connection drops, from the last line it had.
import { ApiError, get, path, post } from './api.js';
import { dagView } from './dag.js';
import { bytes, digestEl, duration, h, href, notice, num, put, statusEl, time, timeEl } from './dom.js';

const COMPACT = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });
const compact = (n) => COMPACT.format(n || 0);
const FINAL = new Set(['succeeded', 'failed', 'cancelled']);
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];

export async function render(main, [id], ctx) {
  ctx.title(`Run ${id.slice(0, 8)}`);
  const signal = ctx.signal;
  let run = await get(path`/v1/runs/${id}`, { signal });
  let version = null;
  try {
    version = await get(path`/v1/pipelines/${run.pipeline}/versions/${run.version}`, { signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
  }
  const steps = (version && version.definition.steps) || [];
  const pins = Object.fromEntries(((version && version.plugins) || []).map((p) => [p.step, p.digest]));
  const graph = dagView(steps, pins, { label: 'Steps of this run' });
  let stopped = false;
  let es = null;
  let retry = null;
  let lastLog = 0;
  let lines = 0;
  let backoff = 1000;

  const statusBox = h('span', { id: 'run-status' });
  const conn = h('span', { id: 'stream-state', class: 'conn', 'aria-live': 'polite' });
  const times = h('dl', { class: 'facts' });
  const errorBox = h('div', { id: 'run-error' });
  const message = h('div', { 'aria-live': 'polite' });
  const cancel = h('button', { type: 'button', class: 'btn btn-danger', id: 'cancel', hidden: true }, 'Cancel run');
  const stepsBody = h('tbody', {});
  const attemptsBox = h('div', { id: 'attempts' });
  const lettersBox = h('div', { id: 'dead-letters' });
  const logBox = h('ol', { id: 'log', class: 'log', 'aria-label': 'Log lines' });
  const logCount = h('span', { id: 'log-count', class: 'muted' }, '0 lines');
  const follow = h('input', { type: 'checkbox', id: 'log-follow', checked: true });

  const setConn = (state, text) => {
    conn.className = `conn conn-${state}`;
    conn.textContent = text;
  };

  cancel.addEventListener('click', async () => {
    cancel.disabled = true;
    try {
      const r = await post(path`/v1/runs/${id}/cancel`, {});
      put(message, notice('info', r.status === 'cancelling' ? 'Cancel asked: the run stops at its worker\'s next heartbeat.' : 'Cancelled.'));
      refresh();
    } catch (e) {
      put(message, notice('error', e.message));
      cancel.disabled = false;
    }
  });

  // Per-step counts: the progress while it runs, the report once it ended.
  const drawSteps = () => {
    const report = run.report && Array.isArray(run.report.steps) ? run.report.steps : null;
    const progress = run.progress && Array.isArray(run.progress.steps) ? run.progress.steps : null;
    const final = FINAL.has(run.status);
    const source = (final && report) || progress || report || [];
    const byId = new Map(source.map((st) => [st.id, st]));
    const ids = steps.length ? steps.map((st) => st.id) : source.map((st) => st.id);
    const stats = {};
    put(stepsBody, ids.map((sid) => {
      const st = byId.get(sid);
      let stStatus = 'queued';
      if (st && st.outcome) stStatus = st.outcome;
      else if (final) stStatus = run.status === 'succeeded' ? 'succeeded' : run.status;
      else if (run.status === 'running') stStatus = 'running';
      const c = st || {};
      stats[sid] = { status: stStatus, text: st ? `in ${compact(c.records_in)} · out ${compact(c.records_out)}${c.rejected ? ` · rej ${compact(c.rejected)}` : ''}` : '', out: st ? compact(c.records_out) : undefined };
      return h('tr', { dataset: { step: sid } },
        h('th', { scope: 'row' }, sid),
        h('td', {}, statusEl(stStatus)),
        h('td', { class: 'num', dataset: { k: 'in' } }, st ? num(c.records_in) : ''),
        h('td', { class: 'num', dataset: { k: 'out' } }, st ? num(c.records_out) : ''),
        h('td', { class: 'num', dataset: { k: 'rejected' } }, st ? num(c.rejected) : ''),
        h('td', { class: 'num' }, st ? `${bytes(c.bytes_in)} / ${bytes(c.bytes_out)}` : ''),
        h('td', { class: 'num' }, st && c.busy_ms !== undefined ? duration(c.busy_ms) : ''),
        h('td', {}, digestEl(c.digest || pins[sid])),
        h('td', { class: 'err' }, c.error ? `${c.error.kind}: ${c.error.message}` : ''));
    }));
    graph.update(stats);
  };

  const drawHead = () => {
    put(statusBox, statusEl(run.status));
    cancel.hidden = FINAL.has(run.status) || !ctx.can('editor');
    const took = run.started_at && run.finished_at ? duration(run.finished_at - run.started_at) : run.started_at ? `${duration(Date.now() - run.started_at)} so far` : '';
    const fact = (label, ...value) => h('div', { class: 'fact' }, h('dt', {}, label), h('dd', {}, ...value));
    put(times,
      fact('Pipeline', h('a', { href: href('pipelines', run.pipeline) }, run.pipeline), ` v${run.version}`),
      fact('Queued', timeEl(run.created_at), run.created_by ? ` by ${run.created_by}` : ''),
      fact('Started', timeEl(run.started_at)),
      fact('Ended', timeEl(run.finished_at)),
      fact('Took', took || '—'),
      fact('Attempt', `${run.attempt} of ${run.max_attempts}`),
      fact('Trigger', run.trigger || ''),
      run.replay ? fact('Replay of', `dead letters of step ${run.replay.step || ''}`) : null,
      run.params && Object.keys(run.params).length
        ? fact('Parameters', h('span', { id: 'run-params' }, Object.entries(run.params)
          .map(([k, v], i) => [i ? ', ' : '', h('code', {}, `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)])))
        : null);
    const failing = run.report && Array.isArray(run.report.steps) ? run.report.steps.find((st) => st.outcome === 'failed' && st.error) : null;
    if (run.error || failing) {
      put(errorBox, h('div', { class: 'notice notice-error', role: 'alert' },
        h('strong', {}, 'The run failed'),
        failing ? h('p', {}, 'Step ', h('code', {}, failing.id), ` failed: ${failing.error.kind}: ${failing.error.message}`) : null,
        run.error && (!failing || !run.error.includes(failing.error.message)) ? h('p', {}, run.error) : null));
    } else {
      put(errorBox);
    }
  };

  const drawAttempts = async () => {
    try {
      const attempts = await get(path`/v1/runs/${id}/attempts`, { signal });
      put(attemptsBox, attempts.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'list' },
        h('thead', {}, h('tr', {}, ['Attempt', 'Worker', 'Started', 'Ended', 'Outcome', 'Error'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, attempts.map((a) => h('tr', {},
          h('th', { scope: 'row' }, a.attempt), h('td', {}, h('code', {}, a.worker)), h('td', {}, timeEl(a.started_at)),
          h('td', {}, timeEl(a.finished_at)), h('td', {}, statusEl(a.status)), h('td', { class: 'err' }, a.error || '')))))) : h('p', { class: 'muted' }, 'No attempt yet.'));
    } catch (e) {
      if (e.name !== 'AbortError') put(attemptsBox, notice('error', e.message));
    }
  };

  const through = h('input', { id: 'replay-plugin', placeholder: 'name@version or sha256:…', autocomplete: 'off' });
  const drawLetters = async () => {
    try {
      const letters = await get(path`/v1/runs/${id}/dead-letters`, { signal });
      if (!letters.length) {
        put(lettersBox, h('p', { class: 'muted' }, 'No dead letters.'));
        return;
      }
      const replayMsg = h('div', { id: 'replay-message', 'aria-live': 'assertive' });
      const replay = async (button, body) => {
        button.disabled = true;
        put(replayMsg);
        if (through.value.trim()) body.plugin = through.value.trim();
        try {
          const r = await post(path`/v1/pipelines/${run.pipeline}/dead-letters/replay`, body);
          location.hash = href('runs', r.id);
        } catch (e) {
          put(replayMsg, notice('error', e.message));
          button.disabled = false;
        }
      };
      const bySteps = [...new Set(letters.map((d) => d.step))];
      put(lettersBox,
        h('div', { class: 'toolbar' }, h('label', { for: 'replay-plugin' }, 'Replay through plugin (optional)'), through,
          ctx.can('editor') ? bySteps.map((st) => {
            const b = h('button', { type: 'button', class: 'btn btn-small', dataset: { replayStep: st } }, `Replay all of ${st}`);
            b.addEventListener('click', () => replay(b, { step: st, ids: letters.filter((d) => d.step === st && !d.replay_run).map((d) => d.id) }));
            return b;
          }) : null),
        replayMsg,
        h('p', { class: 'muted' }, `${letters.length}${letters.length >= 100 ? ' (the first 100)' : ''} rejected record${letters.length === 1 ? '' : 's'}`),
        h('div', { class: 'table-wrap scroll-box' }, h('table', { class: 'list', id: 'letters' },
          h('thead', {}, h('tr', {}, ['#', 'Step', 'Reason', 'Record', 'Plugin', 'Replayed', ''].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, letters.map((d) => {
            let b = null;
            if (ctx.can('editor') && !d.replay_run) {
              b = h('button', { type: 'button', class: 'btn btn-small', dataset: { replay: d.id } }, 'Replay');
              b.addEventListener('click', () => replay(b, { step: d.step, ids: [d.id] }));
            }
            return h('tr', {},
              h('th', { scope: 'row' }, d.id), h('td', {}, d.step), h('td', { class: 'err' }, d.reason),
              h('td', {}, h('code', { class: 'record' }, typeof d.value === 'string' ? d.value : JSON.stringify(d.value))),
              h('td', {}, digestEl(d.plugin)),
              h('td', {}, d.replay_run ? h('a', { href: href('runs', d.replay_run) }, d.replay_run.slice(0, 8)) : ''),
              h('td', {}, b));
          })))));
    } catch (e) {
      if (e.name !== 'AbortError') put(lettersBox, notice('error', e.message));
    }
  };

  // The log: lines are appended in batches, at most one every 120 ms and on an animation frame
  // (a long log then costs a few layouts, not one per line).
  let pending = [];
  let frame = 0;
  let lastFlush = 0;
  const flush = () => {
    const since = performance.now() - lastFlush;
    if (since < 120) {
      frame = setTimeout(() => { frame = requestAnimationFrame(flush); }, 120 - since);
      return;
    }
    lastFlush = performance.now();
    frame = 0;
    const atBottom = logBox.scrollHeight - logBox.scrollTop - logBox.clientHeight < 40;
    const frag = document.createDocumentFragment();
    for (const l of pending) {
      frag.append(h('li', { class: `lv-${l.level}`, dataset: { id: l.id } },
        h('span', { class: 'lt' }, time(l.at).slice(11)), h('span', { class: 'll' }, l.level),
        h('span', { class: 'ls' }, l.step || l.source), h('span', { class: 'lm' }, l.message)));
    }
    lines += pending.length;
    pending = [];
    logBox.append(frag);
    logCount.textContent = `${num(lines)} line${lines === 1 ? '' : 's'}`;
    if (follow.checked && (atBottom || lines < 200)) logBox.scrollTop = logBox.scrollHeight;
  };
  const addLine = (l) => {
    if (l.id <= lastLog) return;
    lastLog = l.id;
    pending.push(l);
    if (!frame) frame = requestAnimationFrame(flush);
  };

  const refresh = async () => {
    try {
      run = await get(path`/v1/runs/${id}`, { signal });
      drawHead();
      drawSteps();
    } catch (e) {
      if (e.name !== 'AbortError' && !(e instanceof ApiError && e.status === 401)) put(message, notice('error', e.message));
    }
  };

  const ended = async () => {
    setConn('ended', 'Stream ended');
    // The final report; asked again until it comes (the network may be down right now).
    for (let wait = 1000; !stopped; wait = Math.min(wait * 2, 15000)) {
      try {
        run = await get(path`/v1/runs/${id}`, { signal });
        break;
      } catch (e) {
        if (e.name === 'AbortError' || (e instanceof ApiError && e.status === 401)) return;
        put(message, notice('error', `${e.message}; trying again…`));
        await new Promise((r) => { retry = setTimeout(r, wait); });
      }
    }
    if (stopped) return;
    put(message);
    drawHead();
    drawSteps();
    drawAttempts();
    drawLetters();
  };

  const connect = () => {
    if (stopped) return;
    es = new EventSource(`${path`/v1/runs/${id}/logs`}?follow=true&after=${lastLog}`);
    setConn('connecting', 'Connecting…');
    es.addEventListener('open', () => {
      backoff = 1000;
      setConn('live', FINAL.has(run.status) ? 'Loading the log…' : 'Live');
    });
    es.addEventListener('log', (ev) => {
      try { addLine(JSON.parse(ev.data)); } catch { /* not a line */ }
    });
    es.addEventListener('progress', (ev) => {
      try {
        run.progress = JSON.parse(ev.data);
        if (run.status === 'queued') run.status = 'running';
        drawHead();
        drawSteps();
      } catch { /* not progress */ }
    });
    es.addEventListener('end', (ev) => {
      es.close();
      es = null;
      if (FINAL.has(ev.data)) {
        run.status = ev.data;
        drawHead();
      }
      ended();
    });
    es.addEventListener('error', (ev) => {
      if (ev.data !== undefined) {
        put(message, notice('error', `The log stream failed: ${ev.data}`));
      }
      if (es) es.close();
      es = null;
      if (stopped) return;
      setConn('reconnecting', `Connection lost: reconnecting in ${Math.round(backoff / 1000)} s…`);
      retry = setTimeout(async () => {
        // The session may have ended meanwhile: a plain request finds out (and signs out).
        await refresh();
        connect();
      }, backoff);
      backoff = Math.min(backoff * 2, 15000);
    });
  };

  const levelBoxes = LEVELS.map((lv) => {
    const box = h('input', { type: 'checkbox', id: `lv-${lv}`, checked: lv !== 'trace' });
    box.addEventListener('change', () => logBox.classList.toggle(`hide-${lv}`, !box.checked));
    if (lv === 'trace') logBox.classList.add('hide-trace');
    return h('label', { class: 'check', for: `lv-${lv}` }, box, lv);
  });

  put(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/pipelines' }, 'Pipelines'), ' / ',
      h('a', { href: href('pipelines', run.pipeline) }, run.pipeline), ' / run'),
    h('div', { class: 'page-head' },
      h('h1', {}, 'Run ', h('code', {}, id.slice(0, 12)), ' ', statusBox),
      h('div', { class: 'actions' }, conn, cancel)),
    message, errorBox, times,
    h('section', { 'aria-labelledby': 'steps-h' }, h('h2', { id: 'steps-h' }, 'Steps'), graph.el,
      h('div', { class: 'table-wrap' }, h('table', { class: 'list', id: 'steps' },
        h('thead', {}, h('tr', {}, ['Step', 'Status', 'In', 'Out', 'Rejected', 'Bytes in / out', 'Time', 'Plugin', 'Error'].map((t) => h('th', { scope: 'col' }, t)))),
        stepsBody))),
    h('section', { 'aria-labelledby': 'log-h' },
      h('div', { class: 'section-head' }, h('h2', { id: 'log-h' }, 'Log'), logCount),
      h('fieldset', { class: 'toolbar levels' }, h('legend', {}, 'Levels'), levelBoxes,
        h('label', { class: 'check', for: 'log-follow' }, follow, 'follow')),
      logBox),
    h('section', { 'aria-labelledby': 'attempts-h' }, h('h2', { id: 'attempts-h' }, 'Attempts'), attemptsBox),
    h('section', { 'aria-labelledby': 'letters-h' }, h('h2', { id: 'letters-h' }, 'Dead letters'), lettersBox));
  drawHead();
  drawSteps();
  drawAttempts();
  if (FINAL.has(run.status)) drawLetters();
  else put(lettersBox, h('p', { class: 'muted' }, 'Shown when the run ends.'));
  // An ended run's log comes in pages of 10,000 lines (quicker than as events); the stream then
  // only says it ended. A running one streams from its first line.
  const backlog = async () => {
    if (!FINAL.has(run.status)) return;
    setConn('connecting', 'Loading the log…');
    try {
      for (;;) {
        const r = await get(`${path`/v1/runs/${id}/logs`}?limit=10000&after=${lastLog}`, { signal, raw: true });
        r.data.forEach(addLine);
        if (!r.headers.get('Next-After') || stopped) break;
      }
    } catch (e) {
      if (e.name === 'AbortError') throw e;
    }
  };
  await backlog().catch(() => {});
  if (stopped || signal.aborted) return null;
  connect();
  const ticker = setInterval(() => { if (!FINAL.has(run.status)) drawHead(); }, 1000);
  return () => {
    stopped = true;
    clearInterval(ticker);
    clearTimeout(retry);
    if (frame) {
      cancelAnimationFrame(frame);
      clearTimeout(frame);
    }
    if (es) es.close();
  };
}
