// The editor: the pipeline's YAML in a textarea with a line-number gutter, checked against the
// server's own validation as you type (each problem at its line and column, with the API's
// text; a click on one puts the cursor there), a live graph of the steps, and Save (a new
// version), refused while the definition does not validate.
import { api, get, path } from './api.js';
import { dagView } from './dag.js';
import { debounce, h, href, notice, put } from './dom.js';
import { toYaml } from './yaml.js';

const CHECK = '/v1/pipeline-check';

export const TEMPLATE = `name: my-pipeline
description: 20 generated orders; the paid ones are written to the run's log.
steps:
  - id: orders
    plugin: generator@latest
    config: { count: 20, seed: 7 }
  - id: paid
    plugin: json-filter@latest
    input: orders
    config: { field: status, equals: paid }
  - id: show
    plugin: log-sink@latest
    input: paid
`;

/** Problems of a message the API gave without places: `line L, column C: ...` where it says. */
function problemsOf(message) {
  return String(message).split('; ').map((m) => {
    const at = /^line (\d+), column (\d+): /.exec(m);
    return { message: m, line: at ? Number(at[1]) : null, column: at ? Number(at[2]) : null };
  });
}

export async function render(main, params, ctx) {
  const name = params[0] || null;
  ctx.title(name ? `Edit ${name}` : 'New pipeline');
  let text = TEMPLATE;
  if (name) {
    const shown = await get(path`/v1/pipelines/${name}`, { signal: ctx.signal });
    text = toYaml(shown.latest.definition);
  }
  let checkedText = null;
  let valid = false;
  let checking = 0;
  let lastGood = null;

  const area = h('textarea', {
    id: 'editor-text', class: 'code-input', spellcheck: 'false', autocapitalize: 'none', autocomplete: 'off', wrap: 'off',
    'aria-describedby': 'editor-help problems-summary',
  });
  area.value = text;
  const gutter = h('div', { class: 'gutter', 'aria-hidden': 'true' });
  const status = h('p', { id: 'problems-summary', class: 'check-status', 'aria-live': 'polite' });
  const problemsList = h('ol', { id: 'problems', class: 'problems' });
  const saveMessage = h('div', { id: 'save-message', 'aria-live': 'assertive' });
  const preview = h('div', { id: 'preview' });
  const save = h('button', { type: 'submit', class: 'btn btn-primary', id: 'save', disabled: true }, name ? 'Save new version' : 'Create pipeline');

  let marks = new Map();
  const drawGutter = () => {
    const count = area.value.split('\n').length;
    const frag = document.createDocumentFragment();
    for (let i = 1; i <= count; i++) {
      const bad = marks.get(i);
      frag.append(h('div', { class: bad ? 'gl bad' : 'gl', title: bad || undefined }, bad ? `● ${i}` : String(i)));
    }
    gutter.replaceChildren(frag);
    gutter.scrollTop = area.scrollTop;
  };
  area.addEventListener('scroll', () => { gutter.scrollTop = area.scrollTop; });

  const goTo = (line, column) => {
    const lines = area.value.split('\n');
    const l = Math.min(Math.max(1, line), lines.length);
    let offset = 0;
    for (let i = 0; i < l - 1; i++) offset += lines[i].length + 1;
    offset += Math.min(Math.max(0, (column || 1) - 1), lines[l - 1].length);
    area.focus();
    area.setSelectionRange(offset, offset);
    const lh = parseFloat(getComputedStyle(area).lineHeight) || 20;
    const top = (l - 1) * lh;
    if (top < area.scrollTop || top > area.scrollTop + area.clientHeight - lh * 2) area.scrollTop = Math.max(0, top - area.clientHeight / 3);
  };

  const showProblems = (problems) => {
    marks = new Map();
    for (const p of problems) {
      if (p.line) marks.set(p.line, marks.has(p.line) ? `${marks.get(p.line)}\n${p.message}` : p.message);
    }
    put(problemsList, problems.map((p) => h('li', {},
      h('button', {
        type: 'button', class: 'problem', dataset: { line: p.line || '', column: p.column || '' },
        onclick: () => (p.line ? goTo(p.line, p.column) : area.focus()),
      },
      h('span', { class: 'at' }, p.line ? `line ${p.line}${p.column ? `:${p.column}` : ''}` : 'whole file'),
      h('span', { class: 'msg' }, p.message)))));
    drawGutter();
  };

  const showPreview = (pipeline, pins, stale) => {
    if (!pipeline) return;
    const pinMap = Object.fromEntries((pins || []).map((p) => [p.step, p.digest]));
    const g = dagView(pipeline.steps || [], pinMap, { label: 'Preview of the steps' });
    put(preview, stale ? h('p', { class: 'muted' }, 'As it was when it last validated:') : null, g.el);
  };

  const check = async () => {
    const body = area.value;
    const mine = ++checking;
    status.textContent = 'Checking…';
    status.className = 'check-status';
    let answer;
    try {
      const q = name ? `?name=${encodeURIComponent(name)}` : '';
      answer = await api('POST', CHECK + q, { body, type: 'application/yaml', signal: ctx.signal });
    } catch (e) {
      if (e.name === 'AbortError' || mine !== checking) return;
      // The check failed (the connection, say): saving still validates.
      status.textContent = `Cannot check as you type: ${e.message}`;
      status.className = 'check-status warn';
      valid = true;
      save.disabled = false;
      return;
    }
    if (mine !== checking) return;
    checkedText = body;
    valid = !!answer.valid;
    const problems = answer.problems || [];
    showProblems(problems);
    if (valid) {
      status.textContent = 'Valid: every step, reference and limit checks out.';
      status.className = 'check-status ok';
      lastGood = answer;
      showPreview(answer.pipeline, answer.pins, false);
    } else {
      status.textContent = `${problems.length} problem${problems.length === 1 ? '' : 's'}: fix ${problems.length === 1 ? 'it' : 'them'} to save.`;
      status.className = 'check-status bad';
      if (lastGood) showPreview(lastGood.pipeline, lastGood.pins, true);
    }
    save.disabled = !valid;
  };
  const later = debounce(check, 300);
  area.addEventListener('input', () => {
    save.disabled = true;
    valid = false;
    drawGutter();
    later();
  });
  area.addEventListener('keydown', (ev) => {
    if (ev.key === 'Tab' && !ev.shiftKey && !area.dataset.release) {
      ev.preventDefault();
      const { selectionStart: a, selectionEnd: b } = area;
      area.setRangeText('  ', a, b, 'end');
      area.dispatchEvent(new Event('input'));
    } else if (ev.key === 'Escape') {
      area.dataset.release = '1';
    } else if (ev.key !== 'Tab' && ev.key !== 'Shift') {
      delete area.dataset.release;
    }
    if (ev.key === 's' && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });
  area.addEventListener('blur', () => delete area.dataset.release);

  const form = h('form', { class: 'editor-form', id: 'editor' },
    h('label', { for: 'editor-text', class: 'editor-label' }, 'Definition (YAML)'),
    h('p', { id: 'editor-help', class: 'muted small' }, 'Tab indents; press Esc then Tab to leave the editor. Ctrl+S saves.'),
    h('div', { class: 'editor' }, gutter, area),
    h('div', { class: 'editor-actions' }, save, h('a', { class: 'btn', href: name ? href('pipelines', name) : '#/pipelines' }, 'Cancel')),
    saveMessage);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (save.disabled) return;
    if (checkedText !== area.value) {
      later.cancel();
      await check();
      if (!valid) return;
    }
    save.disabled = true;
    put(saveMessage, notice('info', 'Saving…'));
    try {
      const row = await api(name ? 'PUT' : 'POST', name ? path`/v1/pipelines/${name}` : '/v1/pipelines',
        { body: area.value, type: 'application/yaml' });
      sessionStorage.setItem('autoflow-flash', `Saved version ${row.version} of ${row.pipeline}.`);
      location.hash = href('pipelines', row.pipeline);
    } catch (e) {
      put(saveMessage, notice('error', e.message));
      if (e.status === 422) {
        showProblems(problemsOf(e.message));
        status.textContent = 'The server refused it: see the problems.';
        status.className = 'check-status bad';
      }
      save.disabled = false;
    }
  });

  put(main,
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/pipelines' }, 'Pipelines'), ' / ',
      name ? [h('a', { href: href('pipelines', name) }, name), ' / edit'] : 'new'),
    h('h1', {}, name ? `Edit ${name}` : 'New pipeline'),
    h('div', { class: 'editor-layout' },
      h('div', { class: 'editor-main' }, form),
      h('aside', { class: 'editor-side', 'aria-label': 'Check and preview' },
        h('h2', {}, 'Check'), status, problemsList,
        h('h2', {}, 'Preview'), preview)));
  drawGutter();
  check();
  area.focus();
  area.setSelectionRange(0, 0);
  return () => later.cancel();
}
