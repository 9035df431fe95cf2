// The plugin registry: name, version, digest, world, size; upload of a component by file
// input or drag and drop, with the server's answer (its refusal, when it refuses).
import { api, get } from './api.js';
import { bytes, digestEl, h, notice, put, timeEl } from './dom.js';

/** `json-filter-0.2.0.wasm` → {name: 'json-filter', version: '0.2.0'}; `x.wasm` → {name: 'x'}. */
function guess(fileName) {
  const base = fileName.replace(/\.wasm$/i, '').toLowerCase();
  const m = /^(.*?)[-_@]v?(\d+\.\d+\.\d+(?:[-+][\w.]+)?)$/.exec(base);
  const clean = (n) => n.replace(/[^a-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
  return m ? { name: clean(m[1]), version: m[2] } : { name: clean(base), version: '' };
}

/** The fields a plugin's config schema names, as a disabled form: what a step may set. */
function schemaPreview(text) {
  if (!text) return null;
  let schema;
  try {
    schema = JSON.parse(text);
  } catch {
    return null;
  }
  const props = Object.entries(schema.properties || {});
  if (!props.length) return null;
  const required = new Set(schema.required || []);
  const typeOf = (p) => (p.enum ? p.enum.join(' | ') : [].concat(p.type || (p.oneOf ? 'one of several' : 'any')).join(' | '));
  return h('details', { class: 'schema' },
    h('summary', {}, `config: ${props.length} field${props.length === 1 ? '' : 's'}`),
    h('dl', {}, props.map(([k, p]) => [
      h('dt', {}, h('code', {}, k), required.has(k) ? h('span', { class: 'tag' }, 'required') : null, ' ', h('span', { class: 'muted' }, typeOf(p)),
        p.default !== undefined ? h('span', { class: 'muted' }, ` = ${JSON.stringify(p.default)}`) : null),
      p.description ? h('dd', {}, p.description) : null,
    ])));
}

export async function render(main, _params, ctx) {
  const tbody = h('tbody', {});
  const note = h('div', {});
  const load = async () => {
    const rows = await get('/v1/plugins', { signal: ctx.signal });
    rows.sort((a, b) => a.name.localeCompare(b.name) || b.created_at - a.created_at);
    put(note, rows.length ? null : h('p', { class: 'muted' }, 'The registry is empty.'));
    put(tbody, rows.map((p) => h('tr', { dataset: { digest: p.digest, name: p.name } },
      h('th', { scope: 'row' }, p.name, p.builtin ? h('span', { class: 'tag' }, 'built-in') : null),
      h('td', {}, p.version),
      h('td', {}, p.kind),
      h('td', { class: 'num' }, bytes(p.size)),
      h('td', {}, digestEl(p.digest)),
      h('td', { class: 'desc' }, p.description || '', schemaPreview(p.config_schema)),
      h('td', {}, timeEl(p.created_at)))));
  };

  let upload = null;
  if (ctx.can('editor')) {
    const file = h('input', { type: 'file', id: 'plugin-file', accept: '.wasm,application/wasm' });
    const name = h('input', { id: 'plugin-name', required: true, pattern: '[a-z0-9][a-z0-9_-]{0,62}', autocomplete: 'off' });
    const version = h('input', { id: 'plugin-version', required: true, placeholder: '1.0.0', autocomplete: 'off' });
    const chosen = h('p', { class: 'muted', id: 'plugin-chosen' }, 'No file chosen.');
    const result = h('div', { id: 'upload-result', 'aria-live': 'assertive' });
    const send = h('button', { type: 'submit', class: 'btn btn-primary', id: 'upload' }, 'Upload');
    let picked = null;
    const pick = (f) => {
      picked = f;
      chosen.textContent = f ? `${f.name} (${bytes(f.size)})` : 'No file chosen.';
      if (f) {
        const g = guess(f.name);
        if (!name.value || name.dataset.guessed) {
          name.value = g.name;
          name.dataset.guessed = '1';
        }
        if (g.version && (!version.value || version.dataset.guessed)) {
          version.value = g.version;
          version.dataset.guessed = '1';
        }
      }
    };
    name.addEventListener('input', () => delete name.dataset.guessed);
    version.addEventListener('input', () => delete version.dataset.guessed);
    file.addEventListener('change', () => pick(file.files[0] || null));
    const drop = h('div', { class: 'drop', id: 'drop-zone' },
      h('p', {}, 'Drop a .wasm component here, or '),
      h('label', { for: 'plugin-file', class: 'btn btn-small' }, 'choose a file'), file, chosen);
    drop.addEventListener('dragover', (ev) => {
      ev.preventDefault();
      drop.classList.add('over');
    });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (ev) => {
      ev.preventDefault();
      drop.classList.remove('over');
      const f = ev.dataTransfer && ev.dataTransfer.files[0];
      if (f) pick(f);
    });
    upload = h('form', { class: 'upload', id: 'upload-form', novalidate: true },
      drop,
      h('div', { class: 'row' },
        h('div', { class: 'field' }, h('label', { for: 'plugin-name' }, 'Name'), name),
        h('div', { class: 'field' }, h('label', { for: 'plugin-version' }, 'Version'), version),
        h('div', { class: 'field field-end' }, send)),
      result);
    upload.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!picked) {
        put(result, notice('error', 'Choose a .wasm file first.'));
        return;
      }
      if (!name.value.trim() || !version.value.trim()) {
        put(result, notice('error', 'Give the plugin a name and a version (x.y.z).'));
        (name.value.trim() ? version : name).focus();
        return;
      }
      send.disabled = true;
      put(result, notice('info', `Uploading ${picked.name}; the server checks its world, its imports and what it describes…`));
      try {
        const q = `?name=${encodeURIComponent(name.value.trim())}&version=${encodeURIComponent(version.value.trim())}`;
        const r = await api('POST', `/v1/plugins${q}`, { body: picked, type: 'application/wasm', raw: true });
        const row = r.data;
        put(result, notice('success', r.status === 201
          ? `Added ${row.name}@${row.version} (${row.kind}), sha256:${row.digest.replace(/^sha256:/, '').slice(0, 12)}…`
          : `Already there: ${row.name}@${row.version} has these exact bytes.`));
        await load();
      } catch (e) {
        put(result, notice('error', `Refused: ${e.message}`));
      } finally {
        send.disabled = false;
      }
    });
  }

  put(main,
    h('h1', {}, 'Plugins'),
    upload ? h('section', { 'aria-labelledby': 'upload-h' }, h('h2', { id: 'upload-h' }, 'Upload a plugin'), upload) : null,
    h('section', { 'aria-labelledby': 'registry-h' },
      h('h2', { id: 'registry-h' }, 'Registry'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'list', id: 'plugins' },
        h('thead', {}, h('tr', {}, ['Name', 'Version', 'World', 'Size', 'Digest', 'Description', 'Added'].map((t) => h('th', { scope: 'col' }, t)))),
        tbody)),
      note));
  await load();
}
