// The operator console: sign-in, then three screens over one live connection — the fleet map,
// the alarm list and a room page — routed by the URL's hash (#/map, #/alarms, #/room/XM-0001)
// so that a browser's back button and bookmarks work. Shared live state: the `fleet` topic
// (zone summaries and one mark per room) and the `alarms` topic (the whole alarm board).

import * as api from './api.js';
import { Live, STALE_MS } from './live.js';
import { FleetMap } from './map.js';
import { AlarmBoard, AlarmTable, Annunciator, ANNUNCIATED, HIDDEN, byColumn, byPriority, messageOf, wireActions } from './alarms.js';
import { RoomPage } from './room.js';
import { PlansPage } from './plans.js';
import { OrdersPage } from './orders.js';
import { KnowledgePage } from './knowledge.js';
import { AssetsPage } from './assets.js';
import { CleaningPage } from './cleaning.js';
import { InspectionsPage } from './inspections.js';
import { ReliabilityPage } from './reliability.js';
import { EnergyPage } from './energy.js';
import { EfficiencyPage } from './efficiency.js';
import { ComparePage } from './compare.js';
import { LeakagePage } from './leakage.js';
import { CockpitPage } from './cockpit.js';
import { RankingPage } from './ranking.js';
import { WallPage } from './wall.js';
import { CrewsOnMap } from './field.js';
import { AdminPage, mayAdminister } from './admin.js';
import { AccountPage } from './account.js';
import { clock, esc, nameLabel, SEVERITIES, setZoneNames, unacked, zoneLabel } from './format.js';
import * as i18n from './i18n.js';
import { t } from './i18n.js';

const $ = (id) => document.getElementById(id);

let live = null;
let board = null;
let map = null;
let roomPage = null;
let plansPage = null;
let ordersPage = null;
let cleaningPage = null;
let inspectionsPage = null;
let knowledgePage = null;
let assetsPage = null;
let reliabilityPage = null;
let energyPage = null;
let efficiencyPage = null;
let comparePage = null;
let leakagePage = null;
let cockpitPage = null;
let rankingPage = null;
let wallPage = null;
let crews = null;
let adminPage = null;
let accountPage = null;
// The signed-in user's role (`GET /api/v1/auth/me`): what the screens offer to do.
let role = 'viewer';
let alarmTable = null;
const zones = new Map();
// The alarm list's order: a column (`raised`, `severity`, …) and direction, or priority order.
let sortBy = { column: null, ascending: true };
const annunciator = new Annunciator($('silence'));
let frame = 0;
const dirty = new Set();

function schedule(part) {
  dirty.add(part);
  if (!frame) frame = requestAnimationFrame(flush);
}

function flush() {
  frame = 0;
  if (dirty.has('zones') || dirty.has('alarms')) renderZones();
  if (dirty.has('alarms')) renderAlarms();
  dirty.clear();
}

// --- sign-in ---

function showLogin(message = '') {
  if (live) live.stop();
  live = null;
  if (crews) crews.stop();
  $('shell').hidden = true;
  $('login').hidden = false;
  document.title = t('app.title');
  $('login-error').textContent = message;
  $('login-password').value = '';
  $('login-user').focus();
}

// A throttled sign-in: the wait, counted down, and the button back when it is over. A wait,
// never a lock: the node slows guessing from here, it never shuts the user out.
let waiting = 0;
function throttledLogin(seconds) {
  clearInterval(waiting);
  let left = Math.max(1, Math.ceil(seconds));
  const show = () => {
    $('login-error').textContent = t('login.throttled', { s: left });
    $('login-submit').disabled = left > 0;
  };
  show();
  waiting = setInterval(() => {
    left -= 1;
    if (left <= 0) {
      clearInterval(waiting);
      $('login-error').textContent = t('login.try_again');
      $('login-submit').disabled = false;
      return;
    }
    show();
  }, 1000);
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('login-submit').disabled = true;
  $('login-error').textContent = '';
  clearInterval(waiting);
  let throttled = false;
  try {
    await api.login($('login-user').value.trim(), $('login-password').value);
    await start();
  } catch (err) {
    if (err.status === 429) {
      throttled = true;
      throttledLogin(err.retryAfter);
    } else {
      $('login-error').textContent = err.status === 401 ? t('login.wrong') : t('login.failed', { message: i18n.apiError(err) });
    }
  } finally {
    if (!throttled) $('login-submit').disabled = false;
  }
});

$('logout').addEventListener('click', async () => {
  await api.logout();
  showLogin();
});

// Why a session ended, when the node said (an idle or expired session; else ended: by an
// admin, by the user elsewhere, a new password or role).
window.addEventListener('cistern:unauthorized', (e) => {
  const code = e.detail && e.detail.code;
  const s = api.session() || {};
  api.clearSession();
  const min = Math.max(1, Math.round((s.idle_timeout_ms || 0) / 60000));
  showLogin(code === 'session_idle' ? t('login.ended_idle', { min }) : code === 'session_expired' ? t('login.ended_expired') : t('login.ended'));
});

// The user at work: a session ends after the node's idle timeout without a request the user
// made (the console's timed refreshes say they are not: api.BACKGROUND). Reading, scrolling
// and panning make no request, so a touch, a key or the wheel is reported here, at most every
// minute (a third of the idle timeout when that is shorter).
let reported = 0;
function activity() {
  const s = api.session();
  if (!s || $('shell').hidden) return;
  const every = Math.min(60_000, (s.idle_timeout_ms || 1_800_000) / 3);
  if (Date.now() - reported < every) return;
  reported = Date.now();
  api.get('/api/v1/auth/me').catch(() => {});
}
for (const ev of ['pointerdown', 'keydown', 'wheel', 'touchstart']) document.addEventListener(ev, activity, { passive: true, capture: true });

// --- the console ---

async function start() {
  const s = api.session();
  // The inventory (names, positions, zones) once, asked for at once: the map's first paint
  // waits for it, not for the user's role as well. Live status comes from the `fleet` topic.
  const fetched = Promise.all([
    api.get('/api/v1/rooms'),
    api.get('/api/v1/basemap').catch(() => null), // a site without one draws a plain graticule
  ]);
  fetched.catch(() => {}); // a failure is the await's below, not an unhandled rejection
  // The user's own language choice (kept with the user on the node) wins over the device's:
  // adopted before the console shows.
  const me = await api.get('/api/v1/auth/me');
  role = me.role || 'viewer';
  if (s) i18n.adopt(s.user, me.language);
  $('login').hidden = true;
  $('shell').hidden = false;
  for (const sel of document.querySelectorAll('.lang-select')) sel.value = i18n.lang();
  $('who').textContent = s ? t('app.who', { user: s.user, role: t(`roles.${s.role}`) }) : '';
  annunciator.forUser(s && s.user);
  board = new AlarmBoard();
  map = map || new FleetMap($('map'), $('map-tip'), { onOpen: (id) => (location.hash = `#/room/${id}`) });
  alarmTable = alarmTable || new AlarmTable($('alarm-rows'), { empty: t('alarms.none_match') });
  sortBy = { column: null, ascending: true };
  live = new Live({ onLink: linkState });
  roomPage = roomPage || new RoomPage($('view-room'), { live: proxyLive(), board: proxyBoard(), role: () => role, toast: (m, ok) => toast(m, ok) });
  plansPage = plansPage || new PlansPage($('view-plans'));
  ordersPage = ordersPage || new OrdersPage($('view-orders'), { role: () => role, user: () => (api.session() || {}).user, toast: (m, ok) => toast(m, ok), live: proxyLive() });
  cleaningPage = cleaningPage || new CleaningPage($('view-cleaning'), { role: () => role, toast: (m, ok) => toast(m, ok) });
  inspectionsPage = inspectionsPage || new InspectionsPage($('view-inspections'), { role: () => role, user: () => (api.session() || {}).user, toast: (m, ok) => toast(m, ok), live: proxyLive() });
  knowledgePage = knowledgePage || new KnowledgePage($('view-knowledge'), { role: () => role, toast: (m, ok) => toast(m, ok) });
  assetsPage = assetsPage || new AssetsPage($('view-assets'), { role: () => role, toast: (m, ok) => toast(m, ok) });
  reliabilityPage = reliabilityPage || new ReliabilityPage($('view-reliability'), { role: () => role, toast: (m, ok) => toast(m, ok) });
  energyPage = energyPage || new EnergyPage($('view-energy'));
  efficiencyPage = efficiencyPage || new EfficiencyPage($('view-efficiency'));
  comparePage = comparePage || new ComparePage($('view-compare'), { toast: (m, ok) => toast(m, ok) });
  leakagePage = leakagePage || new LeakagePage($('view-leakage'));
  cockpitPage = cockpitPage || new CockpitPage($('view-cockpit'), { toast: (m, ok) => toast(m, ok) });
  if (location.hash.startsWith('#/cockpit')) cockpitPage.prefetch();
  rankingPage = rankingPage || new RankingPage($('view-ranking'), { toast: (m, ok) => toast(m, ok) });
  wallPage = wallPage || new WallPage($('view-wall'));
  adminPage = adminPage || new AdminPage($('view-admin'), { role: () => role, toast: (m, ok) => toast(m, ok) });
  $('nav-admin').hidden = !mayAdminister(role);
  accountPage = accountPage || new AccountPage($('view-account'), { toast: (m, ok) => toast(m, ok) });
  reported = Date.now();

  const [inventory, basemap] = await fetched;
  setZoneNames(inventory.zones);
  const built = performance.now();
  map.setRooms(inventory.rooms, basemap);
  crews = crews || new CrewsOnMap(map, document.querySelector('.map-zoom'));
  crews.start();
  performance.mark('cistern:map-drawn', { detail: { rooms: inventory.rooms.length, build_ms: performance.now() - built } });
  const zoneIds = [...new Set(inventory.rooms.map((r) => r.zone))].sort();
  $('f-zone').innerHTML = `<option value="">${esc(t('alarms.all'))}</option>` + zoneIds.map((z) => `<option value="${esc(z)}">${esc(zoneLabel(z))}</option>`).join('');
  zones.clear();
  for (const z of zoneIds) {
    const members = inventory.rooms.filter((r) => r.zone === z);
    const offline = members.filter((r) => r.online === false).length;
    zones.set(z, { zone: z, rooms: members.length, online: members.length - offline, offline, alarms: { P1: 0, P2: 0, P3: 0, P4: 0 }, unacked: 0 });
  }
  schedule('zones');

  live.subscribe('fleet', 'fleet', { rooms: true }, (m) => {
    if (m.type === 'snapshot') {
      for (const z of m.data.zones || []) zones.set(z.zone, z);
      for (const r of m.data.rooms || []) map.mark(r);
      for (const z of m.data.zones || []) map.zone(z);
    } else if (m.type === 'delta') {
      if (m.data.kind === 'zone') {
        zones.set(m.data.zone.zone, m.data.zone);
        map.zone(m.data.zone);
      } else if (m.data.kind === 'room') {
        map.mark(m.data.room);
      }
    }
    schedule('zones');
  });
  board.onChange(() => schedule('alarms'));
  live.subscribe('alarms', 'alarms', {}, (m) => board.apply(m));
  live.start();
  route();
}

// The room page holds references that must follow a re-login (a new Live and board).
function proxyLive() {
  return { subscribe: (...a) => live.subscribe(...a), command: (...a) => live.command(...a) };
}

function proxyBoard() {
  return { onChange: (f) => board.onChange(f), list: (f) => board.list(f) };
}

function linkState(mode, detail) {
  const el = $('link-state');
  el.className = `link-state ${mode === 'up' ? 'up' : mode === 'polling' ? '' : 'down'}`;
  const up = mode === 'up' && detail ? t('link.live_via', { node: detail }) : t('link.live');
  el.textContent = mode === 'up' ? up : mode === 'polling' ? t('link.polling') : detail ? t('link.down_detail', { detail }) : t('link.down');
  el.title = mode === 'up' ? (detail ? t('link.via_title', { node: detail }) : t('link.up_title')) : el.textContent;
  renderBanner();
}

// The header, the zone table and the tab title count alarms one way (alarms.js `counts`):
// annunciated alarms per severity and unacknowledged; shelved, suppressed and out-of-service
// ones apart as hidden. Rooms online and offline come from the `fleet` topic.
function renderZones() {
  const c = board ? board.counts() : null;
  const totals = { P1: 0, P2: 0, P3: 0, P4: 0 };
  let online = 0;
  let offline = 0;
  let un = 0;
  const rows = [];
  for (const z of [...zones.values()].sort((a, b) => a.zone.localeCompare(b.zone))) {
    online += z.online;
    offline += z.offline;
    const mine = c ? c.zones.get(z.zone) || { P1: 0, P2: 0, P3: 0, P4: 0, unacked: 0 } : { ...z.alarms, unacked: z.unacked || 0 };
    un += mine.unacked || 0;
    const cells = SEVERITIES.map((s) => {
      const n = mine[s] || 0;
      totals[s] += n;
      return `<td class="n sev-${s}${n ? ' hot' : ''}">${n || '·'}</td>`;
    }).join('');
    rows.push(`<tr data-zone="${esc(z.zone)}"><td>${esc(zoneLabel(z.zone))}</td><td class="n">${z.rooms}</td><td class="n${z.offline ? ' hot' : ''}">${z.offline || '·'}</td>${cells}</tr>`);
  }
  const html = rows.join('');
  const body = $('zone-rows');
  if (body.dataset.html !== html) {
    body.innerHTML = html;
    body.dataset.html = html;
  }
  $('sum-online').textContent = online;
  $('sum-offline').textContent = offline;
  for (const s of SEVERITIES) {
    $(`sum-${s}`).textContent = totals[s];
    $(`sum-${s}`).parentNode.classList.toggle('hot', totals[s] > 0);
  }
  $('sum-unacked').textContent = un;
  $('sum-unacked').parentNode.classList.toggle('hot', un > 0);
  $('sum-hidden').textContent = c ? c.hidden : 0;
  // The tab title: unacknowledged alarms first, so that a background tab still tells.
  document.title = un ? t('console.title_count', { n: un, title: t('app.title') }) : t('app.title');
}

function alarmFilter() {
  const state = $('f-state').value;
  const sev = $('f-severity').value;
  const zone = $('f-zone').value;
  const room = $('f-room').value.trim().toUpperCase();
  const stateOk = (a) => {
    if (!state) return a.state !== 'normal';
    if (state === 'annunciated') return ANNUNCIATED.has(a.state);
    if (state === 'hidden') return HIDDEN.has(a.state);
    return a.state === state;
  };
  return (a) => stateOk(a) && (!sev || a.severity === sev) && (!zone || a.zone === zone) && (!room || a.room.includes(room));
}

function renderAlarms() {
  if (!board) return;
  const list = board.list(alarmFilter(), sortBy.column ? byColumn(sortBy.column, sortBy.ascending) : byPriority);
  alarmTable.render(list);
  const c = board.counts();
  $('alarm-count').textContent = t('alarms.count', { n: list.length, annunciated: c.annunciated, unacked: c.unacked, hidden: c.hidden });
  annunciator.update(board.alarms.values());
  // The map's short list: the annunciated alarms, most urgent first (the same count as the header).
  const all = board.list((a) => ANNUNCIATED.has(a.state));
  const top = all.slice(0, 40);
  $('mini-count').textContent = t('alarms.mini_count', { n: all.length });
  $('mini-alarms').innerHTML = top.length
    ? top.map((a) => `<li data-room="${esc(a.room)}"><span class="sev ${esc(a.severity)}${unacked(a.state) ? ' unack' : ''}">${esc(a.severity)}</span><span>${esc(a.room)}</span><span class="msg" title="${esc(messageOf(a))}">${esc(messageOf(a))}</span></li>`).join('')
    : `<li class="empty">${esc(t('zones.no_active'))}</li>`;
}

for (const id of ['f-state', 'f-severity', 'f-zone', 'f-room']) $(id).addEventListener('input', () => schedule('alarms'));

// --- the map's search and zoom ---

const RESULTS = 12;

function showResults() {
  const hits = map.find($('map-search-input').value);
  const q = $('map-search-input').value.trim();
  const items = hits.slice(0, RESULTS).map((r) => `<li data-room="${esc(r.id)}"><b>${esc(r.id)}</b><span>${esc(nameLabel(r))}</span></li>`);
  if (hits.length > RESULTS) items.push(`<li class="empty">${esc(t('map.more', { n: hits.length - RESULTS }))}</li>`);
  if (q && !hits.length) items.push(`<li class="empty">${esc(t('map.no_match'))}</li>`);
  $('map-results').innerHTML = items.join('');
  if (hits.length === 1) map.focus(hits[0].id);
}

$('map-search-input').addEventListener('input', showResults);
$('map-search').addEventListener('submit', (e) => {
  e.preventDefault();
  const first = $('map-results').querySelector('li[data-room]');
  if (first) location.hash = `#/room/${first.dataset.room}`;
});
$('map-results').addEventListener('click', (e) => {
  const li = e.target.closest('li[data-room]');
  if (li) map.focus(li.dataset.room);
});
$('map-results').addEventListener('dblclick', (e) => {
  const li = e.target.closest('li[data-room]');
  if (li) location.hash = `#/room/${li.dataset.room}`;
});
$('map-zoom-in').addEventListener('click', () => map && map.zoom(0.6));
$('map-zoom-out').addEventListener('click', () => map && map.zoom(1 / 0.6));
$('map-zoom-reset').addEventListener('click', () => map && map.reset());
$('mini-alarms').addEventListener('click', (e) => {
  const li = e.target.closest('li[data-room]');
  if (li) location.hash = `#/room/${li.dataset.room}`;
});
wireActions(document.body, proxyLive(), { onError: (msg) => toast(msg), get: api.get, mayOrder: () => role !== 'viewer' });

// Sortable columns: a click (or Enter) on a header sorts by it; again reverses it.
function sortOn(th) {
  const column = th.dataset.sort;
  sortBy = sortBy.column === column ? { column, ascending: !sortBy.ascending } : { column, ascending: column !== 'raised' };
  for (const h of document.querySelectorAll('table.alarms th[data-sort]')) {
    const on = h.dataset.sort === sortBy.column;
    h.classList.toggle('sorted', on);
    h.classList.toggle('desc', on && !sortBy.ascending);
    if (on) h.setAttribute('aria-sort', sortBy.ascending ? 'ascending' : 'descending');
    else h.removeAttribute('aria-sort');
    h.title = on ? t(sortBy.ascending ? 'alarms.sort_asc' : 'alarms.sort_desc') : '';
  }
  schedule('alarms');
}
const alarmHead = document.querySelector('table.alarms thead');
alarmHead.addEventListener('click', (e) => {
  const th = e.target.closest('th[data-sort]');
  if (th) sortOn(th);
});
alarmHead.addEventListener('keydown', (e) => {
  const th = e.target.closest('th[data-sort]');
  if (th && (e.key === 'Enter' || e.key === ' ')) {
    e.preventDefault();
    sortOn(th);
  }
});

// The link-lost banner: across the page while the socket is down (past a brief reconnect) or
// the node has been silent past its pings, gone when the link is back.
const BANNER_AFTER_MS = 1500;
// How long the "views resynchronised" notice stays after a reconnection.
const RESYNC_SHOWN_MS = 15000;
function renderBanner() {
  const banner = $('link-banner');
  if (!live) {
    banner.hidden = true;
    return;
  }
  const h = live.health();
  const s = Math.round(h.silentMs / 1000);
  // Down: nothing heard since the socket went (a fallback poll that answers is a link).
  const down = h.mode !== 'up' && h.mode !== 'connecting' && h.downMs >= BANNER_AFTER_MS && h.silentMs >= h.downMs;
  let text = null;
  let lost = true;
  if (down) text = t('banner.down', { s });
  else if (h.mode === 'polling' && h.silentMs > STALE_MS) text = t('banner.polling', { s });
  else if (h.silentMs > STALE_MS) text = t('banner.stale', { s });
  else if (h.mode === 'up' && h.resyncMs !== null && h.resyncMs < RESYNC_SHOWN_MS) {
    // Back after a loss: say that every view was reloaded whole (and through which node).
    text = h.via ? t('banner.resynced_via', { node: h.via }) : t('banner.resynced');
    lost = false;
  }
  banner.hidden = text === null;
  banner.classList.toggle('resynced', text !== null && !lost);
  document.body.classList.toggle('link-lost', text !== null && lost);
  if (text !== null) {
    $('link-banner-title').textContent = t(lost ? 'banner.title' : 'banner.resynced_title');
    $('link-banner-text').textContent = text;
  }
}
setInterval(renderBanner, 500);

// The ingest backlog: `/readyz` says how far behind field data is applied; past its limit (the
// node then reports `ingest_lag` not ready) the header says by how much. A cluster node that
// lost etcd (`cluster` not ready) says that what it shows may be stale.
async function renderBacklog() {
  const el = $('backlog');
  if (!live) return;
  try {
    const resp = await fetch('/readyz', { cache: 'no-store' });
    const r = await resp.json();
    const behind = (r.not_ready || []).includes('ingest_lag') && typeof r.ingest_lag_ms === 'number';
    // A cluster node cut off from etcd supervises nothing: what it shows may be stale.
    const outside = (r.not_ready || []).includes('cluster');
    el.hidden = !behind && !outside;
    if (outside) {
      el.textContent = t('console.outside_cluster');
      el.title = t('console.outside_cluster_title');
    } else if (behind) {
      const s = Math.round(r.ingest_lag_ms / 1000);
      el.textContent = t('console.backlog', { s });
      el.title = t('console.backlog_title', { s });
    }
  } catch {
    // The banner says when the node is unreachable.
  }
}
setInterval(renderBacklog, 10000);

// A refused command stays on screen until the operator dismisses it: it must not go unseen.
function toast(msg, ok = false) {
  const el = $('toast');
  el.querySelector('span').textContent = msg;
  el.classList.toggle('ok', ok);
  el.hidden = false;
}
$('toast').querySelector('button').addEventListener('click', () => ($('toast').hidden = true));

// --- routing ---

function route() {
  if ($('shell').hidden) return;
  // `#/orders?team=…`: a page's own query after `?` (the orders list keeps its filters there).
  const [path, query] = location.hash.split('?');
  const [, view = 'map', arg] = path.split('/');
  const views = ['map', 'alarms', 'room', 'plans', 'orders', 'knowledge', 'assets', 'reliability', 'energy', 'efficiency', 'leakage', 'compare', 'cleaning', 'inspections', 'cockpit', 'ranking', 'wall', 'admin', 'account'];
  const v = views.includes(view) ? view : 'map';
  for (const name of views) $(`view-${name}`).hidden = name !== v;
  // The knowledge base is reached from the work orders (no link of its own in the bar).
  const nav = v === 'knowledge' ? 'orders' : v;
  for (const a of document.querySelectorAll('.topbar nav a')) a.classList.toggle('active', a.dataset.view === nav);
  if (v === 'room' && arg) {
    const id = decodeURIComponent(arg);
    $('nav-room').hidden = false;
    $('nav-room').textContent = id;
    $('nav-room').href = `#/room/${id}`;
    const tab = path.split('/')[3];
    roomPage.open(id, tab ? decodeURIComponent(tab) : undefined);
  } else if (roomPage) {
    roomPage.close();
  }
  if (v === 'plans') plansPage.open(arg ? decodeURIComponent(arg) : undefined);
  else if (plansPage) plansPage.close();
  if (v === 'orders') ordersPage.open(arg ? decodeURIComponent(arg) : undefined, query);
  else if (ordersPage) ordersPage.close();
  if (v === 'cleaning') cleaningPage.open();
  else if (cleaningPage) cleaningPage.close();
  if (v === 'inspections') inspectionsPage.open(arg ? decodeURIComponent(arg) : undefined);
  else if (inspectionsPage) inspectionsPage.close();
  if (v === 'knowledge') knowledgePage.open(arg ? decodeURIComponent(arg) : undefined);
  else if (knowledgePage) knowledgePage.close();
  if (v === 'assets') assetsPage.open();
  else if (assetsPage) assetsPage.close();
  if (v === 'reliability') reliabilityPage.open();
  else if (reliabilityPage) reliabilityPage.close();
  if (v === 'energy') energyPage.open();
  else if (energyPage) energyPage.close();
  if (v === 'efficiency') efficiencyPage.open(arg ? decodeURIComponent(arg) : undefined);
  else if (efficiencyPage) efficiencyPage.close();
  if (v === 'compare') comparePage.open(query);
  else if (comparePage) comparePage.close();
  if (v === 'leakage') leakagePage.open(arg ? decodeURIComponent(arg) : undefined);
  else if (leakagePage) leakagePage.close();
  if (v === 'cockpit') cockpitPage.open();
  else if (cockpitPage) cockpitPage.close();
  if (v === 'ranking') rankingPage.open(arg ? decodeURIComponent(arg) : undefined);
  else if (rankingPage) rankingPage.close();
  if (v === 'wall') wallPage.open();
  else if (wallPage) wallPage.close();
  if (v === 'admin') adminPage.open(...location.hash.split('/').slice(2).map(decodeURIComponent));
  else if (adminPage) adminPage.close();
  if (v === 'account') accountPage.open();
  else if (accountPage) accountPage.close();
}

window.addEventListener('hashchange', route);
setInterval(() => ($('clock').textContent = clock(Date.now())), 1000);

// The language pickers (sign-in page and top bar) show the current language and switch it.
// A signed-in user's choice is kept with the user on the node (it follows them to any
// browser); where the node refuses (an API token), it is kept in this browser only.
for (const sel of document.querySelectorAll('.lang-select')) {
  sel.addEventListener('change', async () => {
    const s = api.session();
    if (s) await api.put('/api/v1/auth/me/language', { language: sel.value }).catch(() => null);
    i18n.choose(sel.value, s && s.user);
  });
}

// A session survives a reload (sessionStorage) as long as the node still accepts its token.
(async () => {
  const s = api.session();
  await i18n.init(s && s.user);
  for (const sel of document.querySelectorAll('.lang-select')) sel.value = i18n.lang();
  if (!s) return showLogin();
  try {
    await api.get('/api/v1/auth/me');
    await start();
  } catch {
    showLogin();
  }
})();
