// The web UI in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core),
// against a real `autoflow server` on loopback: sign in (a wrong password first), write a
// pipeline in the editor with a typo, see the error at its line, fix it, save; trigger it and
// watch the run's step counts and log lines arrive live; a second version and the diff between
// the two; roll back; replay a dead letter; run parameters asked for and shown; upload a plugin and have a non-component refused;
// users, tokens and secrets on the admin page; the pages at phone width and in dark mode. Every step waits on a condition with a deadline.
// Screenshots go to $UI_OUT; the figures (paint and interactive times, page weight) are printed.
//
// Environment: AUTOFLOW_URL, UI_USER, UI_PASSWORD, UI_OUT, UI_PLUGIN_WASM (a component to
// upload), UI_MANY (pipelines to create for the list's figures; default 500), UI_LOG_LINES
// (lines of the long-log run; default 10000), CHROMIUM (default /usr/bin/chromium).
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) fail(`environment variable ${k} is not set`);
  return v;
};
function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

const URL = env('AUTOFLOW_URL').replace(/\/$/, '');
const USER = env('UI_USER');
const PASSWORD = env('UI_PASSWORD');
const OUT = env('UI_OUT');
const WASM = env('UI_PLUGIN_WASM');
const MANY = Number(env('UI_MANY', '500'));
const LOG_LINES = Number(env('UI_LOG_LINES', '10000'));
const T = 30_000; // deadline of one wait
const RUN_T = 180_000; // deadline of a run
mkdirSync(OUT, { recursive: true });
const here = dirname(fileURLToPath(import.meta.url));
const uiDir = join(here, '..', '..', 'runtime', 'ui');

const NAME = 'ui-orders';
// Many records through a sample (few log lines, few dead letters), a schema that rejects the
// unpaid orders (dead letters), and the run's log. `confg` is the typo (line 14).
const GOOD = `name: ${NAME}
description: Generated orders, a sample of them checked; the paid ones logged.
steps:
  - id: orders
    plugin: generator@latest
    config: { count: 1500000, seed: 7 }
  - id: some
    plugin: sample@latest
    input: orders
    config: { rate: 0.0002 }
  - id: paid
    plugin: json-schema@latest
    input: some
    config: { schema: { properties: { status: { const: paid } } } }
  - id: show
    plugin: log-sink@latest
    input: paid
    config: { prefix: "paid order: " }
`;
const TYPO_LINE = 14;
const TYPO = GOOD.replace('    config: { schema:', '    confg: { schema:');

let shot = 0;
let page;
async function snap(name) {
  shot++;
  const file = join(OUT, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

const timings = [];
async function step(name, fn) {
  const t0 = Date.now();
  process.stdout.write(`- ${name} ... `);
  try {
    await fn();
  } catch (e) {
    console.log('FAILED');
    try {
      await page.screenshot({ path: join(OUT, `FAILED-${name.replace(/\W+/g, '-')}.png`), fullPage: true });
    } catch { /* the page may be gone */ }
    fail(`${name}: ${e.message.split('\n').slice(0, 6).join('\n')}`);
  }
  const took = Date.now() - t0;
  timings.push([name, took]);
  console.log(`ok (${took} ms)`);
}

/** Waits until the text of `selector` matches `re`. */
async function textMatches(selector, re, timeout = T) {
  await page.waitForFunction(([s, src, flags]) => {
    const el = document.querySelector(s);
    return el && new RegExp(src, flags).test(el.textContent);
  }, [selector, re.source, re.flags], { timeout, polling: 50 });
}

/** Waits until the page of the URL's hash is drawn (the router marks it on <main>). */
async function ready(timeout = T, p = page) {
  await p.waitForFunction(() => document.getElementById('main').dataset.ready === location.hash, null, { timeout, polling: 50 });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
page = await context.newPage();
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(e.message));
// Answers the UI expects (401 of a wrong password, 400 of a refused upload, the stream cut
// offline) are logged by Chromium as console errors: only other console errors count.
page.on('console', (m) => {
  if (m.type() === 'error' && !/Failed to load resource|net::ERR_|EventSource/.test(m.text())) pageErrors.push(`console: ${m.text()}`);
});
page.on('dialog', (d) => d.accept());
let runId = null;

await step('a visitor gets the sign-in page', async () => {
  await page.goto(`${URL}/`);
  await page.locator('#signin-name').waitFor({ timeout: T });
  if (await page.locator('#top').isVisible()) throw new Error('the header shows before signing in');
  await snap('signin');
});

await step('a wrong password shows the server\'s message', async () => {
  await page.fill('#signin-name', USER);
  await page.fill('#signin-password', 'not the password');
  await page.click('form.signin button[type=submit]');
  await textMatches('#signin-error', /wrong name or password/);
  await snap('signin-wrong-password');
});

await step('signing in with the keyboard shows the pipelines', async () => {
  await page.fill('#signin-password', '');
  await page.focus('#signin-password');
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press('Enter');
  await page.locator('#sign-out').waitFor({ timeout: T });
  await ready();
  await textMatches('#top .who', new RegExp(USER));
  await page.locator('#pipelines tr[data-name="demo"]').waitFor({ timeout: T });
  await snap('pipelines');
});

await step('the editor shows a typo at its line', async () => {
  await page.click('#new-pipeline');
  await ready();
  await page.fill('#editor-text', TYPO);
  await textMatches('#problems-summary', /problem/);
  const problem = page.locator(`#problems button.problem[data-line="${TYPO_LINE}"]`);
  await problem.waitFor({ timeout: T });
  const text = await problem.textContent();
  if (!/confg/.test(text)) throw new Error(`the problem does not name the unknown field: ${text}`);
  await page.locator('.gutter .gl.bad').filter({ hasText: String(TYPO_LINE) }).waitFor({ timeout: T });
  if (!(await page.locator('#save').isDisabled())) throw new Error('Save is enabled while the definition is invalid');
  await problem.click();
  const at = await page.evaluate(() => {
    const a = document.getElementById('editor-text');
    return a.value.slice(0, a.selectionStart).split('\n').length;
  });
  if (at !== TYPO_LINE) throw new Error(`clicking the problem put the cursor on line ${at}, not ${TYPO_LINE}`);
  await snap('editor-typo');
});

await step('fixing it validates and previews the graph; saving makes the pipeline', async () => {
  // Retype the line's start with the keyboard, where the cursor is.
  await page.evaluate((line) => {
    const a = document.getElementById('editor-text');
    const lines = a.value.split('\n');
    const start = lines.slice(0, line - 1).join('\n').length + 1;
    a.setSelectionRange(start, start + '    confg'.length);
  }, TYPO_LINE);
  await page.keyboard.type('    config');
  await textMatches('#problems-summary', /^Valid/);
  await page.locator('#preview svg.dag g.node').nth(3).waitFor({ timeout: T });
  if ((await page.inputValue('#editor-text')) !== GOOD) throw new Error('the fixed text is not the expected one');
  await snap('editor-valid');
  await page.click('#save');
  await page.waitForURL(`**/#/pipelines/${NAME}`, { timeout: T });
  await ready();
  await page.locator('.dag g.node[data-step="paid"]').waitFor({ timeout: T });
  await textMatches('#current-version', /v1/);
  await snap('pipeline-v1');
});

await step('trigger: the run page shows counts and log lines arrive live, then succeeded', async () => {
  await page.click('#trigger');
  await page.waitForURL('**/#/runs/*', { timeout: T });
  await ready();
  runId = decodeURIComponent(page.url().split('#/runs/')[1]);
  await page.evaluate(() => { window.__sameDocument = true; });
  // Record what the step table shows while the run runs.
  await page.evaluate(() => {
    window.__seen = [];
    const look = () => {
      const st = document.querySelector('#run-status')?.textContent;
      const out = document.querySelector('#steps tr[data-step="orders"] td[data-k="out"]')?.textContent;
      const last = window.__seen[window.__seen.length - 1];
      if (!last || last.st !== st || last.out !== out) window.__seen.push({ st, out, lines: document.querySelectorAll('#log li').length });
    };
    window.__look = setInterval(look, 30);
  });
  await textMatches('#run-status', /succeeded|failed|cancelled/, RUN_T);
  await textMatches('#stream-state', /ended/);
  const seen = await page.evaluate(() => { clearInterval(window.__look); return window.__seen; });
  const status = await page.textContent('#run-status');
  if (status !== 'succeeded') throw new Error(`the run ${status}: ${await page.textContent('#run-error')}`);
  if (!(await page.evaluate(() => window.__sameDocument))) throw new Error('the page reloaded');
  const running = seen.filter((s) => s.st === 'running' && s.out && s.out !== '0');
  const outs = new Set(running.map((s) => s.out));
  console.log(`\n  seen while running: ${running.length} states, ${outs.size} distinct counts of orders out (${[...outs].slice(0, 6).join(', ')}…)`);
  if (outs.size < 2) throw new Error(`the step counts did not change live: ${JSON.stringify(seen.slice(0, 20))}`);
  const final = await page.textContent('#steps tr[data-step="orders"] td[data-k="out"]');
  if (final !== '1,500,000') throw new Error(`orders out at the end: ${final}`);
  const lines = await page.locator('#log li').count();
  if (lines < 10) throw new Error(`only ${lines} log lines`);
  if (!seen.some((s) => s.st === 'running' && s.lines > 0)) console.log('  (no log line arrived before the run ended)');
  await page.locator('.dag g.node-succeeded[data-step="show"]').waitFor({ timeout: T });
  await page.locator('#letters tbody tr').first().waitFor({ timeout: T });
  await snap('run-succeeded');
});

await step('the log filter hides levels', async () => {
  const visible = () => page.locator('#log li.lv-info:visible').count();
  if ((await visible()) === 0) throw new Error('no info line is visible');
  await page.uncheck('#lv-info');
  await page.waitForFunction(() => [...document.querySelectorAll('#log li.lv-info')].every((li) => li.offsetParent === null), null, { timeout: T });
  await page.check('#lv-info');
});

await step('a dead letter is replayed', async () => {
  const first = page.locator('#letters button[data-replay]').first();
  await first.click();
  await page.waitForURL((u) => u.hash.startsWith('#/runs/') && !u.hash.endsWith(runId), { timeout: T });
  await ready();
  await textMatches('#run-status', /succeeded|failed/, RUN_T);
  await textMatches('.facts', /Replay of/);
  await snap('replay-run');
});

await step('editing makes version 2, and the diff shows the changed line', async () => {
  await page.goto(`${URL}/#/pipelines/${NAME}/edit`);
  await ready();
  await textMatches('#problems-summary', /^Valid/);
  const text = await page.inputValue('#editor-text');
  if (!/rate: 0\.0002/.test(text)) throw new Error(`the editor does not hold the definition:\n${text}`);
  await page.fill('#editor-text', text.replace('rate: 0.0002', 'rate: 0.0005'));
  await textMatches('#problems-summary', /^Valid/);
  await page.click('#save');
  await page.waitForURL(`**/#/pipelines/${NAME}`, { timeout: T });
  await ready();
  await textMatches('#current-version', /v2/);
  await page.check('#diff-a-1');
  await page.check('#diff-b-2');
  await textMatches('#diff h3', /Version 1 → version 2/);
  await textMatches('#diff td.del', /rate: 0\.0002/);
  await textMatches('#diff td.add', /rate: 0\.0005/);
  const changed = await page.locator('#diff td.add').count();
  if (changed !== 1) throw new Error(`${changed} added lines, expected 1`);
  await page.locator('#diff').scrollIntoViewIfNeeded();
  await snap('diff-v1-v2');
});

await step('rolling back to version 1 makes version 3', async () => {
  await page.click('button[data-rollback="1"]');
  await textMatches('#current-version', /v3/);
  await textMatches('main', /Rolled back: version 3 is version 1 again/);
  await page.check('#diff-a-1');
  await page.check('#diff-b-3');
  await textMatches('#diff', /No difference/);
  await snap('rolled-back');
});

await step('run parameters are asked for; a missing one is refused by name; the run shows them', async () => {
  const csrf = (await context.cookies()).find((c) => c.name === 'autoflow_csrf').value;
  const r = await context.request.put(`${URL}/v1/pipelines/ui-params`, {
    headers: { 'Content-Type': 'application/yaml', 'X-CSRF-Token': csrf },
    data: 'name: ui-params\nparams:\n  n: { type: integer, default: 2 }\n  tag: { type: string, description: which team }\n'
      + '  day: { type: date, default: "2026-12-01" }\n  loud: { type: boolean, default: false }\nsteps:\n'
      + '  - id: gen\n    plugin: generator@latest\n    config: { count: "${params.n}" }\n'
      + '  - id: out\n    plugin: log-sink@latest\n    input: gen\n    config: { prefix: "${params.tag} ${params.day} ${params.loud}: " }\n',
  });
  if (!r.ok()) throw new Error(`apply ui-params: ${r.status()} ${await r.text()}`);
  await page.goto(`${URL}/#/pipelines/ui-params`);
  await ready();
  const n = await page.inputValue('#param-n');
  const day = await page.inputValue('#param-day');
  if (n !== '2' || day !== '2026-12-01') throw new Error(`the defaults are not filled in: n=${n}, day=${day}`);
  await snap('run-parameters');
  // No tag: the server's 422 is shown, naming the parameter, and no run is made.
  await page.click('#trigger');
  await textMatches('#pipeline-message', /params\.tag: missing \(a string without a default\)/);
  await page.fill('#param-tag', 'eu');
  await page.fill('#param-n', '3');
  await page.check('#param-loud');
  await page.click('#trigger');
  await page.waitForURL('**/#/runs/*', { timeout: T });
  await ready();
  await textMatches('#run-params', /day=2026-12-01, loud=true, n=3, tag=eu/);
  await textMatches('#run-status', /succeeded/, RUN_T);
  await textMatches('#log', /eu 2026-12-01 true: \{/);
  const lines = await page.locator('#log li').filter({ hasText: 'eu 2026-12-01 true: {' }).count();
  if (lines !== 3) throw new Error(`${lines} records logged with the parameters, expected 3`);
  await snap('run-with-parameters');
});

await step('the pipelines page shows the last runs and filters', async () => {
  await page.click('#top nav a[data-section="pipelines"]');
  await ready();
  const row = page.locator(`#pipelines tr[data-name="${NAME}"]`);
  await row.locator('.strip a.sq').nth(1).waitFor({ timeout: T });
  const squares = await row.locator('.strip a.sq').count();
  if (squares !== 2) throw new Error(`${squares} runs in the strip of ${NAME}, expected 2 (the run and the replay)`);
  await page.fill('#pipeline-filter', 'ui-ord');
  await textMatches('#pipeline-count', /^1 of \d+ pipelines?$/);
  await snap('pipelines-filtered');
  await page.fill('#pipeline-filter', '');
});

await step('a plugin is uploaded, and a file that is no component is refused', async () => {
  await page.click('#top nav a[data-section="plugins"]');
  await ready();
  await page.locator('#plugins tr[data-name="generator"]').waitFor({ timeout: T });
  await page.setInputFiles('#plugin-file', WASM);
  await page.fill('#plugin-name', 'ui-uploaded');
  await page.fill('#plugin-version', '1.0.0');
  await page.click('#upload');
  await textMatches('#upload-result', /Added ui-uploaded@1\.0\.0/);
  await page.locator('#plugins tr[data-name="ui-uploaded"]').waitFor({ timeout: T });
  await snap('plugin-uploaded');
  // Dropped on the drop zone, as a file dragged from the desktop.
  const dt = await page.evaluateHandle(() => {
    const d = new DataTransfer();
    d.items.add(new File(['this is not a WebAssembly component'], 'notes-1.0.1.wasm', { type: 'application/wasm' }));
    return d;
  });
  await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer: dt });
  await textMatches('#plugin-chosen', /notes-1\.0\.1\.wasm/);
  if ((await page.inputValue('#plugin-version')) !== '1.0.0') {
    // The name and version typed by hand are kept; the guessed ones follow the file.
  }
  await page.fill('#plugin-name', 'notes');
  await page.fill('#plugin-version', '1.0.1');
  await page.click('#upload');
  await textMatches('#upload-result .notice-error', /^Refused: .+/);
  console.log(`\n  refusal shown: ${(await page.textContent('#upload-result')).slice(0, 160)}`);
  await snap('plugin-refused');
});

await step('an admin adds a user, changes their role, makes and revokes a token, sets and deletes a secret', async () => {
  await page.goto(`${URL}/#/admin`);
  await ready();
  await page.fill('#user-name', 'bea');
  await page.fill('#user-password', 'short');
  await page.selectOption('#user-role', 'viewer');
  await page.click('#user-form-submit');
  await textMatches('#user-form-result .notice-error', /password/i);
  await page.fill('#user-password', 'a long enough password');
  await page.click('#user-form-submit');
  await page.locator('#users tr[data-name="bea"]').waitFor({ timeout: T });
  await page.selectOption('#role-of-bea', 'editor');
  await textMatches('#users tr[data-name="bea"]', /saved/);
  const bea = (await (await context.request.get(`${URL}/v1/users`)).json()).find((u) => u.name === 'bea');
  if (!bea || bea.roles[0].role !== 'editor') throw new Error(`bea's role: ${JSON.stringify(bea)}`);

  await page.fill('#token-name', 'ci-bot');
  await page.selectOption('#token-role', 'viewer');
  await page.fill('#token-scopes', 'pipelines:read');
  await page.fill('#token-account', 'ci');
  await page.click('#token-form-submit');
  await textMatches('#token-text', /^af_/);
  const token = (await page.textContent('#token-text')).trim();
  const bearer = (t, p = '/v1/pipelines') => context.request.get(`${URL}${p}`, { headers: { Authorization: `Bearer ${t}` } });
  if ((await bearer(token)).status() !== 200) throw new Error('the new token does not work');
  // Narrowed to pipelines:read: the plugins are out of its reach, and the list says so.
  if ((await bearer(token, '/v1/plugins')).status() !== 403) throw new Error('a pipelines:read token reads plugins');
  await page.waitForFunction(() => [...document.querySelectorAll('#tokens tbody tr')]
    .some((tr) => /ci-bot/.test(tr.textContent) && /pipelines:read/.test(tr.textContent) && /service account ci/.test(tr.textContent)), null, { timeout: T, polling: 50 });
  await page.click('button[aria-label="Revoke token ci-bot"]');
  await page.waitForFunction(() => [...document.querySelectorAll('#tokens tbody tr')]
    .some((tr) => /ci-bot/.test(tr.textContent) && /revoked/.test(tr.textContent)), null, { timeout: T, polling: 50 });
  if ((await bearer(token)).status() !== 401) throw new Error('a revoked token still works');

  const canary = 'hunter2-canary-7f3a';
  await page.fill('#secret-name', 'db-password');
  await page.fill('#secret-value', canary);
  await page.click('#secret-form-submit');
  await page.locator('#secrets tr[data-name="db-password"]').waitFor({ timeout: T });
  if ((await page.content()).includes(canary)) throw new Error('the secret value is on the page');
  await snap('admin');
  await page.click('button[aria-label="Delete secret db-password"]');
  await page.locator('#secrets tr[data-name="db-password"]').waitFor({ state: 'detached', timeout: T });
});

await step('the pages at phone width and in dark mode', async () => {
  const pages = [['pipelines', '#/pipelines', '#pipelines'], ['pipeline', `#/pipelines/${NAME}`, '.dag'], ['run', `#/runs/${runId}`, '#steps tbody tr'],
    ['editor', `#/pipelines/${NAME}/edit`, '.gutter .gl'], ['plugins', '#/plugins', '#plugins tbody tr'], ['admin', '#/admin', '#users tbody tr']];
  for (const scheme of ['light', 'dark']) {
    for (const [w, hgt] of [[390, 844], [1280, 800]]) {
      if (scheme === 'light' && w === 1280) continue;
      const ctx = await browser.newContext({ viewport: { width: w, height: hgt }, colorScheme: scheme, storageState: await context.storageState() });
      const p = await ctx.newPage();
      p.on('pageerror', (e) => pageErrors.push(e.message));
      for (const [name, hash, sel] of pages) {
        await p.goto(`${URL}/${hash}`);
        await ready(T, p);
        await p.locator(sel).first().waitFor({ timeout: T });
        if (name === 'run') await p.waitForFunction(() => /ended/.test(document.querySelector('#stream-state')?.textContent || ''), null, { timeout: T });
        const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        if (overflow > 1) throw new Error(`${name} at ${w} px (${scheme}) is ${overflow} px wider than the screen`);
        await p.screenshot({ path: join(OUT, `${name}-${w}-${scheme}.png`), fullPage: name !== 'run' });
      }
      await ctx.close();
    }
  }
});

await step('the log stream drops: the run page says so, and reconnects', async () => {
  const csrf = (await context.cookies()).find((c) => c.name === 'autoflow_csrf').value;
  const put = await context.request.put(`${URL}/v1/pipelines/ui-slow`, {
    headers: { 'Content-Type': 'application/yaml', 'X-CSRF-Token': csrf },
    data: 'name: ui-slow\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: { count: 4000000 }\n  - id: few\n    plugin: sample@latest\n    input: gen\n    config: { rate: 0.00001 }\n  - id: out\n    plugin: log-sink@latest\n    input: few\n',
  });
  if (!put.ok()) throw new Error(`apply ui-slow: ${put.status()} ${await put.text()}`);
  const r = await context.request.post(`${URL}/v1/pipelines/ui-slow/runs`, { headers: { 'X-CSRF-Token': csrf } });
  const { id } = await r.json();
  // The first log stream the page opens ends at once, as a dropped connection does.
  const follow = (u) => u.pathname.endsWith('/logs') && u.searchParams.get('follow') === 'true';
  await page.route(follow, (route) => route.fulfill({ status: 200, headers: { 'Content-Type': 'text/event-stream' }, body: ': cut\n\n' }));
  await page.goto(`${URL}/#/runs/${id}`);
  await ready();
  await textMatches('#stream-state', /reconnecting/i);
  await snap('run-reconnecting');
  await page.unroute(follow);
  await textMatches('#stream-state', /Live|ended/, T);
  await textMatches('#run-status', /succeeded/, RUN_T);
  await textMatches('#stream-state', /ended/);
  // No line twice: the stream went on from the last line it had.
  const ids = await page.$$eval('#log li', (lis) => lis.map((li) => li.dataset.id));
  if (new Set(ids).size !== ids.length) throw new Error('a log line was shown twice after reconnecting');
});

// Figures: the pipelines page with MANY pipelines, a run page with LOG_LINES lines, page weight.
const figures = {};
await step(`figures: ${MANY} pipelines, a run of ${LOG_LINES} log lines`, async () => {
  const csrf = (await context.cookies()).find((c) => c.name === 'autoflow_csrf').value;
  const have = (await (await context.request.get(`${URL}/v1/pipelines`)).json()).length;
  const todo = Array.from({ length: Math.max(0, MANY - have) }, (_, i) => `bulk-${String(i).padStart(4, '0')}`);
  const t0 = Date.now();
  const worker = async () => {
    while (todo.length) {
      const n = todo.shift();
      const cron = todo.length % 3 === 0 ? `\nschedule: { cron: "0 ${todo.length % 60} * * * *" }` : '';
      const r = await context.request.post(`${URL}/v1/pipelines`, {
        headers: { 'Content-Type': 'application/yaml', 'X-CSRF-Token': csrf },
        data: `name: ${n}${cron}\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: { count: 1 }\n  - id: out\n    plugin: log-sink@latest\n    input: gen\n`,
      });
      if (!r.ok()) throw new Error(`create ${n}: ${r.status()} ${await r.text()}`);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  figures.create_pipelines_ms = Date.now() - t0;
  const log = await context.request.put(`${URL}/v1/pipelines/ui-log`, {
    headers: { 'Content-Type': 'application/yaml', 'X-CSRF-Token': csrf },
    // Short lines: a step's log is capped at 1 MiB.
    data: `name: ui-log\nsteps:\n  - id: gen\n    plugin: generator@latest\n    config: { count: ${LOG_LINES} }\n  - id: slim\n    plugin: json-map@latest\n    input: gen\n    config: { select: [id, status, amount] }\n  - id: out\n    plugin: log-sink@latest\n    input: slim\n`,
  });
  if (!log.ok()) throw new Error(`apply ui-log: ${log.status()} ${await log.text()}`);
  const run = await (await context.request.post(`${URL}/v1/pipelines/ui-log/runs`, { headers: { 'X-CSRF-Token': csrf } })).json();
  const deadline = Date.now() + RUN_T;
  for (;;) {
    const st = (await (await context.request.get(`${URL}/v1/runs/${run.id}`)).json()).status;
    if (st === 'succeeded') break;
    if (st === 'failed' || st === 'cancelled' || Date.now() > deadline) throw new Error(`the ${LOG_LINES}-line run: ${st}`);
    await new Promise((r) => setTimeout(r, 100)); // polling the API with a deadline
  }

  const measure = async (hash, ready) => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, storageState: await context.storageState() });
    const p = await ctx.newPage();
    await p.goto(`${URL}/${hash}`);
    const interactive = await p.waitForFunction(ready, null, { timeout: 60_000, polling: 'raf' }).then(() => p.evaluate(() => performance.now()));
    const nav = await p.evaluate(() => {
      const n = performance.getEntriesByType('navigation')[0];
      const fcp = performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint');
      const ui = performance.getEntriesByType('resource').filter((r) => new URL(r.name).pathname.startsWith('/ui/'));
      return {
        first_contentful_paint_ms: fcp ? Math.round(fcp.startTime) : null,
        dom_content_loaded_ms: Math.round(n.domContentLoadedEventEnd),
        ui_bytes_loaded: n.encodedBodySize + ui.reduce((a, r) => a + r.encodedBodySize, 0),
        ui_files_loaded: ui.length + 1,
      };
    });
    const shotFile = join(OUT, `figures-${hash.replace(/\W+/g, '-')}.png`);
    await p.screenshot({ path: shotFile });
    await ctx.close();
    return { ...nav, interactive_ms: Math.round(interactive) };
  };
  const total = (await (await context.request.get(`${URL}/v1/pipelines`)).json()).length;
  figures.pipelines_page = { pipelines: total, ...(await measure('#/pipelines', new Function(`return document.querySelectorAll('#pipelines tbody tr').length >= ${total} && !!document.querySelector('#pipelines tbody tr:first-child[data-loaded]')`))) };
  figures.run_page = { log_lines: LOG_LINES, ...(await measure(`#/runs/${run.id}`, new Function(`return document.querySelectorAll('#log li').length >= ${LOG_LINES} && /ended/.test(document.querySelector('#stream-state').textContent)`))) };
  const files = [];
  const walk = (d) => readdirSync(d).forEach((f) => (statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : files.push(join(d, f))));
  walk(uiDir);
  figures.ui_files = files.length;
  figures.ui_bytes_all_files = files.reduce((a, f) => a + readFileSync(f).length, 0);
});

await step('signing out ends the session', async () => {
  await page.goto(`${URL}/#/pipelines`);
  await ready();
  await page.click('#sign-out');
  await page.locator('#signin-name').waitFor({ timeout: T });
  await textMatches('main', /You are signed out/);
  const r = await context.request.get(`${URL}/v1/pipelines`);
  if (r.status() !== 401) throw new Error(`after signing out the API answers ${r.status()}`);
});

if (pageErrors.length) fail(`errors in the page:\n${pageErrors.join('\n')}`);
console.log(`FIGURES ${JSON.stringify(figures)}`);
console.log(`screenshots in ${OUT}`);
await browser.close();
console.log('PASS');
