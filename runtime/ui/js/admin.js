// The tenant's people and keys (admins): users with their role here (add, change the role,
// disable), API tokens (create, shown once; revoke) and secrets (names only; set, delete).
// Every change goes through the API, and the server's refusal is shown at the form it is about.
import { api, get, path } from './api.js';
import { h, notice, put, timeEl } from './dom.js';

const ROLES = ['viewer', 'editor', 'admin'];

function roleSelect(id, value) {
  return h('select', { id }, ROLES.map((r) => h('option', { value: r, selected: r === value }, r)));
}

function field(label, input) {
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input);
}

/** A form whose submit runs `send`; its message box says what the server answered. */
function form(id, fields, button, send) {
  const result = h('div', { id: `${id}-result`, 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', id: `${id}-submit` }, button);
  const el = h('form', { id, novalidate: true },
    h('div', { class: 'row' }, fields, h('div', { class: 'field field-end' }, submit)), result);
  el.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    put(result);
    try {
      const shown = await send();
      if (shown) put(result, shown);
    } catch (e) {
      put(result, notice('error', e.message));
    } finally {
      submit.disabled = false;
    }
  });
  return el;
}

/** A click handler that runs `fn` and shows its failure in `where`. */
function guarded(fn, where) {
  return async () => {
    put(where);
    try {
      await fn();
    } catch (e) {
      put(where, h('span', { class: 'error-text' }, e.message));
    }
  };
}

function table(id, heads, rows, empty) {
  if (!rows.length) return h('p', { class: 'muted', id }, empty);
  return h('div', { class: 'table-wrap' }, h('table', { class: 'list', id },
    h('thead', {}, h('tr', {}, heads.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows)));
}

async function users(box, ctx, redraw) {
  const list = await get('/v1/users', { signal: ctx.signal });
  const rows = list.map((u) => {
    const here = (u.roles || [])[0];
    const select = roleSelect(`role-of-${u.name}`, here && here.role);
    const message = h('span', { class: 'cell-note', 'aria-live': 'polite' });
    select.setAttribute('aria-label', `Role of ${u.name}`);
    select.addEventListener('change', guarded(async () => {
      await api('PUT', path`/v1/users/${u.name}/role`, { json: { role: select.value } });
      put(message, 'saved');
    }, message));
    const me = ctx.session && ctx.session.user === u.name;
    const disable = u.disabled_at || me ? null : h('button', {
      type: 'button', class: 'btn btn-danger', 'aria-label': `Disable user ${u.name}`, onclick: guarded(async () => {
        await api('POST', path`/v1/users/${u.name}/disable`);
        await redraw();
      }, message),
    }, 'Disable');
    return h('tr', { dataset: { name: u.name } },
      h('th', { scope: 'row' }, u.name),
      h('td', {}, u.disabled_at ? h('span', { class: 'status st-failed' }, 'disabled') : 'enabled'),
      h('td', {}, select, ' ', message),
      h('td', {}, timeEl(u.created_at)),
      h('td', {}, disable));
  });
  const name = h('input', { id: 'user-name', autocomplete: 'off', required: true });
  const password = h('input', { id: 'user-password', type: 'password', autocomplete: 'new-password', required: true });
  const role = roleSelect('user-role', 'viewer');
  put(box,
    h('h2', { id: 'users-h' }, 'Users'),
    table('users', ['Name', 'State', 'Role here', 'Added', ''], rows, 'No user has a role in this tenant.'),
    form('user-form', [field('Name', name), field('Password (12 characters or more)', password), field('Role', role)], 'Add user', async () => {
      await api('POST', '/v1/users', { json: { name: name.value.trim(), password: password.value, role: role.value } });
      await redraw();
    }));
}

async function tokens(box, ctx, redraw, made) {
  const list = await get('/v1/tokens', { signal: ctx.signal });
  const rows = list.map((t) => {
    const message = h('span', { class: 'cell-note', 'aria-live': 'polite' });
    return h('tr', { dataset: { id: t.id } },
      h('th', { scope: 'row' }, h('code', {}, t.id)),
      h('td', {}, t.name), h('td', {}, t.role),
      h('td', {}, t.scopes ? t.scopes.join(' ') : 'all'),
      h('td', {}, t.user ? `user ${t.user}` : t.service_account ? `service account ${t.service_account}` : '—'),
      h('td', {}, timeEl(t.created_at)),
      h('td', {}, t.expires_at ? timeEl(t.expires_at) : 'never'),
      h('td', {}, t.revoked_at ? h('span', { class: 'status st-failed' }, 'revoked') : h('button', {
        type: 'button', class: 'btn btn-danger', 'aria-label': `Revoke token ${t.name}`, onclick: guarded(async () => {
          await api('DELETE', path`/v1/tokens/${t.id}`);
          await redraw();
        }, message),
      }, 'Revoke'), ' ', message));
  });
  const name = h('input', { id: 'token-name', autocomplete: 'off', required: true });
  const role = roleSelect('token-role', 'editor');
  const days = h('input', { id: 'token-days', type: 'number', min: '1', placeholder: 'never' });
  // Scopes as RESOURCE:ACTION words (x-autoflow-scope in /openapi.json); empty: all.
  const scopes = h('input', { id: 'token-scopes', autocomplete: 'off', placeholder: 'all (or e.g. runs:trigger pipelines:read)' });
  const account = h('input', { id: 'token-account', autocomplete: 'off', placeholder: 'none: the token is yours' });
  // A token just made is shown here this once (the server keeps only its hash).
  const shown = h('div', { id: 'token-shown' }, made
    ? [notice('success', `Token ${made.info.name}, shown this once: copy it now.`), h('pre', { class: 'secret', id: 'token-text' }, made.token)]
    : null);
  put(box,
    h('h2', { id: 'tokens-h' }, 'API tokens'),
    table('tokens', ['Id', 'Name', 'Role', 'Scopes', 'Owner', 'Created', 'Expires', ''], rows, 'No token.'),
    form('token-form', [field('Name', name), field('Role', role), field('Expires in days', days), field('Scopes', scopes), field('Service account', account)], 'Create token', async () => {
      const d = days.value.trim();
      const words = scopes.value.split(/[\s,]+/).filter(Boolean);
      const r = await api('POST', '/v1/tokens', { json: {
        name: name.value.trim(), role: role.value, expires_in_secs: d ? Math.round(Number(d) * 86400) : null,
        scopes: words.length ? words : null, service_account: account.value.trim() || null,
      } });
      await redraw(r);
    }),
    shown);
}

async function secrets(box, ctx, redraw) {
  const list = await get('/v1/secrets', { signal: ctx.signal });
  const rows = list.map((s) => {
    const message = h('span', { class: 'cell-note', 'aria-live': 'polite' });
    return h('tr', { dataset: { name: s.name } },
      h('th', { scope: 'row' }, h('code', {}, s.name)),
      h('td', {}, timeEl(s.updated_at)), h('td', {}, s.updated_by || ''),
      h('td', {}, h('button', {
        type: 'button', class: 'btn btn-danger', 'aria-label': `Delete secret ${s.name}`, onclick: guarded(async () => {
          await api('DELETE', path`/v1/secrets/${s.name}`);
          await redraw();
        }, message),
      }, 'Delete'), ' ', message));
  });
  const name = h('input', { id: 'secret-name', autocomplete: 'off', required: true });
  const value = h('input', { id: 'secret-value', type: 'password', autocomplete: 'off', required: true });
  put(box,
    h('h2', { id: 'secrets-h' }, 'Secrets'),
    h('p', { class: 'muted' }, 'Values are stored encrypted and never shown again; steps are granted them by name.'),
    table('secrets', ['Name', 'Set', 'By', ''], rows, 'No secret.'),
    form('secret-form', [field('Name', name), field('Value', value)], 'Set secret', async () => {
      await api('PUT', path`/v1/secrets/${name.value.trim()}`, { json: { value: value.value } });
      value.value = '';
      await redraw();
    }));
}

export async function render(main, _params, ctx) {
  const parts = [[users, 'users-box'], [tokens, 'tokens-box'], [secrets, 'secrets-box']];
  const boxes = parts.map(([, id]) => h('section', { id }));
  put(main, h('h1', {}, 'People and keys'), boxes);
  await Promise.all(parts.map(([draw], i) => {
    const redraw = (made) => draw(boxes[i], ctx, redraw, made).catch((e) => put(boxes[i], notice('error', e.message)));
    return draw(boxes[i], ctx, redraw);
  }));
}
