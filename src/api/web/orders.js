// Work orders (issue 20) on screen: the list with its filters (#/orders), and one order
// (#/orders/WO-000123) with its timeline, alarms, checklist and the commands its state and the
// user allow. The same page is the field crew's on a phone: "my orders" first, one thumb —
// accept, en route, on site (the phone's position recorded), tick the checklist with readings,
// complete with cause and remedy. Read over REST when opened and after each command, then kept
// current by the `workorders` WebSocket topic (no polling); photos, the crew's position and
// the trail come from field.js.

import * as api from './api.js';
import { esc, nameLabel, zoneLabel } from './format.js';
import { downloadBlob } from './trend.js';
import { t, has, apiError, stamp, lang } from './i18n.js';
import { photosBlock, bindPhotos, trailBlock, drawTrail, PositionShare } from './field.js';
import { showNotifications } from './notify.js';
import { newOrderForm } from './neworder.js';
import { KpisPage } from './kpis.js';
import { BoardPage } from './board.js';

const STATES = ['created', 'dispatched', 'accepted', 'en_route', 'on_site', 'completed', 'on_hold', 'closed', 'cancelled'];
const TYPES = ['corrective', 'preventive', 'inspection', 'tank_cleaning', 'installation', 'emergency'];
const RANK = { viewer: 0, operator: 1, 'rule-author': 2, admin: 3 };
// The list's filters, as the node's query names them (kept in the URL).
const FILTERS = ['state', 'open', 'type', 'priority', 'zone', 'team', 'assignee', 'overdue'];
// How many orders the list shows (the node's default), and so how many an export holds.
const LIST_LIMIT = 200;

const stateText = (s) => (has(`orders.states.${s}`) ? t(`orders.states.${s}`) : s);
const typeText = (k) => (has(`orders.types.${k}`) ? t(`orders.types.${k}`) : k);
const actionText = (a) => (has(`orders.actions.${a}`) ? t(`orders.actions.${a}`) : a);
// A user's name as data; the service's own steps in words.
const who = (u) => (u === 'system' ? esc(t('orders.system')) : `<span translate="no">${esc(u)}</span>`);
const title = (o) => (lang() === 'zh-CN' ? o.title_zh : o.title) || o.title;
const option = (value, label, selected) => `<option value="${esc(value)}"${value === selected ? ' selected' : ''}>${esc(label)}</option>`;

// The commands an order in `state` offers: crews' steps to its assignee (or anyone for a
// team's queue), the rest to dispatchers. The node decides again; this only hides buttons.
export function commandsFor(order, user, role) {
  const dispatcher = (RANK[role] ?? 0) >= RANK.operator;
  const mine = !order.assignee || order.assignee === user || dispatcher;
  const crew = {
    dispatched: ['accept'],
    accepted: ['en_route', 'on_site'],
    en_route: ['on_site'],
    on_site: ['complete'],
  }[order.state] || [];
  const out = mine ? [...crew] : [];
  if (dispatcher && ['created', 'dispatched'].includes(order.state)) out.push('dispatch');
  if (dispatcher && order.state === 'completed') out.push('verify', 'reject');
  if (mine && !['completed', 'on_hold', 'closed', 'cancelled'].includes(order.state)) out.push('hold');
  if (mine && order.state === 'on_hold') out.push('resume');
  if (dispatcher && !['closed', 'cancelled'].includes(order.state)) out.push('cancel');
  return out;
}

// The phone's position, if it gives one within a few seconds (never blocks a command).
function position() {
  return new Promise((resolve) => {
    if (!navigator.geolocation) return resolve(undefined);
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lat: p.coords.latitude, lon: p.coords.longitude, accuracy_m: p.coords.accuracy }),
      () => resolve(undefined),
      { timeout: 5000, maximumAge: 60_000 },
    );
  });
}

// Whether an order missed a target at `now` (the node's rule, for an order that arrived live).
function overdueAt(o, now) {
  if (['closed', 'cancelled'].includes(o.state)) return false;
  const responded = (o.transitions || []).some((tr) => tr.action === 'accept');
  return (!responded && now > o.response_due) || (o.state !== 'completed' && now > o.resolution_due);
}

// Whether a live order belongs in a list shown with filter `f` (the REST list's own filters).
function listed(o, f, user) {
  const open = !['closed', 'cancelled'].includes(o.state);
  if (f.open === 'true' && !open) return false;
  if (f.open === 'false' && open) return false;
  if (f.state && o.state !== f.state) return false;
  if (f.zone && o.zone !== f.zone) return false;
  if (f.team && o.team !== f.team) return false;
  if (f.type && o.type !== f.type) return false;
  if (f.priority && o.priority !== f.priority) return false;
  if (f.assignee && o.assignee !== (f.assignee === 'me' ? user : f.assignee)) return false;
  if (f.overdue && !overdueAt(o, Date.now())) return false;
  return true;
}

export class OrdersPage {
  constructor(root, { role = () => 'viewer', user = () => '', toast = () => {}, live = null }) {
    this.live = live;
    this.unsubscribe = null;
    this.share = new PositionShare();
    this.shown = null;
    this.root = root;
    this.role = role;
    this.user = user;
    this.toast = toast;
    this.seq = 0;
    this.filter = null;
    this.orders = [];
    this.teams = null;
    this.inventory = null;
    this.kpis = new KpisPage(root, { teams: () => this.lookups().then(() => this.teams) });
    this.board = new BoardPage(root, { role, toast });
  }

  // A team's name in the page's language (its id, as data, when the node does not know it).
  teamName(id) {
    const team = this.teams && this.teams.get(id);
    if (!team) return `<span translate="no">${esc(id)}</span>`;
    return esc(lang() === 'zh-CN' ? team.name : team.name_en || team.name);
  }

  close() {
    this.seq += 1;
    this.follow(null);
    this.kpis.close();
    this.board.close();
  }

  // Follows the `workorders` topic for what the page shows (one subscription at a time).
  follow(filter, handler) {
    if (this.unsubscribe) this.unsubscribe();
    this.unsubscribe = null;
    if (filter && this.live) this.unsubscribe = this.live.subscribe('orders', 'workorders', filter, handler);
  }

  // `#/orders/WO-000123`, `#/orders/kpis?…`, `#/orders/board?team=…`, or the list
  // (`#/orders?state=…&team=…`: the filters live in the URL, so a filtered list can be linked;
  // without a query the last filters, else the user's defaults).
  open(id, query) {
    this.seq += 1;
    this.shown = null;
    this.follow(null);
    this.kpis.close();
    this.board.close();
    const params = new URLSearchParams(query || '');
    if (id === 'kpis') return this.kpis.open(params);
    if (id === 'board') return this.board.open(params);
    if (id) return this.showOrder(id, this.seq);
    if (query !== undefined) this.filter = Object.fromEntries([...params].filter(([k, v]) => FILTERS.includes(k) && v !== ''));
    return this.showList(this.seq);
  }

  // Crews see their own orders first; dispatchers the open ones.
  defaults() {
    return (RANK[this.role()] ?? 0) >= RANK.operator ? { open: 'true' } : { assignee: 'me', open: 'true' };
  }

  // The teams (with their members) and the inventory (zones, rooms), read once.
  async lookups() {
    if (!this.teams) this.teams = new Map((await api.get('/api/v1/teams')).teams.map((tm) => [tm.id, tm]));
    if (!this.inventory) this.inventory = await api.get('/api/v1/rooms');
  }

  // Changes one filter: the URL changes, and the route draws the list again.
  setFilter(key, value) {
    const f = { ...(this.filter || {}) };
    if (value === '' || value === false || value === undefined) delete f[key];
    else f[key] = value;
    location.hash = `#/orders?${new URLSearchParams(f)}`;
  }

  async showList(seq) {
    this.filter = this.filter || this.defaults();
    const f = this.filter;
    try {
      await this.lookups();
    } catch (e) {
      if (seq === this.seq) this.root.innerHTML = `<p class="empty">${esc(apiError(e))}</p>`;
      return;
    }
    if (seq !== this.seq) return;
    const zh = lang() === 'zh-CN';
    const teams = [...this.teams.values()];
    const people = [...new Set(teams.flatMap((tm) => (tm.members || []).map((m) => m.user)))].sort();
    const zones = (this.inventory.zones || []).map((z) => z.id);
    const dispatcher = (RANK[this.role()] ?? 0) >= RANK.operator;
    const select = (id, key, any, values, label = (v) => v) =>
      `<select id="${id}"${key === 'assignee' ? ' translate="no"' : ''} aria-label="${esc(t(`orders.filter_${key}`))}">${option('', t(any), f[key] ?? '')}${values.map((v) => option(v, label(v), f[key])).join('')}</select>`;
    this.root.innerHTML = `<div class="orders">
      <div class="orders-bar">
        <h2>${esc(t('orders.title'))}</h2>
        <nav class="o-views"><a href="#/orders/kpis">${esc(t('kpis.title'))}</a>${teams.length ? ` <a href="#/orders/board?team=${esc(encodeURIComponent(teams[0].id))}">${esc(t('board.title'))}</a>` : ''}</nav>
      </div>
      <div class="orders-bar o-filters">
        <label><input type="checkbox" id="o-mine"${f.assignee === 'me' ? ' checked' : ''}> ${esc(t('orders.mine'))}</label>
        <select id="o-open" aria-label="${esc(t('orders.filter_open'))}">
          ${option('true', t('orders.open_only'), f.open)}${option('false', t('orders.closed_only'), f.open)}${option('', t('orders.any_state'), f.open ?? '')}
        </select>
        ${select('o-state', 'state', 'orders.any_state_one', STATES, stateText)}
        ${select('o-type', 'type', 'orders.any_type', TYPES, typeText)}
        ${select('o-priority', 'priority', 'orders.any_priority', ['P1', 'P2', 'P3', 'P4'])}
        ${select('o-zone', 'zone', 'orders.any_zone', zones, (z) => zoneLabel(z))}
        ${select('o-team', 'team', 'orders.any_team', teams.map((tm) => tm.id), (id) => { const tm = this.teams.get(id); return zh ? tm.name : tm.name_en || tm.name; })}
        ${select('o-assignee', 'assignee', 'orders.any_assignee', people)}
        <label><input type="checkbox" id="o-overdue"${f.overdue ? ' checked' : ''}> ${esc(t('orders.overdue_only'))}</label>
      </div>
      <div class="orders-bar o-tools">
        <button type="button" id="o-xlsx">${esc(t('orders.export_xlsx'))}</button>
        <button type="button" id="o-csv">${esc(t('orders.export_csv'))}</button>
        ${dispatcher ? `<button type="button" id="o-report">${esc(t('neworder.report'))}</button>` : ''}
        <a class="button" id="o-kb" href="#/knowledge">${esc(t('kb.title'))}</a>
      </div>
      <div class="o-report-form" id="o-report-form" hidden></div>
      <div class="orders-list" id="o-list"><p class="empty">${esc(t('orders.loading'))}</p></div>
    </div>`;
    const on = (id, key, value) => this.root.querySelector(id).addEventListener('change', (e) => this.setFilter(key, value(e.target)));
    on('#o-mine', 'assignee', (el) => (el.checked ? 'me' : ''));
    on('#o-open', 'open', (el) => el.value);
    for (const key of ['state', 'type', 'priority', 'zone', 'team', 'assignee']) on(`#o-${key}`, key, (el) => el.value);
    on('#o-overdue', 'overdue', (el) => (el.checked ? 'true' : ''));
    this.root.querySelector('#o-xlsx').addEventListener('click', () => this.exportFile('xlsx'));
    this.root.querySelector('#o-csv').addEventListener('click', () => this.exportFile('csv'));
    const report = this.root.querySelector('#o-report');
    if (report) {
      report.addEventListener('click', () => {
        const rooms = (this.inventory.rooms || []).map((r) => ({ id: r.id, name: nameLabel(r) }));
        newOrderForm(this.root.querySelector('#o-report-form'), { rooms, room: rooms.length ? rooms[0].id : '', onCreated: () => this.showList(++this.seq) });
      });
    }
    let res;
    try {
      res = await api.get(`/api/v1/workorders?${this.query()}`);
    } catch (e) {
      if (seq === this.seq) this.root.querySelector('#o-list').innerHTML = `<p class="empty">${esc(apiError(e))}</p>`;
      return;
    }
    if (seq !== this.seq) return;
    this.orders = res.orders;
    this.overdue = res.overdue;
    this.share.consider(res.orders, this.user());
    this.drawList();
    // Live: each order as written replaces its card, joins the list or leaves it.
    this.follow(this.filter.assignee === 'me' ? { assignee: this.user() } : {}, (m) => {
      if (seq !== this.seq) return;
      if (m.type === 'delta' && m.data.kind === 'order') this.liveOrder(m.data.order);
      // Told to resync (this page fell behind): read the list again.
      else if (m.type === 'snapshot' && m.resync) this.showList(++this.seq);
    });
  }

  liveOrder(o) {
    const i = this.orders.findIndex((x) => x.id === o.id);
    const keep = listed(o, this.filter || {}, this.user());
    if (i >= 0 && keep) {
      this.orders[i] = o;
      this.overdue[i] = overdueAt(o, Date.now());
    } else if (i >= 0) {
      this.orders.splice(i, 1);
      this.overdue.splice(i, 1);
    } else if (keep) {
      this.orders.unshift(o);
      this.overdue.unshift(overdueAt(o, Date.now()));
    } else {
      return;
    }
    this.share.consider([o], this.user());
    this.drawList();
  }

  drawList() {
    const list = this.root.querySelector('#o-list');
    if (!list) return;
    const res = { orders: this.orders, overdue: this.overdue };
    list.dataset.count = String(res.orders.length);
    if (!res.orders.length) {
      list.innerHTML = `<p class="empty">${esc(t('orders.none'))}</p>`;
      return;
    }
    list.innerHTML = res.orders
      .map((o, i) => `<a class="order-card sev-${esc(o.priority)}${res.overdue[i] ? ' overdue' : ''}" href="#/orders/${esc(o.id)}" data-order="${esc(o.id)}">
        <span class="o-head"><b translate="no">${esc(o.id)}</b> <span class="sev">${esc(o.priority)}</span> <span class="o-state st-${esc(o.state)}">${esc(stateText(o.state))}</span>${res.overdue[i] ? ` <span class="o-overdue">${esc(t('orders.overdue'))}</span>` : ''}</span>
        <span class="o-title">${esc(title(o))}</span>
        <span class="o-meta"><span translate="no">${esc(o.room || '')}</span> · ${esc(zoneLabel(o.zone || ''))} · ${o.assignee ? who(o.assignee) : esc(t('orders.unassigned'))} · ${esc(stamp(o.created_at))}</span>
      </a>`)
      .join('');
  }

  // The list's query: the filters, as the node reads them.
  query() {
    return new URLSearchParams(this.filter || {}).toString();
  }

  // The node's spreadsheet of exactly the orders the filters show (same query, same limit),
  // headers in the page's language.
  async exportFile(format) {
    const params = new URLSearchParams(this.filter || {});
    params.set('format', format);
    params.set('lang', lang());
    params.set('limit', String(LIST_LIMIT));
    const s = api.session();
    try {
      const resp = await fetch(`/api/v1/workorders/export?${params}`, { headers: s && s.token ? { authorization: `Bearer ${s.token}` } : {} });
      if (!resp.ok) {
        const body = await resp.json().catch(() => ({}));
        const e = (body && body.error) || {};
        throw new api.ApiError(resp.status, e.code || `http_${resp.status}`, e.message || resp.statusText);
      }
      const name = (/filename="([^"]+)"/.exec(resp.headers.get('content-disposition') || '') || [])[1] || `workorders.${format}`;
      downloadBlob(name, await resp.blob());
    } catch (e) {
      this.toast(apiError(e));
    }
  }

  async showOrder(id, seq) {
    let res;
    try {
      if (!this.teams) this.teams = new Map((await api.get('/api/v1/teams')).teams.map((tm) => [tm.id, tm]));
      res = await api.get(`/api/v1/workorders/${encodeURIComponent(id)}`);
    } catch (e) {
      if (seq === this.seq) this.root.innerHTML = `<p class="empty">${esc(apiError(e))}</p>`;
      return;
    }
    if (seq !== this.seq) return;
    this.suggestions = res.suggestions || [];
    this.render(res.order, res.overdue);
    // Live: the order as written by anyone (a command here, the crew's phone, the escalation
    // timer) redraws the page, unless a form is being filled in.
    this.follow(res.order.room ? { room: res.order.room } : {}, (m) => {
      if (seq !== this.seq) return;
      if (m.type === 'snapshot' && m.resync) {
        const again = (m.data.orders || []).find((x) => x.id === id);
        if (again) this.render(again, overdueAt(again, Date.now()));
        return;
      }
      if (m.type !== 'delta' || m.data.kind !== 'order' || m.data.order.id !== id) return;
      const form = this.root.querySelector('.o-form');
      const typing = this.root.contains(document.activeElement) && document.activeElement.matches('input, select, textarea');
      if ((form && !form.hidden) || typing) return;
      this.render(m.data.order, overdueAt(m.data.order, Date.now()));
    });
  }

  // A cause or remedy id in the page's language (the knowledge base's text for a known one).
  resolutionText(kind, id) {
    const zh = lang() === 'zh-CN';
    const s = (this.suggestions || []).find((x) => x[kind] === id);
    if (!s) return `<span translate="no">${esc(id)}</span>`;
    return esc(zh ? s[`${kind}_zh`] : s[`${kind}_text`]);
  }

  render(o, overdue) {
    // The same order again (the command's answer and its live delta): nothing to redraw.
    const text = JSON.stringify(o);
    if (text === this.shown && this.root.querySelector('.order')) return;
    this.shown = text;
    this.share.consider([o], this.user());
    const zh = lang() === 'zh-CN';
    const commands = commandsFor(o, this.user(), this.role());
    const canAttach = !['closed', 'cancelled'].includes(o.state) && (o.assignee === this.user() || (RANK[this.role()] ?? 0) >= RANK.operator);
    const onSite = o.state === 'on_site' && commands.includes('complete');
    const checklist = (o.checklist || [])
      .map((c, i) => `<li class="check${c.done ? ' done' : ''}">
        <label><input type="checkbox" data-item="${i}"${c.done ? ' checked' : ''}${onSite ? '' : ' disabled'}> ${esc(zh ? c.text_zh : c.text)}</label>
        ${c.point ? `<input type="number" step="any" inputmode="decimal" class="reading" data-reading="${i}" value="${c.reading ?? ''}" aria-label="${esc(t('orders.reading'))}"${onSite ? '' : ' disabled'}> ${has(`room.${c.point}`) ? `<span class="unit">${esc(t(`room.${c.point}`))}</span>` : `<span class="unit" translate="no">${esc(c.point)}</span>`}` : ''}
        ${c.by ? `<small>${who(c.by)} ${esc(t('orders.checked_at', { at: stamp(c.at) }))}</small>` : ''}
      </li>`)
      .join('');
    const timeline = (o.transitions || [])
      .map((tr) => `<li><time>${esc(stamp(tr.at))}</time> <b>${esc(actionText(tr.action))}</b> ${who(tr.by)}${tr.assignee ? ` → ${who(tr.assignee)}` : ''}${tr.position ? ` <span class="pos" translate="no">${tr.position.lat.toFixed(5)}, ${tr.position.lon.toFixed(5)}</span>` : ''}${tr.comment ? `<br><span class="comment" translate="no">${esc(tr.comment)}</span>` : ''}</li>`)
      .join('');
    const alarms = (o.alarms || [])
      .map((a) => `<li><span class="sev">${esc(a.severity)}</span> <span translate="no">${esc(zh ? a.message_zh || a.message : a.message)}</span> <time>${esc(stamp(a.raised_at))}</time></li>`)
      .join('');
    const safety = zh ? o.safety_zh : o.safety;
    this.root.innerHTML = `<div class="order sev-${esc(o.priority)}">
      <a class="back" href="#/orders">${esc(t('orders.back'))}</a>
      <h2><span translate="no">${esc(o.id)}</span> ${esc(title(o))}</h2>
      <p class="o-head"><span class="sev">${esc(o.priority)}</span> <span class="o-state st-${esc(o.state)}">${esc(stateText(o.state))}</span> ${esc(typeText(o.type))}${overdue ? ` <span class="o-overdue">${esc(t('orders.overdue'))}</span>` : ''}${o.escalation ? ` <span class="o-overdue">${esc(t(o.escalation > 1 ? 'orders.escalated_manager' : 'orders.escalated_lead'))}</span>` : ''}</p>
      <dl class="o-facts">
        <dt>${esc(t('orders.col_room'))}</dt><dd>${o.room ? `<a href="#/room/${esc(o.room)}" translate="no">${esc(o.room)}</a>` : '—'} ${esc(zoneLabel(o.zone || ''))}</dd>
        <dt>${esc(t('orders.col_assignee'))}</dt><dd>${o.assignee ? who(o.assignee) : esc(t('orders.unassigned'))}${o.team ? ` · ${this.teamName(o.team)}` : ''}</dd>
        <dt>${esc(t('orders.col_response_due'))}</dt><dd>${esc(stamp(o.response_due))}</dd>
        <dt>${esc(t('orders.col_resolution_due'))}</dt><dd>${esc(stamp(o.resolution_due))}</dd>
      </dl>
      ${safety ? `<p class="safety">⚠ ${esc(safety)}</p>` : ''}
      <div class="o-commands">${commands.map((c) => `<button type="button" class="cmd cmd-${c}" data-cmd="${c}">${esc(actionText(c))}</button>`).join('')}</div>
      <div class="o-form" hidden></div>
      ${this.suggestionList(o)}
      ${checklist ? `<h3>${esc(t('orders.checklist'))}</h3><ol class="checklist">${checklist}</ol>` : ''}
      ${photosBlock(o, canAttach)}
      ${trailBlock(o)}
      ${alarms ? `<h3>${esc(t('orders.alarms'))}</h3><ul class="o-alarms">${alarms}</ul>` : ''}
      ${o.resolution ? `<h3>${esc(t('orders.resolution'))}</h3><p>${this.resolutionText('cause', o.resolution.cause)} → ${this.resolutionText('remedy', o.resolution.remedy)}</p>` : ''}
      <h3>${esc(t('orders.timeline'))}</h3><ol class="timeline">${timeline}</ol>
      <div class="o-notify"></div>
    </div>`;
    showNotifications(this.root.querySelector('.o-notify'), { order: o.id });
    for (const b of this.root.querySelectorAll('[data-cmd]')) b.addEventListener('click', () => this.command(o, b.dataset.cmd));
    bindPhotos(this.root, o, { toast: this.toast, done: (order) => this.render(order, overdueAt(order, Date.now())) });
    drawTrail(this.root, o);
    for (const b of this.root.querySelectorAll('[data-use]')) {
      b.addEventListener('click', () => {
        const x = this.suggestions[Number(b.dataset.use)];
        this.command(o, 'complete');
        const form = this.root.querySelector('.o-form');
        for (const kind of ['cause', 'remedy']) {
          const input = form.querySelector(`[name="${kind}"]`);
          input.value = lang() === 'zh-CN' ? x[`${kind}_zh`] : x[`${kind}_text`];
          input.dataset.id = x[kind];
          input.dataset.text = input.value;
        }
      });
    }
    for (const box of this.root.querySelectorAll('[data-item]')) {
      box.addEventListener('change', () => {
        const i = Number(box.dataset.item);
        const r = this.root.querySelector(`[data-reading="${i}"]`);
        const reading = r && r.value !== '' ? Number(r.value) : undefined;
        this.send(o, 'check', { item: i, done: box.checked, reading });
      });
    }
  }

  // The knowledge base's causes and remedies for the order's problem, most often closing
  // first; on site, each can be taken into the completion form.
  suggestionList(o) {
    const list = this.suggestions || [];
    if (!list.length || ['closed', 'cancelled'].includes(o.state)) return '';
    const zh = lang() === 'zh-CN';
    const usable = o.state === 'on_site' && commandsFor(o, this.user(), this.role()).includes('complete');
    return `<h3>${esc(t('orders.suggestions'))}</h3><ol class="suggestions">${list
      .slice(0, 6)
      .map((x, i) => `<li><b>${esc(zh ? x.cause_zh : x.cause_text)}</b> → ${esc(zh ? x.remedy_zh : x.remedy_text)} <small>${esc(t('orders.closed_times', { n: x.closed }))}</small>${usable ? ` <button type="button" class="use" data-use="${i}">${esc(t('orders.use'))}</button>` : ''}</li>`)
      .join('')}</ol>`;
  }

  // A command that needs more than a press asks for it in a form under the buttons.
  command(o, cmd) {
    const form = this.root.querySelector('.o-form');
    const needs = { complete: ['cause', 'remedy', 'minutes'], hold: ['comment'], cancel: ['comment'], reject: ['comment'], dispatch: ['assignee'] }[cmd];
    if (!needs) {
      this.send(o, cmd, {});
      return;
    }
    form.hidden = false;
    form.innerHTML = `${needs.map((n) => `<label>${esc(t(`orders.field_${n}`))} <input name="${n}"${n === 'minutes' ? ' type="number" min="0" inputmode="numeric"' : ''}></label>`).join('')}
      <button type="button" class="primary" id="o-confirm">${esc(actionText(cmd))}</button>`;
    form.querySelector('#o-confirm').addEventListener('click', () => {
      const body = {};
      for (const n of needs) {
        const input = form.querySelector(`[name="${n}"]`);
        let v = input.value.trim();
        if (v === '') continue;
        // A suggestion taken as it is goes by its id, so that its tally counts it.
        if (input.dataset.id && v === input.dataset.text) v = input.dataset.id;
        body[n] = n === 'minutes' ? Number(v) : v;
      }
      this.send(o, cmd, body);
    });
  }

  async send(o, cmd, body) {
    if (['accept', 'en_route', 'on_site', 'complete'].includes(cmd)) {
      const p = await position();
      if (p) body.position = p;
    }
    try {
      const res = await api.post(`/api/v1/workorders/${encodeURIComponent(o.id)}/${cmd}`, body);
      if (cmd !== 'check') this.toast(t('orders.done', { action: actionText(cmd), id: o.id }), true);
      this.render(res.order, false);
    } catch (e) {
      this.toast(apiError(e));
      this.showOrder(o.id, ++this.seq);
    }
  }
}
