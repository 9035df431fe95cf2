// The sign-in page: name and password (and the tenant, for a user of several), the server's
// message when it refuses (wrong password, too many attempts).
import { api } from './api.js';
import { h, notice, put } from './dom.js';

export function signIn(main, note, done) {
  const error = h('div', { id: 'signin-error', 'aria-live': 'assertive' });
  const name = h('input', { id: 'signin-name', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { id: 'signin-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const tenant = h('input', { id: 'signin-tenant', name: 'tenant', autocomplete: 'organization' });
  const tenantRow = h('div', { class: 'field', hidden: true }, h('label', { for: 'signin-tenant' }, 'Tenant'), tenant);
  const button = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Sign in');
  const form = h('form', { class: 'signin', 'aria-describedby': 'signin-error', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'signin-name' }, 'User name'), name),
    h('div', { class: 'field' }, h('label', { for: 'signin-password' }, 'Password'), password),
    tenantRow, error, button);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    put(error);
    if (!name.value.trim() || !password.value) {
      put(error, notice('error', 'Enter your user name and password.'));
      (name.value.trim() ? password : name).focus();
      return;
    }
    button.disabled = true;
    button.textContent = 'Signing in…';
    try {
      const body = { name: name.value.trim(), password: password.value };
      if (tenant.value.trim()) body.tenant = tenant.value.trim();
      const answer = await api('POST', '/v1/login', { json: body, quiet: true });
      done(answer);
    } catch (e) {
      let text = e.message;
      if (e.status === 429 && e.retryAfter) text = `${e.message}`;
      put(error, notice('error', text));
      if (/^tenant:/.test(e.message)) {
        tenantRow.hidden = false;
        tenant.focus();
      } else {
        password.select();
        password.focus();
      }
    } finally {
      button.disabled = false;
      button.textContent = 'Sign in';
    }
  });
  put(main,
    h('section', { class: 'signin-page' },
      h('div', { class: 'signin-card' },
        h('p', { class: 'brand brand-big' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, '◆'), 'Autoflow'),
        h('h1', {}, 'Sign in'),
        note ? notice('info', note) : null,
        form)));
  name.focus();
}
