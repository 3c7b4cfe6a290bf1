// The REST client: every request carries the session's bearer token; a 401 anywhere means the
// session is over (idle, expired, ended, revoked) and sends the operator back to the login
// screen, saying why when the node said (`cistern:unauthorized` with the error code).
//
// Storage (decision, issue 24): the session's token lives in `sessionStorage` — per tab, gone
// when the tab closes, never sent by the browser on its own (no cookie: no cross-site request
// can carry it, so there is nothing to forge). What a script in the page could read is the
// risk that choice keeps; the strict Content-Security-Policy (no inline or foreign script) is
// what stands against it. The device token a login hands this browser lives in `localStorage`
// under the user's name: it authenticates nothing, it only lets login throttling tell this
// browser from an attacker behind the same address.

const KEY = 'cistern.session';
const DEVICES = 'cistern.device.';

// A request a timer made, not the user: it does not keep the session from going idle.
export const BACKGROUND = { background: true };

export class ApiError extends Error {
  constructor(status, code, message, body = null) {
    super(message);
    this.status = status;
    this.code = code;
    // The whole error body (a refused rule's `diagnostics` ride along).
    this.body = body;
  }
}

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || 'null');
  } catch {
    return null;
  }
}

export function saveSession(s) {
  sessionStorage.setItem(KEY, JSON.stringify(s));
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
}

async function decode(resp) {
  const text = await resp.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!resp.ok) {
    const e = (body && body.error) || {};
    const code = e.code || `http_${resp.status}`;
    if (resp.status === 401) window.dispatchEvent(new CustomEvent('cistern:unauthorized', { detail: { code } }));
    const err = new ApiError(resp.status, code, e.message || resp.statusText || 'request failed', body);
    // A throttled attempt: how many seconds until the next may be made.
    if (resp.status === 429) err.retryAfter = Number(resp.headers.get('retry-after')) || 1;
    throw err;
  }
  return body;
}

export async function request(method, path, body, { background = false } = {}) {
  const headers = { accept: 'application/json' };
  const s = session();
  if (s && s.token) headers.authorization = `Bearer ${s.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (background) headers['x-cistern-background'] = '1';
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return decode(resp);
}

// `get(path, BACKGROUND)` for a timed refresh.
export const get = (path, options) => request('GET', path, undefined, options);
export const post = (path, body) => request('POST', path, body ?? {});
export const put = (path, body) => request('PUT', path, body ?? {});
export const patch = (path, body) => request('PATCH', path, body ?? {});
export const del = (path) => request('DELETE', path);

// A plain-text body (a rule script for `validate` and `PUT /api/v1/rules/{id}`).
export async function requestText(method, path, text) {
  const headers = { accept: 'application/json', 'content-type': 'text/plain; charset=utf-8' };
  const s = session();
  if (s && s.token) headers.authorization = `Bearer ${s.token}`;
  return decode(await fetch(path, { method, headers, body: text }));
}

// A file as the raw body (an import, a photo); answers JSON like `request`.
export async function upload(path, file) {
  const headers = { accept: 'application/json', 'content-type': file.type || 'application/octet-stream' };
  const s = session();
  if (s && s.token) headers.authorization = `Bearer ${s.token}`;
  return decode(await fetch(path, { method: 'POST', headers, body: file }));
}

// A file the node serves to a signed-in user (an export, a template), saved under the name its
// answer gives (else `fallback`).
export async function download(path, fallback) {
  const s = session();
  const resp = await fetch(path, { headers: s && s.token ? { authorization: `Bearer ${s.token}` } : {} });
  if (!resp.ok) return decode(resp);
  const name = (/filename="([^"]+)"/.exec(resp.headers.get('content-disposition') || '') || [])[1] || fallback;
  downloadBlob(name, await resp.blob());
  return null;
}

// Saves `blob` as a file named `name`.
export function downloadBlob(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// The device token this browser was given at `user`'s last sign-in here.
export function device(user) {
  try {
    return localStorage.getItem(DEVICES + user);
  } catch {
    return null;
  }
}

export async function login(user, password) {
  const resp = await fetch('/api/v1/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ user, password, device: device(user) }),
  });
  const text = await resp.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  if (!resp.ok) {
    const e = (body && body.error) || {};
    const err = new ApiError(resp.status, e.code || `http_${resp.status}`, e.message || 'sign-in failed');
    if (resp.status === 429) err.retryAfter = Number(resp.headers.get('retry-after')) || 1;
    throw err;
  }
  if (body.device) {
    try {
      localStorage.setItem(DEVICES + body.user, body.device);
    } catch {
      /* private mode: this browser is new at every sign-in */
    }
  }
  delete body.device;
  saveSession(body);
  return body;
}

export async function logout() {
  try {
    await post('/api/v1/auth/logout');
  } catch {
    // The session ends locally whatever the node says.
  }
  clearSession();
}

// Stored samples of some points over [from, to], `{point: [[t, v], ...]}`.
export async function history(points, from, to) {
  const q = points.map((p) => `point=${encodeURIComponent(p)}`).join('&');
  const body = await get(`/api/v1/history?${q}&from=${from}&to=${to}`);
  const out = {};
  for (const s of body.series || []) out[s.point] = s.samples || [];
  return out;
}
