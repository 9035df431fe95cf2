// The web UI's shell: the session, the header and the hash router. Each page is a module whose
// `render(main, params, ctx)` fills `main` and may return a function that stops what it started
// (event streams, timers) when the visitor leaves the page.
import { api, cookie, onSignedOut, setCsrf } from './js/api.js';
import { h, notice, put } from './js/dom.js';
import { signIn } from './js/signin.js';

const ROLES = ['viewer', 'editor', 'admin'];
const main = document.getElementById('main');
const header = document.getElementById('top');
let session = null;
let leave = null;
let controller = null;

/** Whether the signed-in user has at least `role`. */
export function can(role) {
  return session && ROLES.indexOf(session.role) >= ROLES.indexOf(role);
}

const routes = [
  [/^#\/pipelines\/?$/, () => import('./js/pipelines.js'), 'Pipelines'],
  [/^#\/new$/, () => import('./js/editor.js'), 'New pipeline'],
  [/^#\/pipelines\/([^/]+)\/edit$/, () => import('./js/editor.js'), 'Edit'],
  [/^#\/pipelines\/([^/]+)$/, () => import('./js/pipeline.js'), 'Pipeline'],
  [/^#\/runs\/([^/]+)$/, () => import('./js/run.js'), 'Run'],
  [/^#\/plugins\/?$/, () => import('./js/plugins.js'), 'Plugins'],
  [/^#\/workers\/?$/, () => import('./js/workers.js'), 'Workers'],
  [/^#\/audit\/?$/, () => import('./js/audit.js'), 'Audit log'],
  [/^#\/admin\/?$/, () => import('./js/admin.js'), 'People and keys'],
];

function navLink(target, text, section) {
  return h('li', {}, h('a', { href: target, dataset: { section } }, text));
}

function drawHeader() {
  if (!session) {
    header.hidden = true;
    return;
  }
  header.hidden = false;
  put(header,
    h('a', { class: 'brand', href: '#/pipelines' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, '◆'), 'Autoflow'),
    h('nav', { 'aria-label': 'Main' }, h('ul', {},
      navLink('#/pipelines', 'Pipelines', 'pipelines'),
      navLink('#/plugins', 'Plugins', 'plugins'),
      navLink('#/workers', 'Workers', 'workers'),
      can('admin') ? navLink('#/audit', 'Audit', 'audit') : null,
      can('admin') ? navLink('#/admin', 'People and keys', 'admin') : null)),
    h('div', { class: 'who' },
      h('span', { class: 'who-name', title: `role: ${session.role}` },
        h('strong', {}, session.user || session.token || '?'),
        ' · ', session.tenant || session.tenant_id || '', ' ',
        h('span', { class: 'role' }, session.role)),
      h('button', { type: 'button', class: 'btn btn-quiet', id: 'sign-out', onclick: signOut }, 'Sign out')));
}

function markNav() {
  const section = (location.hash.match(/^#\/(\w+)/) || [])[1] || 'pipelines';
  const current = section === 'new' || section === 'runs' ? 'pipelines' : section;
  for (const a of header.querySelectorAll('nav a')) {
    if (a.dataset.section === current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function route() {
  if (leave) {
    try { leave(); } catch { /* a page's clean-up must not stop the next page */ }
    leave = null;
  }
  if (controller) controller.abort();
  controller = new AbortController();
  if (!session) return;
  if (!location.hash || location.hash === '#' || location.hash === '#/') {
    location.replace('#/pipelines');
    return;
  }
  markNav();
  delete main.dataset.ready;
  const found = routes.find(([re]) => re.test(location.hash));
  main.setAttribute('aria-busy', 'true');
  if (!found) {
    put(main, h('h1', {}, 'Not found'), notice('error', `There is no page ${location.hash}.`), h('p', {}, h('a', { href: '#/pipelines' }, 'Go to the pipelines')));
    main.removeAttribute('aria-busy');
    return;
  }
  const [re, load, title] = found;
  const params = location.hash.match(re).slice(1).map(decodeURIComponent);
  const signal = controller.signal;
  document.title = `${title} · Autoflow`;
  try {
    const mod = await load();
    if (signal.aborted) return;
    const ctx = { session, can, signal, title: (t) => { document.title = `${t} · Autoflow`; } };
    const cleanup = await mod.render(main, params, ctx);
    if (signal.aborted) {
      if (typeof cleanup === 'function') cleanup();
      return;
    }
    leave = typeof cleanup === 'function' ? cleanup : null;
    // Which page is drawn, for scripts (and tests) that wait for it.
    main.dataset.ready = location.hash;
  } catch (e) {
    if (e.name === 'AbortError' || signal.aborted) return;
    if (e.status === 401) return;
    console.error(e);
    put(main, h('h1', {}, title), notice('error', e.message || String(e)));
    main.dataset.ready = location.hash;
  } finally {
    if (!signal.aborted) main.removeAttribute('aria-busy');
  }
  if (!signal.aborted && document.activeElement === document.body) main.focus({ preventScroll: true });
}

function showSignIn(note) {
  session = null;
  if (leave) {
    try { leave(); } catch { /* ignore */ }
    leave = null;
  }
  drawHeader();
  document.title = 'Sign in · Autoflow';
  signIn(main, note, (answer) => {
    setCsrf(answer.csrf_token);
    session = answer;
    drawHeader();
    route();
  });
}

async function signOut() {
  // Stop the page first: its requests in flight would answer 401 once the session is gone.
  session = null;
  if (controller) controller.abort();
  try {
    await api('POST', '/v1/logout', { quiet: true });
  } catch { /* signed out anyway: the cookies are dropped below */ }
  setCsrf(null);
  showSignIn('You are signed out.');
}

onSignedOut(() => {
  if (session) showSignIn('Your session has ended: sign in again.');
});

async function start() {
  document.getElementById('skip').addEventListener('click', () => main.focus());
  window.addEventListener('hashchange', route);
  // Without the CSRF cookie there is no session either: ask nothing (a request without
  // credentials counts as a failed authentication of this address).
  if (!cookie('autoflow_csrf')) {
    showSignIn();
    return;
  }
  try {
    const who = await api('GET', '/v1/session', { quiet: true });
    setCsrf(who.csrf_token);
    session = who;
    drawHeader();
    route();
  } catch (e) {
    if (e.status === 401) showSignIn();
    else put(main, h('h1', {}, 'Autoflow'), notice('error', e.message));
  }
}

start();
