// The public API, with the session cookie: every request that may change something carries
// the CSRF token. Errors become ApiError with the server's own message.

let csrfToken = null;

/** Remembers the CSRF token of the session (from /v1/login or /v1/session). */
export function setCsrf(token) {
  csrfToken = token || null;
}

/** The value of cookie `name`, if the page can read it. */
export function cookie(name) {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return null;
}

/** An answer that was not 2xx: `status`, `kind` (`invalid`, `conflict`, ...), the message. */
export class ApiError extends Error {
  constructor(status, kind, message, retryAfter) {
    super(message);
    this.status = status;
    this.kind = kind;
    this.retryAfter = retryAfter;
  }
}

/** Listeners of "the session is gone" (a 401 on a request made while signed in). */
const signedOut = new Set();
export function onSignedOut(fn) {
  signedOut.add(fn);
}

/**
 * Calls the API. `json`: a body sent as JSON; `body` + `type`: a raw body. Answers the parsed
 * JSON (or the text when the answer is not JSON), with `.headers` when `raw` is set.
 */
export async function api(method, path, { json, body, type, headers, signal, raw, quiet } = {}) {
  const h = { Accept: 'application/json', ...(headers || {}) };
  if (json !== undefined) {
    body = JSON.stringify(json);
    type = 'application/json';
  }
  if (type) h['Content-Type'] = type;
  if (method !== 'GET' && method !== 'HEAD') {
    const t = csrfToken || cookie('autoflow_csrf');
    if (t) h['X-CSRF-Token'] = t;
  }
  let r;
  try {
    r = await fetch(path, { method, headers: h, body, signal, credentials: 'same-origin' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', `cannot reach the server (${e.message})`);
  }
  const ct = r.headers.get('Content-Type') || '';
  const data = ct.includes('json') ? await r.json().catch(() => null) : await r.text();
  if (!r.ok) {
    const message = (data && data.message) || (typeof data === 'string' && data) || `${r.status} ${r.statusText}`;
    const err = new ApiError(r.status, (data && data.error) || 'http', message, r.headers.get('Retry-After'));
    if (r.status === 401 && !quiet) for (const fn of signedOut) fn(err);
    throw err;
  }
  if (raw) return { data, headers: r.headers, status: r.status };
  return data;
}

export const get = (path, opts) => api('GET', path, opts);
export const post = (path, json, opts) => api('POST', path, { ...opts, json });

/** A path with `encodeURIComponent` on each interpolated value. */
export function path(strings, ...values) {
  return strings.reduce((acc, s, i) => acc + s + (i < values.length ? encodeURIComponent(values[i]) : ''), '');
}
