// The room page: live state from the `room` topic (a RoomView snapshot, then room and device
// deltas), first as the process mimic (mimic.js), then the room's alarms from the shared board,
// trends over a chosen range (seeded from history, extended live), and the detail: tanks drawn
// to scale against their nameplate (height, overflow, fire reserve, hard minimum), pumps,
// quality, power, environment and cameras. Panels are re-rendered at most once per animation
// frame, each only when its part changed; the mimic updates in place.
// Each tank shows its fill mode (live) and its current fill plan (REST, refreshed once a minute
// while the page is open); operators of a Modbus room may write its outlet pressure set-point,
// after confirming old → new against the limits, and see the controller's read-back.

import { ROOM_TABS } from './roomtabs.js';
import { newOrderForm } from './neworder.js';
import { esc, num, ago, quality, value, zoneLabel, nameLabel, addressLabel } from './format.js';
import { t, apiError } from './i18n.js';
import { AlarmTable } from './alarms.js';
import { Trend, rangePicker, showRange, pointAdder, parsePoint, loadHistory, download, downloadBlob, xlsxBlob } from './trend.js';
import { Mimic } from './mimic.js';
import { get, post, BACKGROUND } from './api.js';
import { REFRESH_MS, tankPlanBlock } from './plans.js';

const NS = 'http://www.w3.org/2000/svg';
const HOUR = 3600_000;
// The head's age is redrawn this often; values older than STALE_MS are stale (three of the
// slowest points' 10-s periods).
const AGE_MS = 5_000;
const STALE_MS = 30_000;
// The outlet set-point's operating range (DOMAIN.md: 0.3–0.6 MPa, a placeholder until the API
// exposes the controller profile's write range, which the node checks again on every write).
export const SETPOINT_LIMITS = { min: 0.3, max: 0.6 };
// Drinking-water limits (GB 5749-2022): what the quality panel marks as abnormal.
const QUALITY = [
  { name: 'chlorine', label: 'room.chlorine', unit: 'mg/L', d: 2, lo: 0.05, hi: 2, range: '0.05–2' },
  { name: 'turbidity', label: 'room.turbidity', unit: 'NTU', d: 2, lo: null, hi: 1, range: '≤ 1' },
  { name: 'ph', label: 'room.ph', unit: '', d: 2, lo: 6.5, hi: 8.5, range: '6.5–8.5' },
];

function abnormal(v, lo, hi) {
  return v !== null && ((lo !== null && v < lo) || (hi !== null && v > hi));
}

// A quality level in words (stale, uncertain) for a greyed value's tooltip.
const qualityText = (q) => t(`room.quality_${q}`);

// A labelled value; `q` its quality (a stale or uncertain value is greyed and says so).
function kvRow(label, v, unit, { d = 1, abn = false, q = 'good' } = {}) {
  const dim = q === 'stale' || q === 'uncertain';
  const cls = v === null ? 'v bad' : abn ? 'v abn' : dim ? 'v stale' : 'v';
  const title = dim ? ` title="${esc(qualityText(q))}"` : '';
  return `<span class="k">${esc(label)}</span><span class="${cls}"${title}>${v === null ? '—' : esc(num(v, d))}</span><span class="u">${esc(unit)}${dim ? ' ?' : ''}</span>`;
}

// kvRow for the point `name` of `points`.
function pointRow(points, name, label, unit, opts = {}) {
  const v = value(points, name);
  return kvRow(label, v, unit, { ...opts, abn: opts.abn ? opts.abn(v) : false, q: quality(points, name) });
}

function flag(points, name) {
  const v = value(points, name);
  return v === null ? null : v >= 0.5;
}

// The limits of an `out_of_range` refusal, read from the node's message ("… outside the
// writable range 0.15..=0.8"), when it gives them.
function rangeOf(err) {
  const m = /(-?[\d.]+)\.\.=?(-?[\d.]+)/.exec((err && err.message) || '');
  return m ? { min: Number(m[1]), max: Number(m[2]) } : null;
}

// A refused write in plain language: an out-of-range value with the limits, else the API's
// error code translated.
export function writeError(err, target) {
  if (err && err.code === 'out_of_range') {
    const r = rangeOf(err);
    if (r) return t('room.sp_out_of_range', { value: num(target, 2), min: num(r.min, 2), max: num(r.max, 2) });
  }
  return apiError(err);
}

export class RoomPage {
  constructor(root, { live, board, role = () => 'viewer', toast = () => {} }) {
    this.root = root;
    this.live = live;
    this.board = board;
    this.role = role;
    this.toast = toast;
    this.plans = []; // the REST view's tank_plans
    this.planTimer = 0;
    this.id = null;
    this.view = null;
    this.spec = null;
    this.unsub = null;
    this.unboard = null;
    this.frame = 0;
    this.dirty = new Set();
    this.trends = [];
    this.pointTrend = new Map(); // point id -> [Trend]
    this.range = { ms: HOUR };
    this.zooms = []; // the ranges a drag zoomed out of, the last on top
    this.compare = false; // the previous period overlaid
    this.picker = null;
    this.mimic = null;
    this.focus = null; // the trend of a point clicked on the mimic
  }

  // `tab`: one of ROOM_TABS' ids (the archive, lifecycle, cleaning and inspection history of
  // the room), or none for the live view. The live subscription stays while a tab is shown.
  open(id, tab) {
    if (this.id === id) return this.showTab(tab);
    this.close();
    this.tab = tab;
    this.id = id;
    this.view = null;
    this.root.innerHTML = `
      <div class="room-head"><h1>${esc(id)}</h1><span class="muted">${esc(t('room.loading'))}</span></div>`;
    this.unsub = this.live.subscribe(`room-${id}`, 'room', { room: id }, (m) => this.onMessage(m));
    this.unboard = this.board.onChange(() => this.mark('alarms'));
    // The nameplate (tank geometry, pump ratings) comes with the REST view only.
    get(`/api/v1/rooms/${encodeURIComponent(id)}`)
      .then((v) => {
        if (this.id !== id) return;
        this.spec = v.spec || null;
        this.plans = v.tank_plans || [];
        if (!this.view) this.view = v;
        this.build();
        this.planTimer = setInterval(() => this.refreshPlans(id), REFRESH_MS);
        // The head's "last data … ago" and its staleness move on even when the room is silent.
        this.ageTimer = setInterval(() => this.mark('head'), AGE_MS);
      })
      .catch((e) => {
        if (this.id === id) this.root.innerHTML = `<div class="room-head"><h1>${esc(id)}</h1><span class="status offline">${esc(apiError(e))}</span></div>`;
      });
  }

  // Plans change at most once per planning round: the open room's are re-read now and then.
  refreshPlans(id) {
    get(`/api/v1/rooms/${encodeURIComponent(id)}`, BACKGROUND)
      .then((v) => {
        if (this.id !== id) return;
        this.plans = v.tank_plans || [];
        this.mark('tanks');
      })
      .catch(() => {
        // Kept: the last plans shown stay until the next read succeeds.
      });
  }

  // Shows a tab of the room (none: the live view), once the page is built.
  showTab(tab) {
    this.tab = ROOM_TABS.some((x) => x.id === tab) ? tab : undefined;
    if (!this.built) return;
    if (this.tabCleanup) this.tabCleanup();
    this.tabCleanup = null;
    for (const a of this.root.querySelectorAll('#r-tabs a')) a.classList.toggle('active', (a.dataset.tab || undefined) === this.tab);
    const live = this.root.querySelector('#r-live');
    const box = this.root.querySelector('#r-tab');
    live.hidden = !!this.tab;
    box.hidden = !this.tab;
    box.innerHTML = '';
    const def = ROOM_TABS.find((x) => x.id === this.tab);
    if (def) this.tabCleanup = def.render(box, this.id, { role: this.role, toast: this.toast }) || null;
  }

  close() {
    if (this.tabCleanup) this.tabCleanup();
    this.tabCleanup = null;
    if (this.planTimer) clearInterval(this.planTimer);
    if (this.ageTimer) clearInterval(this.ageTimer);
    this.planTimer = 0;
    this.ageTimer = 0;
    this.plans = [];
    if (this.unsub) this.unsub();
    if (this.unboard) this.unboard();
    this.unsub = null;
    this.unboard = null;
    this.id = null;
    this.built = false;
    this.trends = [];
    this.pointTrend.clear();
    this.mimic = null;
    this.focus = null;
    this.range = { ms: HOUR };
    this.zooms = [];
    this.compare = false;
    this.picker = null;
  }

  onMessage(m) {
    if (m.type === 'snapshot') {
      this.view = m.data;
      for (const part of ['head', 'mimic', 'kpis', 'pumps', 'tanks', 'quality', 'power', 'env', 'cams']) this.dirty.add(part);
      this.feed(m.data.id, m.data.points);
      for (const d of [...(m.data.pumps || []), ...(m.data.tanks || []), ...(m.data.cameras || [])]) this.feed(d.id, d.points);
    } else if (m.type === 'delta' && this.view) {
      const d = m.data;
      if (d.kind === 'room') {
        Object.assign(this.view, d.room);
        for (const part of ['head', 'mimic', 'kpis', 'quality', 'power', 'env']) this.dirty.add(part);
        this.feed(this.view.id, d.room.points);
      } else if (d.kind === 'device') {
        const list = d.device.kind === 'pump' ? 'pumps' : d.device.kind === 'tank' ? 'tanks' : 'cameras';
        const arr = this.view[list] || (this.view[list] = []);
        const i = arr.findIndex((x) => x.id === d.device.id);
        if (i >= 0) arr[i] = d.device;
        else arr.push(d.device);
        this.dirty.add(list === 'cameras' ? 'cams' : list);
        this.dirty.add('mimic');
        this.feed(d.device.id, d.device.points);
      }
    } else {
      return;
    }
    this.schedule();
  }

  // Live values into the trends: `owner` is a room or device id, `points` its PointViews.
  feed(owner, points) {
    for (const p of points || []) {
      const name = `${owner}.${p.name}`;
      if (p.quality && p.quality.level !== 'bad') for (const trend of this.pointTrend.get(name) || []) trend.push(name, p.t, p.value);
    }
  }

  mark(part) {
    this.dirty.add(part);
    this.schedule();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  build() {
    const v = this.view;
    const th = (k) => `<th>${esc(t(k))}</th>`;
    const room = encodeURIComponent(v.id);
    const tabs = ROOM_TABS.length
      ? `<nav class="room-tabs" id="r-tabs"><a href="#/room/${room}">${esc(t('room.tab_live'))}</a>${ROOM_TABS.map((x) => `<a href="#/room/${room}/${x.id}" data-tab="${x.id}">${esc(t(x.label))}</a>`).join('')}</nav>`
      : '';
    this.root.innerHTML = `
      <div class="room-head" id="r-head"></div>${tabs}
      <div id="r-tab" hidden></div>
      <div id="r-live">
      <form class="sp-form" id="r-sp" hidden>
        <label>${esc(t('room.sp_label'))} <input id="r-sp-value" type="number" step="0.01" required> MPa</label>
        <button id="r-sp-write" type="submit">${esc(t('room.sp_write'))}</button>
        <span class="muted" id="r-sp-result"></span>
      </form>
      <div class="r-order" id="r-order"></div>
      <div class="panel mimic-panel"><h2>${esc(t('room.mimic'))}</h2><div id="r-mimic"></div></div>
      <div class="room-grid">
        <div class="panel span-12"><h2>${esc(t('room.alarms'))}</h2>
          <div class="table-scroll"><table class="grid alarms"><thead><tr>${th('room.col_raised')}${th('room.col_sev')}${th('room.col_state')}${th('room.col_rule')}${th('room.col_message')}<th></th></tr></thead>
          <tbody id="r-alarms"></tbody></table></div></div>
        <div class="panel span-12"><h2>${esc(t('room.trends'))}</h2><div id="r-range"></div><div id="r-add"></div><div class="trends" id="r-trends"></div></div>
        <div class="span-12 kpis" id="r-kpis"></div>
        <div class="panel span-5"><h2>${esc(t('room.pumps'))}</h2><div class="pumps" id="r-pumps"></div></div>
        <div class="panel span-7"><h2>${esc(t('room.tanks'))}</h2><div class="tanks" id="r-tanks"></div></div>
        <div class="panel span-3"><h2>${esc(t('room.quality'))}</h2><div class="kv" id="r-quality"></div></div>
        <div class="panel span-3"><h2>${esc(t('room.power'))}</h2><div class="kv" id="r-power"></div></div>
        <div class="panel span-3"><h2>${esc(t('room.env'))}</h2><div class="kv" id="r-env"></div></div>
        <div class="panel span-3"><h2>${esc(t('room.cameras'))}</h2><div class="cams" id="r-cams"></div></div>
      </div></div>`;
    this.alarmTable = new AlarmTable(this.root.querySelector('#r-alarms'), { room: false, empty: t('room.no_alarms') });
    this.mimic = new Mimic(this.root.querySelector('#r-mimic'), { onPoint: (point, label, unit) => this.focusTrend(point, label, unit) });
    this.built = true;
    this.buildSetpoint(v);
    this.buildOrder(v);
    this.buildTrends(v);
    for (const part of ['head', 'mimic', 'kpis', 'pumps', 'tanks', 'quality', 'power', 'env', 'cams', 'alarms']) this.dirty.add(part);
    this.flush();
    this.showTab(this.tab);
  }

  // A work order for this room by hand (dispatchers: operators and above).
  buildOrder(v) {
    const box = this.root.querySelector('#r-order');
    if (!['operator', 'rule-author', 'admin'].includes(this.role())) return;
    box.innerHTML = `<button type="button" class="r-new-order">${esc(t('neworder.from_room'))}</button><div class="r-order-form" hidden></div>`;
    box.querySelector('.r-new-order').addEventListener('click', (e) => {
      e.target.hidden = true;
      newOrderForm(box.querySelector('.r-order-form'), { room: v.id });
    });
  }

  // The set-point form: operators only, and only where the node writes to the room's controller
  // (a Modbus room; its tanks are the ones that take plans). Nothing is written before the
  // operator confirms old → new in a dialog showing the limits.
  buildSetpoint(v) {
    const form = this.root.querySelector('#r-sp');
    const input = form.querySelector('#r-sp-value');
    const canWrite = ['operator', 'rule-author', 'admin'].includes(this.role());
    form.hidden = !(canWrite && this.plans.length > 0);
    if (form.hidden) return;
    const current = () => value(this.view.points, 'outlet_setpoint') ?? (this.spec && this.spec.outlet_setpoint_mpa);
    const now = current();
    if (typeof now === 'number') input.value = now.toFixed(2);
    input.min = String(SETPOINT_LIMITS.min);
    input.max = String(SETPOINT_LIMITS.max);
    input.dataset.room = v.id;
    const room = v.id;
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const point = `${room}.outlet_setpoint`;
      const target = Number(input.value);
      const button = form.querySelector('#r-sp-write');
      const result = form.querySelector('#r-sp-result');
      result.textContent = '';
      // The point as an operator names it: the room and the set-point's label.
      const what = `${room} ${t('room.sp_label')}`;
      if (!(await this.confirmWrite({ what, old: current(), target, unit: 'MPa', limits: SETPOINT_LIMITS }))) return;
      button.disabled = true;
      result.textContent = t('room.sp_writing');
      try {
        const r = await post(`/api/v1/rooms/${encodeURIComponent(room)}/setpoints`, { writes: [{ point, value: target }] });
        const w = (r.written || [])[0];
        result.textContent = w ? t('room.sp_read_back', { value: num(w.read_back, 3) }) : t('room.sp_written');
        result.classList.toggle('abn', !!w && Math.abs(w.read_back - target) > 0.0015);
        this.toast(w ? t('room.sp_toast_read_back', { point: what, value: num(w.read_back, 3) }) : t('room.sp_toast_written', { point: what }), true);
      } catch (err) {
        result.textContent = t('room.sp_refused');
        this.toast(t('room.sp_not_written', { reason: writeError(err, target) }));
      } finally {
        button.disabled = false;
      }
    });
  }

  // A modal confirmation: the point (`what`, in the operator's words, not its id), old → new
  // with its unit, the limits; resolves true only on the confirm button. A value outside the
  // limits cannot be confirmed.
  confirmWrite({ what, old, target, unit, limits }) {
    const dlg = document.createElement('dialog');
    dlg.className = 'dialog confirm-write';
    const bad = !Number.isFinite(target) || target < limits.min || target > limits.max;
    dlg.innerHTML = `<form method="dialog">
      <h3>${esc(t('room.confirm_title'))}</h3>
      <div class="muted what">${esc(what)}</div>
      <div class="change"><span class="old">${esc(num(old, 2))}</span> → <b class="new">${esc(num(target, 2))}</b> ${esc(unit)}</div>
      <div class="limits">${esc(t('room.confirm_limits', { min: num(limits.min, 2), max: num(limits.max, 2), unit }))}</div>
      ${bad ? `<div class="abn range-error">${esc(t('room.sp_out_of_range', { value: num(target, 2), min: num(limits.min, 2), max: num(limits.max, 2) }))}</div>` : ''}
      <div class="buttons"><button value="cancel" class="cancel">${esc(t('room.cancel'))}</button>
      <button value="ok" class="ok"${bad ? ' disabled' : ''}>${esc(t('room.confirm'))}</button></div></form>`;
    document.body.appendChild(dlg);
    return new Promise((resolve) => {
      dlg.addEventListener('close', () => {
        resolve(dlg.returnValue === 'ok');
        dlg.remove();
      });
      dlg.showModal();
    });
  }

  // The trend charts of the room: the range picker over them, history for the range, then live.
  buildTrends(v) {
    const box = this.root.querySelector('#r-trends');
    const id = v.id;
    const short = (d) => d.split('/')[1];
    const defs = [
      { title: t('room.trend_pressure'), unit: 'MPa', d: 3, min: 0, series: [[`${id}.outlet_pressure`, t('room.s_outlet')], [`${id}.outlet_setpoint`, t('room.s_setpoint')], [`${id}.inlet_pressure`, t('room.s_inlet')]] },
      { title: t('room.trend_flow'), unit: 'm³/h', d: 1, min: 0, series: [[`${id}.outlet_flow`, t('room.s_outlet')], [`${id}.inlet_flow`, t('room.s_inlet')]] },
      { title: t('room.trend_level'), unit: 'm', d: 2, min: 0, series: (v.tanks || []).map((tk) => [`${tk.id}.level`, short(tk.id)]) },
      { title: t('room.trend_frequency'), unit: 'Hz', d: 1, min: 0, series: (v.pumps || []).map((p) => [`${p.id}.frequency`, short(p.id)]) },
      { title: t('room.chlorine'), unit: 'mg/L', d: 2, min: 0, series: [[`${id}.chlorine`, t('room.s_chlorine')]] },
      { title: t('room.active_power'), unit: 'kW', d: 1, min: 0, series: [[`${id}.active_power`, t('room.s_power')]] },
    ];
    this.picker = rangePicker(this.root.querySelector('#r-range'), {
      onRange: (range) => this.setRange(range, []),
      onUnzoom: () => this.setRange(this.zooms[this.zooms.length - 1] || { ms: HOUR }, this.zooms.slice(0, -1)),
      onCompare: (on) => {
        this.compare = on;
        this.reload();
      },
      onCsv: () => this.exportCsv(),
      onXlsx: () => this.exportXlsx(),
    });
    // Any point of this room offered by name; any other room's typed in full.
    const options = [v, ...(v.pumps || []), ...(v.tanks || [])].flatMap((d) => (d.points || []).map((p) => `${d.id}.${p.name}`));
    pointAdder(this.root.querySelector('#r-add'), { options, onAdd: (point) => this.addPoint(point) });
    for (const def of defs) {
      if (!def.series.length) continue;
      const tr = new Trend(box, { title: def.title, unit: def.unit, decimals: def.d, min: def.min ?? null, onZoom: (r) => this.zoom(r) });
      for (const [point, label] of def.series) this.attach(tr, point, label);
      this.trends.push(tr);
    }
    this.reload();
  }

  // A new range for every trend; `zooms` the ranges "back" returns to.
  setRange(range, zooms) {
    this.range = range;
    this.zooms = zooms;
    showRange(this.picker, range, zooms.length > 0);
    this.reload();
  }

  // A span dragged over on a chart: every trend shows it; "back" returns to the range before.
  zoom(range) {
    this.setRange(range, [...this.zooms, this.range]);
  }

  // A point chosen by id, of this room or any other: its own chart over the range, with a
  // button that removes it. Rejects with the reason a point cannot be shown.
  async addPoint(point) {
    const p = parsePoint(point);
    if (!p) throw new Error(t('trend.bad_point'));
    if ((this.pointTrend.get(point) || []).some((tr) => tr.box.classList.contains('added'))) return;
    const room = this.id;
    const v = p.room === room && this.view ? this.view : await get(`/api/v1/rooms/${encodeURIComponent(p.room)}`).catch(() => null);
    const owner = v && [v, ...(v.pumps || []), ...(v.tanks || []), ...(v.cameras || [])].find((d) => d.id === p.owner);
    const pv = owner && (owner.points || []).find((x) => x.name === p.name);
    if (!pv) throw new Error(t('trend.unknown_point'));
    if (this.id !== room) return;
    const box = this.root.querySelector('#r-trends');
    const tr = new Trend(box, { title: point, unit: pv.unit || '', decimals: pv.unit === 'MPa' ? 3 : 2, onZoom: (r) => this.zoom(r) });
    tr.box.classList.add('added');
    tr.box.dataset.point = point;
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'trend-remove';
    remove.textContent = t('trend.remove');
    remove.addEventListener('click', () => this.removeTrend(tr));
    tr.box.prepend(remove);
    this.attach(tr, point, p.owner === room ? p.name : point);
    this.trends.push(tr);
    this.reload();
  }

  removeTrend(tr) {
    this.trends = this.trends.filter((x) => x !== tr);
    for (const s of tr.series) this.pointTrend.set(s.name, (this.pointTrend.get(s.name) || []).filter((x) => x !== tr));
    tr.box.remove();
  }

  attach(trend, point, label) {
    trend.add(point, label);
    const list = this.pointTrend.get(point) || [];
    list.push(trend);
    this.pointTrend.set(point, list);
  }

  // History for every trend over the current range, in requests of at most 20 points (the
  // API's limit); live values extend a range that ends now.
  reload() {
    const to = typeof this.range.to === 'number' ? this.range.to : Date.now();
    const from = typeof this.range.from === 'number' ? this.range.from : to - this.range.ms;
    for (const tr of this.trends) tr.setRange(this.range);
    const all = [...this.pointTrend.keys()];
    const room = this.id;
    const errors = this.root.querySelector('#r-range .range-error');
    const loads = [];
    for (let i = 0; i < all.length; i += 20) {
      const chunk = all.slice(i, i + 20);
      const load = loadHistory(chunk, from, to)
        .then((series) => {
          if (this.id !== room) return;
          for (const [point, samples] of Object.entries(series)) for (const tr of this.pointTrend.get(point) || []) tr.seed(point, samples);
        })
        .catch((err) => {
          // No historian on this node: the trends start from the live values.
          if (this.id === room && errors && err.code !== 'no_history') errors.textContent = apiError(err);
        });
      loads.push(load);
      if (this.compare) {
        // The same span just before: yesterday for the last 24 h, drawn on today's axis.
        const shift = to - from;
        const range = this.range;
        const prev = loadHistory(chunk, from - shift, to - shift)
          .then((series) => {
            if (this.id !== room || this.range !== range) return;
            for (const [point, samples] of Object.entries(series)) for (const tr of this.pointTrend.get(point) || []) tr.seedPrevious(point, samples, shift);
          })
          .catch(() => {
            // Shown once above: the same historian answers both.
          });
        loads.push(prev);
      }
    }
    for (const tr of this.trends) tr.schedule();
    // User Timing for the console's performance figures: the range's history drawn.
    Promise.all(loads).then(() => requestAnimationFrame(() => performance.mark('cistern:trends-drawn', { detail: { points: all.length } })));
  }

  // A point clicked on the mimic: its own trend, first in the trends panel, over the range.
  focusTrend(point, label, unit) {
    const box = this.root.querySelector('#r-trends');
    if (this.focus) {
      const old = this.focus;
      this.trends = this.trends.filter((x) => x !== old);
      for (const s of old.series) this.pointTrend.set(s.name, (this.pointTrend.get(s.name) || []).filter((x) => x !== old));
      old.box.remove();
    }
    const tr = new Trend(box, { title: label, unit, decimals: unit === 'MPa' ? 3 : 2, min: 0, onZoom: (r) => this.zoom(r) });
    tr.box.classList.add('focus');
    tr.box.dataset.point = point;
    box.prepend(tr.box);
    this.attach(tr, point, label);
    this.trends.unshift(tr);
    this.focus = tr;
    this.reload();
    tr.box.scrollIntoView({ block: 'center' });
  }

  // What the trends show, as one CSV file per chart joined into one download.
  exportCsv() {
    const text = this.trends.map((tr) => `${tr.title}\r\n${tr.csv()}`).join('\r\n');
    download(`${this.id}-trends.csv`, text);
  }

  // What the trends show as one sheet: a time column and a column per point.
  exportXlsx() {
    downloadBlob(`${this.id}-trends.xlsx`, xlsxBlob(this.trends, this.id));
  }

  flush() {
    this.frame = 0;
    if (!this.built || !this.view) return;
    const v = this.view;
    // User Timing for the console's performance figures: the opened room's mimic first drawn
    // with live values (the actors' state, by REST or the room's topic, whichever came first).
    if (this.markedLive !== this.id && this.dirty.has('mimic')) {
      this.markedLive = this.id;
      requestAnimationFrame(() => performance.mark('cistern:room-live', { detail: { room: this.id } }));
    }
    const $ = (s) => this.root.querySelector(s);
    for (const part of this.dirty) {
      if (part === 'head') $('#r-head').innerHTML = this.head(v);
      else if (part === 'mimic') this.mimic.render(v, this.spec);
      else if (part === 'kpis') $('#r-kpis').innerHTML = this.kpis(v);
      else if (part === 'pumps') {
        const box = $('#r-pumps');
        box.innerHTML = this.pumps(v);
        // Widths through the CSSOM: the page's CSP refuses inline style attributes.
        for (const bar of box.querySelectorAll('[data-w]')) bar.style.width = `${bar.dataset.w}%`;
      }
      else if (part === 'tanks') this.tanks($('#r-tanks'), v);
      else if (part === 'quality') $('#r-quality').innerHTML = this.quality(v);
      else if (part === 'power') $('#r-power').innerHTML = this.power(v);
      else if (part === 'env') $('#r-env').innerHTML = this.env(v);
      else if (part === 'cams') $('#r-cams').innerHTML = this.cams(v);
      else if (part === 'alarms') this.alarmTable.render(this.board.list((a) => a.room === v.id));
    }
    this.dirty.clear();
  }

  head(v) {
    const status = v.status || 'unknown';
    const name = nameLabel(v);
    const skew = v.clock_skew ? ` · <span class="abn">${esc(t('room.clock_skew', { s: Math.round(v.clock_skew.ahead_s) }))}</span>` : '';
    // Names and the address are the inventory's data (Chinese, pinyin for English), marked so.
    return `<h1>${esc(v.id)}${name ? ` · <span class="inv-name">${esc(name)}</span>` : ''}</h1>
      <span class="muted inv-name">${esc(addressLabel(v))}</span>
      <span class="muted">${t('room.zone', { zone: `<span class="inv-name">${esc(zoneLabel(v.zone))}</span>` })} · ${esc(t('room.coords', { lat: num(v.lat, 4), lon: num(v.lon, 4) }))}</span>
      <span class="status ${esc(status)}">${esc(t(`room.status_${status}`))}</span>
      ${this.freshness(v)}${skew}`;
  }

  // How fresh the room's values are: a room that answers but whose newest good sample is old
  // is not "online · last data 1 s ago" — its values are stale, and the head says so.
  freshness(v) {
    const last = v.last_data ?? v.last_seen;
    const text = esc(t('room.last_data', { ago: ago(last) }));
    const stale = v.status === 'online' && (typeof last !== 'number' || Date.now() - last > STALE_MS);
    return stale ? `<span class="abn">${esc(t('room.stale_data'))} · ${text}</span>` : `<span class="muted">${text}</span>`;
  }

  kpis(v) {
    const d = v.derived || {};
    const sp = d.outlet_setpoint_mpa;
    const out = d.outlet_pressure_mpa;
    const kpi = (k, val, unit, dec, abn = false) =>
      `<div class="kpi"><div class="k">${esc(t(k))}</div><span class="v${abn ? ' abn' : ''}">${esc(num(val, dec))}</span><span class="u">${esc(unit)}</span></div>`;
    const mains = d.mains === true ? t('room.mains_on') : d.mains === false ? t('room.mains_lost') : '—';
    return `<div class="kpi"><div class="k">${esc(t('room.mains'))}</div><span class="v${d.mains === false ? ' abn' : ''}">${esc(mains)}</span></div>` +
      kpi('room.inlet_pressure', d.inlet_pressure_mpa, 'MPa', 3, typeof d.inlet_pressure_mpa === 'number' && d.inlet_pressure_mpa < 0.05) +
      kpi('room.outlet_pressure', out, t('room.sp_unit', { sp: num(sp, 2) }), 3, typeof out === 'number' && typeof sp === 'number' && Math.abs(out - sp) > 0.1) +
      kpi('room.outlet_flow', d.outlet_flow_m3h, 'm³/h', 1) +
      kpi('room.active_power', d.active_power_kw, 'kW', 2) +
      kpi('room.energy_intensity', d.energy_intensity_kwh_m3, 'kWh/m³', 2);
  }

  pumps(v) {
    const specs = (this.spec && this.spec.pumps) || [];
    if (!(v.pumps || []).length) return `<span class="empty">${esc(t('room.no_pumps'))}</span>`;
    return v.pumps.map((p, i) => {
      const d = p.derived || {};
      const rated = specs[i] ? specs[i].rated_power_kw : null;
      const status = d.status || 'unknown';
      // The derived state is withheld while the readings are not good: show the last readings, greyed.
      const fz = typeof d.frequency_hz === 'number' ? d.frequency_hz : value(p.points, 'frequency');
      const pk = typeof d.power_kw === 'number' ? d.power_kw : value(p.points, 'power');
      const freq = fz || 0;
      const pw = pk || 0;
      const q = quality(p.points, 'frequency');
      const dim = q === 'stale' || q === 'uncertain' ? ` class="stale" title="${esc(qualityText(q))}"` : '';
      const hours = value(p.points, 'run_hours');
      const starts = value(p.points, 'starts');
      const current = value(p.points, 'current');
      const role = d.role ? t(`room.role_${d.role}`) : '';
      return `<div class="pump" data-device="${esc(p.id)}">
        <div class="name"><span>${esc(p.id.split('/')[1])} <span class="muted">${esc(role)}</span></span><span class="st ${esc(status)}">${esc(t(`mimic.pump_${status}`))}</span></div>
        <div class="line"><span class="k">${esc(t('room.frequency'))}</span><span${dim}>${num(fz, 1)} Hz</span></div>
        <div class="bar" title="0–50 Hz"><span data-w="${Math.min(100, (freq / 50) * 100).toFixed(1)}"></span></div>
        <div class="line"><span class="k">${esc(t('room.power_kw'))}</span><span${dim}>${num(pk, 2)} kW${rated ? ` / ${num(rated, 1)}` : ''}</span></div>
        <div class="bar" title="${esc(t('room.of_rated'))}"><span data-w="${rated ? Math.min(100, (pw / rated) * 100).toFixed(1) : 0}"></span></div>
        <div class="line"><span class="k">${esc(t('room.current'))}</span><span>${num(current, 1)} A</span></div>
        <div class="line"><span class="k">${esc(t('room.run_hours'))}</span><span>${esc(t('room.hours', { h: num(hours, 0) }))}</span></div>
        <div class="line"><span class="k">${esc(t('room.starts'))}</span><span>${num(starts, 0)}</span></div>
      </div>`;
    }).join('');
  }

  tanks(box, v) {
    const specs = (this.spec && this.spec.tanks) || [];
    box.replaceChildren();
    if (!(v.tanks || []).length) {
      box.innerHTML = `<span class="empty">${esc(t('room.no_tanks'))}</span>`;
      return;
    }
    // One scale for every tank of the room, so that their heights compare.
    const maxH = Math.max(...specs.map((s) => s.height_m), 1);
    const px = 170 / maxH;
    v.tanks.forEach((tk, i) => {
      const s = specs[i];
      const d = tk.derived || {};
      const wrap = document.createElement('div');
      wrap.className = 'tank';
      wrap.dataset.device = tk.id;
      const H = s ? s.height_m : maxH;
      const W = 64;
      const top = 12;
      const svgH = top + maxH * px + 16;
      const y = (m) => top + (maxH - m) * px;
      const svg = document.createElementNS(NS, 'svg');
      svg.setAttribute('width', String(W + 150));
      svg.setAttribute('height', String(svgH.toFixed(0)));
      svg.setAttribute('viewBox', `0 0 ${W + 150} ${svgH.toFixed(0)}`);
      const add = (name, attrs, text) => {
        const e = document.createElementNS(NS, name);
        for (const [k, val] of Object.entries(attrs)) e.setAttribute(k, String(val));
        if (text !== undefined) e.textContent = text;
        svg.appendChild(e);
        return e;
      };
      const x0 = 30;
      for (let m = 0; m <= H + 1e-9; m += 1) {
        add('line', { class: 'axis', x1: x0 - 5, x2: x0, y1: y(m), y2: y(m) });
        add('text', { x: x0 - 8, y: y(m) + 3, 'text-anchor': 'end' }, `${m}`);
      }
      add('rect', { class: 'tank-shell', x: x0, y: y(H), width: W, height: H * px });
      // Derived figures are withheld while the level is not good: draw the last reading, greyed.
      const raw = typeof d.level_m === 'number' ? d.level_m : value(tk.points, 'level');
      const q = quality(tk.points, 'level');
      const level = raw === null ? null : Math.max(0, Math.min(H, raw));
      if (level !== null) add('rect', { class: q === 'good' ? 'water' : 'water stale', x: x0 + 1, y: y(level), width: W - 2, height: level * px });
      const mark = (cls, m, label) => {
        if (!(m > 0)) return;
        add('line', { class: `mark ${cls}`, x1: x0, x2: x0 + W + 6, y1: y(m), y2: y(m) });
        add('text', { x: x0 + W + 9, y: y(m) + 3 }, label);
      };
      if (s) {
        mark('ovf', s.overflow_m, t('room.mark_overflow', { m: num(s.overflow_m, 2) }));
        mark('fire', s.fire_reserve_m, t('room.mark_fire', { m: num(s.fire_reserve_m, 2) }));
        mark('min', s.hard_min_m, t('room.mark_min', { m: num(s.hard_min_m, 2) }));
      }
      add('text', { x: x0 + W / 2, y: svgH - 3, 'text-anchor': 'middle' }, `${tk.id.split('/')[1]} · m`);
      wrap.appendChild(svg);
      const facts = document.createElement('div');
      facts.className = 'facts';
      const lowAut = typeof d.autonomy_h === 'number' && d.autonomy_h < 4;
      facts.innerHTML = `<div class="big${q === 'good' ? '' : ' stale'}" title="${esc(qualityText(q))}">${num(raw, 2)} m</div>
        <div>${esc(t('room.level_of', { pct: num(d.level_pct, 0), h: num(H, 1) }))}</div>
        <div>${esc(t('room.volume', { v: num(d.volume_m3, 1), usable: num(d.usable_m3, 1) }))}</div>
        <div class="${lowAut ? 'abn' : ''}">${esc(t('room.autonomy', { h: num(d.autonomy_h, 1), demand: num(d.demand_m3h, 1) }))}</div>
        <div>${esc(d.inlet_open ? t('room.valve_open') : t('room.valve_closed'))}</div>
        ${d.overflow ? `<div class="abn">${esc(t('mimic.overflow'))}</div>` : ''}${d.low_low ? `<div class="abn">${esc(t('mimic.low_low'))}</div>` : ''}`;
      wrap.appendChild(facts);
      const plan = this.plans.find((p) => p.tank === tk.id);
      wrap.appendChild(tankPlanBlock(plan, value(tk.points, 'fill_mode')));
      box.appendChild(wrap);
    });
  }

  quality(v) {
    return QUALITY.map((q) => pointRow(v.points, q.name, `${t(q.label)} (${q.range})`, q.unit, { d: q.d, abn: (val) => abnormal(val, q.lo, q.hi) })).join('');
  }

  power(v) {
    const p = v.points;
    // GB/T 12325: ±7 % of 380 V.
    const off = (x) => x !== null && Math.abs(x - 380) / 380 > 0.07;
    return ['a', 'b', 'c'].map((ph) => pointRow(p, `voltage_${ph}`, t('room.voltage', { phase: ph.toUpperCase() }), 'V', { d: 1, abn: off })).join('') +
      ['a', 'b', 'c'].map((ph) => pointRow(p, `current_${ph}`, t('room.phase_current', { phase: ph.toUpperCase() }), 'A', { d: 1 })).join('') +
      pointRow(p, 'power_factor', t('mimic.power_factor'), '', { d: 3 }) +
      pointRow(p, 'active_power', t('room.active_power'), 'kW', { d: 2 }) +
      pointRow(p, 'energy', t('mimic.energy'), 'kWh', { d: 0 });
  }

  env(v) {
    const p = v.points;
    const on = (name, key, bad = true) => {
      const f = flag(p, name);
      const text = f === null ? '—' : f ? t('mimic.yes') : t('mimic.no');
      return `<span class="k">${esc(t(key))}</span><span class="v${f && bad ? ' abn' : ''}">${esc(text)}</span><span class="u"></span>`;
    };
    return pointRow(p, 'temperature', t('mimic.temperature'), '°C', { d: 1 }) +
      pointRow(p, 'humidity', t('mimic.humidity'), '%', { d: 0 }) +
      on('flooding', 'mimic.flooding') + on('smoke', 'mimic.smoke') + on('door', 'mimic.door', false) +
      on('armed', 'mimic.armed', false) + on('intrusion', 'mimic.intrusion') + on('siren', 'room.siren');
  }

  cams(v) {
    if (!(v.cameras || []).length) return `<span class="empty">${esc(t('mimic.no_cameras'))}</span>`;
    return v.cameras.map((c) => {
      const d = c.derived || {};
      const marks = (d.bookmarks || []).length;
      // Unknown (no reading yet, or stale) reads as unknown, not as a fault.
      const unknown = `<span class="muted">${esc(t('mimic.unknown'))}</span>`;
      const online = d.online === false ? `<span class="abn">${esc(t('mimic.cam_offline'))}</span>` : d.online === true ? esc(t('mimic.cam_online')) : unknown;
      const rec = d.recording === true ? esc(t('room.cam_rec')) : d.recording === false ? `<span class="abn">${esc(t('mimic.cam_not_recording'))}</span>` : unknown;
      const extra = `${d.motion ? ` · ${esc(t('room.cam_motion'))}` : ''}${marks ? ` · ${esc(t('room.bookmarks', { n: marks }))}` : ''}`;
      return `<div class="cam" data-device="${esc(c.id)}"><span><b>${esc(c.id.split('/')[1])}</b> <span class="inv-name">${esc(d.name || '')}</span></span>
        <span>${online} · ${rec}${extra}</span></div>`;
    }).join('');
  }
}
