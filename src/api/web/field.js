// The field side of work orders on screen (issue 20 items 6-7), beside orders.js:
// - photos: taken with the phone's camera (`capture="environment"`), uploaded as the raw body of
//   POST /api/v1/workorders/{id}/attachments, shown as thumbnails on the phone and the console
//   (fetched with the session's token and shown as data: URLs, which the page's CSP allows);
// - the crew's position, shared from the phone while one of their orders is en route or on site
//   (POST /api/v1/crews/me/position, at most every REPORT_MS), never otherwise;
// - an order's trail: a small offline map (SVG, no tiles) of its positions;
// - the crews on the fleet map: a toggle and GET /api/v1/crews every CREWS_MS.

import * as api from './api.js';
import { esc } from './format.js';
import { t, apiError, stamp, has } from './i18n.js';

const REPORT_MS = 15000;
const CREWS_MS = 10000;

function authHeaders(extra = {}) {
  const s = api.session();
  return s && s.token ? { ...extra, authorization: `Bearer ${s.token}` } : extra;
}

async function failed(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  const e = (body && body.error) || {};
  if (resp.status === 401) window.dispatchEvent(new CustomEvent('cistern:unauthorized'));
  return new api.ApiError(resp.status, e.code || `http_${resp.status}`, e.message || resp.statusText, body);
}

// Uploads one photo; resolves with its listing.
export async function uploadPhoto(orderId, file) {
  const url = `/api/v1/workorders/${encodeURIComponent(orderId)}/attachments?name=${encodeURIComponent(file.name || '')}`;
  const resp = await fetch(url, { method: 'POST', headers: authHeaders({ 'content-type': file.type || 'application/octet-stream' }), body: file });
  if (!resp.ok) throw await failed(resp);
  return (await resp.json()).attachment;
}

const thumbs = new Map(); // `${order}/${n}` -> data: URL (a photo never changes)

async function thumbnail(orderId, n) {
  const key = `${orderId}/${n}`;
  if (thumbs.has(key)) return thumbs.get(key);
  const resp = await fetch(`/api/v1/workorders/${encodeURIComponent(orderId)}/attachments/${n}`, { headers: authHeaders() });
  if (!resp.ok) throw await failed(resp);
  const blob = await resp.blob();
  const url = await new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(r.result);
    r.onerror = () => reject(r.error);
    r.readAsDataURL(blob);
  });
  thumbs.set(key, url);
  return url;
}

// The photos section of an order's page; `canAttach`: the caller may add one now.
export function photosBlock(o, canAttach) {
  const list = o.attachments || [];
  const required = o.photos_required || 0;
  if (!list.length && !canAttach && !required) return '';
  const count = required ? ` <small class="photo-count">${esc(t('field.photos_count', { n: list.length, required }))}</small>` : '';
  return `<section class="o-photos"><h3>${esc(t('field.photos'))}${count}</h3>
    <div class="thumbs">${list.map((a) => `<a class="thumb" href="#" data-photo="${a.id}"><img alt="${esc(t('field.photo_alt', { n: a.id }))}" data-thumb="${a.id}"></a>`).join('')}</div>
    ${canAttach ? `<label class="photo-take"><input type="file" accept="image/*" capture="environment" id="o-photo"><span>${esc(t('field.take_photo'))}</span></label>` : ''}
  </section>`;
}

// Loads the thumbnails of `root`'s photos section and wires its camera input; `done(order)`
// after each upload with the order re-read.
export function bindPhotos(root, o, { toast, done }) {
  for (const img of root.querySelectorAll('img[data-thumb]')) {
    thumbnail(o.id, img.dataset.thumb).then((url) => (img.src = url), () => img.classList.add('broken'));
  }
  for (const a of root.querySelectorAll('a[data-photo]')) {
    a.addEventListener('click', (e) => {
      e.preventDefault();
      const img = a.querySelector('img');
      if (img && img.src) a.classList.toggle('large');
    });
  }
  const input = root.querySelector('#o-photo');
  if (!input) return;
  input.addEventListener('change', async () => {
    const files = [...input.files];
    if (!files.length) return;
    const label = input.closest('.photo-take');
    label.classList.add('busy');
    label.querySelector('span').textContent = t('field.uploading');
    try {
      for (const f of files) await uploadPhoto(o.id, f);
      toast(t('field.photo_added'), true);
    } catch (e) {
      toast(apiError(e));
    }
    try {
      done((await api.get(`/api/v1/workorders/${encodeURIComponent(o.id)}`)).order);
    } catch (e) {
      toast(apiError(e));
    }
  });
}

// The trail section: filled by `drawTrail` once read.
export function trailBlock(o) {
  const moving = (o.transitions || []).some((tr) => tr.position) || ['en_route', 'on_site'].includes(o.state);
  return moving ? `<section class="o-trail"><h3>${esc(t('field.trail'))}</h3><div class="trail-map" id="o-trail"></div></section>` : '';
}

// Draws an order's trail as a polyline on a small SVG (equirectangular, fitted to the points).
export async function drawTrail(root, o) {
  const box = root.querySelector('#o-trail');
  if (!box) return;
  let res;
  try {
    res = await api.get(`/api/v1/workorders/${encodeURIComponent(o.id)}/trail`);
  } catch (e) {
    box.textContent = apiError(e);
    return;
  }
  const pts = res.trail || [];
  if (!pts.length) {
    box.innerHTML = `<p class="empty">${esc(t('field.trail_none'))}</p>`;
    return;
  }
  const W = 320;
  const H = 160;
  const pad = 14;
  const k = Math.cos((pts[0].lat * Math.PI) / 180);
  const xs = pts.map((p) => p.lon * k);
  const ys = pts.map((p) => -p.lat);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const s = Math.min((W - 2 * pad) / Math.max(x1 - x0, 1e-5), (H - 2 * pad) / Math.max(y1 - y0, 1e-5));
  const at = (i) => [pad + (xs[i] - x0) * s + ((W - 2 * pad) - (x1 - x0) * s) / 2, pad + (ys[i] - y0) * s + ((H - 2 * pad) - (y1 - y0) * s) / 2];
  const line = pts.map((_, i) => at(i).map((v) => v.toFixed(1)).join(',')).join(' ');
  const dots = pts
    .map((p, i) => {
      const [x, y] = at(i);
      const what = p.action && has(`orders.actions.${p.action}`) ? t(`orders.actions.${p.action}`) : '';
      return `<circle class="${p.action ? 'stop' : 'fix'}${i === pts.length - 1 ? ' last' : ''}" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${p.action ? 5 : 3}"><title>${esc(`${stamp(p.at)} ${what}`)}</title></circle>`;
    })
    .join('');
  box.innerHTML = `<svg class="trail" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(t('field.trail'))}"><polyline points="${line}"/>${dots}</svg>`;
}

// Shares the phone's position while the user has an order en route or on site.
export class PositionShare {
  constructor() {
    this.watch = null;
    this.last = 0;
  }

  // `orders`: the user's orders as last seen (any subset); shares while one is on the job.
  consider(orders, user) {
    const onJob = orders.some((o) => o.assignee === user && ['en_route', 'on_site'].includes(o.state));
    if (onJob) this.start();
    else if (orders.some((o) => o.assignee === user)) this.stop();
  }

  start() {
    if (this.watch !== null || !navigator.geolocation) return;
    this.watch = navigator.geolocation.watchPosition(
      (p) => this.report(p.coords),
      () => {},
      { enableHighAccuracy: true, maximumAge: 10000, timeout: 30000 },
    );
  }

  stop() {
    if (this.watch === null) return;
    navigator.geolocation.clearWatch(this.watch);
    this.watch = null;
  }

  async report(c) {
    const now = Date.now();
    if (now - this.last < REPORT_MS) return;
    this.last = now;
    try {
      await api.post('/api/v1/crews/me/position', { lat: c.latitude, lon: c.longitude, accuracy_m: c.accuracy });
    } catch (e) {
      // Off the job now (the order moved on) or too soon: the next fix decides again.
      if (e.code === 'no_active_order') this.stop();
    }
  }
}

// The crews on the fleet map: a toggle beside the zoom buttons, refreshed every CREWS_MS while
// shown.
export class CrewsOnMap {
  constructor(map, controls) {
    this.map = map;
    this.shown = true;
    this.timer = null;
    let button = controls.querySelector('#map-crews');
    if (!button) {
      button = document.createElement('button');
      button.type = 'button';
      button.id = 'map-crews';
      button.className = 'crews-toggle';
      controls.appendChild(button);
    }
    // The crews' own marker (a diamond), drawn: no icon font is needed.
    button.innerHTML = '<svg class="crew-icon" viewBox="0 0 16 16" width="14" height="14" aria-hidden="true"><rect x="4" y="4" width="8" height="8" transform="rotate(45 8 8)"/></svg>';
    button.title = t('field.crews');
    button.setAttribute('aria-label', t('field.crews'));
    button.setAttribute('aria-pressed', 'true');
    button.onclick = () => {
      this.shown = !this.shown;
      button.setAttribute('aria-pressed', String(this.shown));
      this.map.showCrews(this.shown);
      if (this.shown) this.refresh();
    };
  }

  start() {
    this.stop();
    this.refresh();
    this.timer = setInterval(() => this.shown && !document.hidden && this.refresh(), CREWS_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async refresh() {
    try {
      const res = await api.get('/api/v1/crews', api.BACKGROUND);
      this.map.setCrews(res.crews || []);
    } catch {
      // No work orders on this node, or a blip: the next refresh tries again.
    }
  }
}

// A crew marker's tooltip.
export function crewTip(c) {
  const state = has(`orders.states.${c.state}`) ? t(`orders.states.${c.state}`) : c.state;
  return `<b translate="no">${esc(c.user)}</b><br>${esc(t('field.crew_tip', { order: c.order, state, at: stamp(c.at) }))}`;
}
