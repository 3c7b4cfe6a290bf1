// The room page: live state from the `room` topic (a RoomView snapshot, then room and device
// deltas), the room's alarms from the shared board, tanks drawn to scale against their
// nameplate (height, overflow, fire reserve, hard minimum), and trends seeded from history.
// Panels are re-rendered at most once per animation frame, each only when its part changed.
// Each tank shows its fill mode (live) and its current fill plan (REST, refreshed once a minute
// while the page is open); operators of a Modbus room may write its outlet pressure set-point.

import { esc, num, ago, quality, value, zoneLabel } from './format.js';
import { AlarmTable } from './alarms.js';
import { Trend } from './trend.js';
import { get, post, history } from './api.js';
import { REFRESH_MS, tankPlanBlock } from './plans.js';

const NS = 'http://www.w3.org/2000/svg';
const HOUR = 3600_000;
// Drinking-water limits (GB 5749-2022): what the quality panel marks as abnormal.
const QUALITY = [
  { name: 'chlorine', label: 'Free chlorine', unit: 'mg/L', d: 2, lo: 0.05, hi: 2, range: '0.05–2' },
  { name: 'turbidity', label: 'Turbidity', unit: 'NTU', d: 2, lo: null, hi: 1, range: '≤ 1' },
  { name: 'ph', label: 'pH', unit: '', d: 2, lo: 6.5, hi: 8.5, range: '6.5–8.5' },
];

function abnormal(v, lo, hi) {
  return v !== null && ((lo !== null && v < lo) || (hi !== null && v > hi));
}

// A labelled value; `q` its quality (a stale or uncertain value is greyed and says so).
function kvRow(label, v, unit, { d = 1, abn = false, q = 'good' } = {}) {
  const dim = q === 'stale' || q === 'uncertain';
  const cls = v === null ? 'v bad' : abn ? 'v abn' : dim ? 'v stale' : 'v';
  const title = dim ? ` title="${esc(q)}"` : '';
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
    this.pointTrend = new Map(); // point id -> Trend
  }

  open(id) {
    if (this.id === id) return;
    this.close();
    this.id = id;
    this.view = null;
    this.root.innerHTML = `
      <div class="room-head"><h1>${esc(id)}</h1><span class="muted">loading…</span></div>`;
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
      })
      .catch((e) => {
        if (this.id === id) this.root.innerHTML = `<div class="room-head"><h1>${esc(id)}</h1><span class="status offline">${esc(e.message)}</span></div>`;
      });
  }

  // Plans change at most once per planning round: the open room's are re-read now and then.
  refreshPlans(id) {
    get(`/api/v1/rooms/${encodeURIComponent(id)}`)
      .then((v) => {
        if (this.id !== id) return;
        this.plans = v.tank_plans || [];
        this.mark('tanks');
      })
      .catch(() => {
        // Kept: the last plans shown stay until the next read succeeds.
      });
  }

  close() {
    if (this.planTimer) clearInterval(this.planTimer);
    this.planTimer = 0;
    this.plans = [];
    if (this.unsub) this.unsub();
    if (this.unboard) this.unboard();
    this.unsub = null;
    this.unboard = null;
    this.id = null;
    this.built = false;
    this.trends = [];
    this.pointTrend.clear();
  }

  onMessage(m) {
    if (m.type === 'snapshot') {
      this.view = m.data;
      for (const part of ['head', 'kpis', 'pumps', 'tanks', 'quality', 'power', 'env', 'cams']) this.dirty.add(part);
      this.feed(m.data.id, m.data.points);
      for (const d of [...(m.data.pumps || []), ...(m.data.tanks || []), ...(m.data.cameras || [])]) this.feed(d.id, d.points);
    } else if (m.type === 'delta' && this.view) {
      const d = m.data;
      if (d.kind === 'room') {
        Object.assign(this.view, d.room);
        for (const part of ['head', 'kpis', 'quality', 'power', 'env']) this.dirty.add(part);
        this.feed(this.view.id, d.room.points);
      } else if (d.kind === 'device') {
        const list = d.device.kind === 'pump' ? 'pumps' : d.device.kind === 'tank' ? 'tanks' : 'cameras';
        const arr = this.view[list] || (this.view[list] = []);
        const i = arr.findIndex((x) => x.id === d.device.id);
        if (i >= 0) arr[i] = d.device;
        else arr.push(d.device);
        this.dirty.add(list === 'cameras' ? 'cams' : list);
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
      const trend = this.pointTrend.get(`${owner}.${p.name}`);
      if (trend && p.quality && p.quality.level !== 'bad') trend.push(`${owner}.${p.name}`, p.t, p.value);
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
    this.root.innerHTML = `
      <div class="room-head" id="r-head"></div>
      <form class="sp-form" id="r-sp" hidden>
        <label>Outlet pressure set-point <input id="r-sp-value" type="number" step="0.01" required> MPa</label>
        <button id="r-sp-write" type="submit">Write</button>
        <span class="muted" id="r-sp-result"></span>
      </form>
      <div class="kpis" id="r-kpis"></div>
      <div class="room-grid">
        <div class="panel span-5"><h2>Pumps</h2><div class="pumps" id="r-pumps"></div></div>
        <div class="panel span-7"><h2>Tanks</h2><div class="tanks" id="r-tanks"></div></div>
        <div class="panel span-3"><h2>Water quality</h2><div class="kv" id="r-quality"></div></div>
        <div class="panel span-3"><h2>Power</h2><div class="kv" id="r-power"></div></div>
        <div class="panel span-3"><h2>Environment &amp; security</h2><div class="kv" id="r-env"></div></div>
        <div class="panel span-3"><h2>Cameras</h2><div class="cams" id="r-cams"></div></div>
        <div class="panel span-12"><h2>Alarms</h2>
          <table class="grid alarms"><thead><tr><th>Raised</th><th>Sev</th><th>State</th><th>Rule</th><th>Message</th><th></th></tr></thead>
          <tbody id="r-alarms"></tbody></table></div>
        <div class="panel span-12"><h2>Trends</h2><div class="trends" id="r-trends"></div></div>
      </div>`;
    this.alarmTable = new AlarmTable(this.root.querySelector('#r-alarms'), { room: false, empty: 'No alarms in this room.' });
    this.built = true;
    this.buildSetpoint(v);
    this.buildTrends(v);
    for (const part of ['head', 'kpis', 'pumps', 'tanks', 'quality', 'power', 'env', 'cams', 'alarms']) this.dirty.add(part);
    this.flush();
  }

  // The set-point form: operators only, and only where the node writes to the room's controller
  // (a Modbus room; its tanks are the ones that take plans).
  buildSetpoint(v) {
    const form = this.root.querySelector('#r-sp');
    const input = form.querySelector('#r-sp-value');
    const canWrite = ['operator', 'rule-author', 'admin'].includes(this.role());
    form.hidden = !(canWrite && this.plans.length > 0);
    if (form.hidden) return;
    const current = value(v.points, 'outlet_setpoint') ?? (this.spec && this.spec.outlet_setpoint_mpa);
    if (typeof current === 'number') input.value = current.toFixed(2);
    input.dataset.room = v.id;
    const room = v.id;
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const point = `${room}.outlet_setpoint`;
      const target = Number(input.value);
      const button = form.querySelector('#r-sp-write');
      const result = form.querySelector('#r-sp-result');
      button.disabled = true;
      result.textContent = 'writing…';
      try {
        const r = await post(`/api/v1/rooms/${encodeURIComponent(room)}/setpoints`, { writes: [{ point, value: target }] });
        const w = (r.written || [])[0];
        const text = w ? `${point}: read back ${num(w.read_back, 3)} MPa` : `${point}: written`;
        result.textContent = w ? `read back ${num(w.read_back, 3)} MPa` : 'written';
        this.toast(text, true);
      } catch (err) {
        result.textContent = 'refused';
        this.toast(`Set-point not written: ${err.message}`);
      } finally {
        button.disabled = false;
      }
    });
  }

  buildTrends(v) {
    const box = this.root.querySelector('#r-trends');
    const id = v.id;
    const defs = [
      { title: 'Outlet pressure', unit: 'MPa', d: 3, series: [[`${id}.outlet_pressure`, 'outlet'], [`${id}.outlet_setpoint`, 'set-point'], [`${id}.inlet_pressure`, 'inlet']] },
      { title: 'Flow', unit: 'm³/h', d: 1, series: [[`${id}.outlet_flow`, 'outlet'], [`${id}.inlet_flow`, 'inlet']] },
      { title: 'Tank level', unit: 'm', d: 2, series: (v.tanks || []).map((t) => [`${t.id}.level`, t.id.split('/')[1]]) },
      { title: 'Pump frequency', unit: 'Hz', d: 1, min: 0, series: (v.pumps || []).map((p) => [`${p.id}.frequency`, p.id.split('/')[1]]) },
      { title: 'Free chlorine', unit: 'mg/L', d: 2, series: [[`${id}.chlorine`, 'Cl']] },
      { title: 'Active power', unit: 'kW', d: 1, min: 0, series: [[`${id}.active_power`, 'P']] },
    ];
    const all = [];
    for (const def of defs) {
      if (!def.series.length) continue;
      const t = new Trend(box, { title: def.title, unit: def.unit, decimals: def.d, min: def.min ?? null });
      for (const [point, label] of def.series) {
        t.add(point, label);
        this.pointTrend.set(point, t);
        all.push(point);
      }
      this.trends.push(t);
    }
    // History in requests of at most 20 points (the API's limit).
    const to = Date.now();
    const from = to - HOUR;
    const room = this.id;
    for (let i = 0; i < all.length; i += 20) {
      const chunk = all.slice(i, i + 20);
      history(chunk, from, to)
        .then((series) => {
          if (this.id !== room) return;
          for (const [point, samples] of Object.entries(series)) this.pointTrend.get(point)?.seed(point, samples);
        })
        .catch(() => {
          // No historian on this node: the trends start from the live values.
        });
    }
    for (const t of this.trends) t.schedule();
  }

  flush() {
    this.frame = 0;
    if (!this.built || !this.view) return;
    const v = this.view;
    const $ = (s) => this.root.querySelector(s);
    for (const part of this.dirty) {
      if (part === 'head') $('#r-head').innerHTML = this.head(v);
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
    return `<h1>${esc(v.id)} · ${esc(v.name)}</h1>
      <span class="muted">${esc(v.address || '')}</span>
      <span class="muted">zone ${esc(zoneLabel(v.zone))} · ${num(v.lat, 4)}°N ${num(v.lon, 4)}°E</span>
      <span class="status ${esc(status)}">${esc(status.toUpperCase())}</span>
      <span class="muted">last data ${esc(ago(v.last_data ?? v.last_seen))}${v.clock_skew ? ` · <span class="abn" lang="zh-CN">网关时钟超前 ${Math.round(v.clock_skew.ahead_s)} 秒</span> <span class="abn" lang="en">(gateway clock ${Math.round(v.clock_skew.ahead_s)} s ahead)</span>` : ''}</span>`;
  }

  kpis(v) {
    const d = v.derived || {};
    const sp = d.outlet_setpoint_mpa;
    const out = d.outlet_pressure_mpa;
    const kpi = (k, val, unit, dec, abn = false) =>
      `<div class="kpi"><div class="k">${esc(k)}</div><span class="v${abn ? ' abn' : ''}">${esc(num(val, dec))}</span><span class="u">${esc(unit)}</span></div>`;
    const mains = d.mains === true ? 'ON' : d.mains === false ? 'LOST' : '—';
    return `<div class="kpi"><div class="k">Mains</div><span class="v${d.mains === false ? ' abn' : ''}">${mains}</span></div>` +
      kpi('Inlet pressure', d.inlet_pressure_mpa, 'MPa', 3, typeof d.inlet_pressure_mpa === 'number' && d.inlet_pressure_mpa < 0.05) +
      kpi('Outlet pressure', out, `MPa (sp ${num(sp, 2)})`, 3, typeof out === 'number' && typeof sp === 'number' && Math.abs(out - sp) > 0.1) +
      kpi('Outlet flow', d.outlet_flow_m3h, 'm³/h', 1) +
      kpi('Power', d.active_power_kw, 'kW', 2) +
      kpi('Energy intensity', d.energy_intensity_kwh_m3, 'kWh/m³', 2);
  }

  pumps(v) {
    const specs = (this.spec && this.spec.pumps) || [];
    if (!(v.pumps || []).length) return '<span class="empty">No pumps.</span>';
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
      const dim = q === 'stale' || q === 'uncertain' ? ` class="stale" title="${esc(q)}"` : '';
      const hours = value(p.points, 'run_hours');
      const starts = value(p.points, 'starts');
      const current = value(p.points, 'current');
      return `<div class="pump" data-device="${esc(p.id)}">
        <div class="name"><span>${esc(p.id.split('/')[1])} <span class="muted">${esc(d.role || '')}</span></span><span class="st ${esc(status)}">${esc(status.toUpperCase())}</span></div>
        <div class="line"><span class="k">Frequency</span><span${dim}>${num(fz, 1)} Hz</span></div>
        <div class="bar" title="0–50 Hz"><span data-w="${Math.min(100, (freq / 50) * 100).toFixed(1)}"></span></div>
        <div class="line"><span class="k">Power</span><span${dim}>${num(pk, 2)} kW${rated ? ` / ${num(rated, 1)}` : ''}</span></div>
        <div class="bar" title="of rated power"><span data-w="${rated ? Math.min(100, (pw / rated) * 100).toFixed(1) : 0}"></span></div>
        <div class="line"><span class="k">Current</span><span>${num(current, 1)} A</span></div>
        <div class="line"><span class="k">Run hours</span><span>${num(hours, 0)} h</span></div>
        <div class="line"><span class="k">Starts</span><span>${num(starts, 0)}</span></div>
      </div>`;
    }).join('');
  }

  tanks(box, v) {
    const specs = (this.spec && this.spec.tanks) || [];
    box.replaceChildren();
    if (!(v.tanks || []).length) {
      box.innerHTML = '<span class="empty">No tanks.</span>';
      return;
    }
    // One scale for every tank of the room, so that their heights compare.
    const maxH = Math.max(...specs.map((s) => s.height_m), 1);
    const px = 170 / maxH;
    v.tanks.forEach((t, i) => {
      const s = specs[i];
      const d = t.derived || {};
      const wrap = document.createElement('div');
      wrap.className = 'tank';
      wrap.dataset.device = t.id;
      const H = s ? s.height_m : maxH;
      const W = 64;
      const top = 12;
      const svgH = top + maxH * px + 16;
      const y = (m) => top + (maxH - m) * px;
      const svg = document.createElementNS(NS, 'svg');
      svg.setAttribute('width', String(W + 150));
      svg.setAttribute('height', String(svgH.toFixed(0)));
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
      add('rect', { class: 'shell', x: x0, y: y(H), width: W, height: H * px });
      // Derived figures are withheld while the level is not good: draw the last reading, greyed.
      const raw = typeof d.level_m === 'number' ? d.level_m : value(t.points, 'level');
      const q = quality(t.points, 'level');
      const level = raw === null ? null : Math.max(0, Math.min(H, raw));
      if (level !== null) add('rect', { class: q === 'good' ? 'water' : 'water stale', x: x0 + 1, y: y(level), width: W - 2, height: level * px });
      const mark = (cls, m, label) => {
        if (!(m > 0)) return;
        add('line', { class: `mark ${cls}`, x1: x0, x2: x0 + W + 6, y1: y(m), y2: y(m) });
        add('text', { x: x0 + W + 9, y: y(m) + 3 }, label);
      };
      if (s) {
        mark('ovf', s.overflow_m, `overflow ${num(s.overflow_m, 2)}`);
        mark('fire', s.fire_reserve_m, `fire reserve ${num(s.fire_reserve_m, 2)}`);
        mark('min', s.hard_min_m, `hard min ${num(s.hard_min_m, 2)}`);
      }
      add('text', { x: x0 + W / 2, y: svgH - 3, 'text-anchor': 'middle' }, `${t.id.split('/')[1]} · m`);
      wrap.appendChild(svg);
      const facts = document.createElement('div');
      facts.className = 'facts';
      const lowAut = typeof d.autonomy_h === 'number' && d.autonomy_h < 4;
      facts.innerHTML = `<div class="big${q === 'good' ? '' : ' stale'}" title="${esc(q)}">${num(raw, 2)} m</div>
        <div>${num(d.level_pct, 0)} % of ${num(H, 1)} m</div>
        <div>${num(d.volume_m3, 1)} m³ · usable ${num(d.usable_m3, 1)} m³</div>
        <div class="${lowAut ? 'abn' : ''}">autonomy <b>${num(d.autonomy_h, 1)} h</b> at ${num(d.demand_m3h, 1)} m³/h</div>
        <div>inlet valve ${d.inlet_open ? 'open' : 'closed'}</div>
        ${d.overflow ? '<div class="abn">OVERFLOW</div>' : ''}${d.low_low ? '<div class="abn">LOW-LOW FLOAT</div>' : ''}`;
      wrap.appendChild(facts);
      const plan = this.plans.find((p) => p.tank === t.id);
      wrap.appendChild(tankPlanBlock(plan, value(t.points, 'fill_mode')));
      box.appendChild(wrap);
    });
  }

  quality(v) {
    return QUALITY.map((q) => pointRow(v.points, q.name, `${q.label} (${q.range})`, q.unit, { d: q.d, abn: (val) => abnormal(val, q.lo, q.hi) })).join('');
  }

  power(v) {
    const p = v.points;
    // GB/T 12325: ±7 % of 380 V.
    const off = (x) => x !== null && Math.abs(x - 380) / 380 > 0.07;
    return ['a', 'b', 'c'].map((ph) => pointRow(p, `voltage_${ph}`, `Voltage ${ph.toUpperCase()}`, 'V', { d: 1, abn: off })).join('') +
      ['a', 'b', 'c'].map((ph) => pointRow(p, `current_${ph}`, `Current ${ph.toUpperCase()}`, 'A', { d: 1 })).join('') +
      pointRow(p, 'power_factor', 'Power factor', '', { d: 3 }) +
      pointRow(p, 'active_power', 'Active power', 'kW', { d: 2 }) +
      pointRow(p, 'energy', 'Energy', 'kWh', { d: 0 });
  }

  env(v) {
    const p = v.points;
    const on = (name, label, bad = true) => {
      const f = flag(p, name);
      const text = f === null ? '—' : f ? 'YES' : 'no';
      return `<span class="k">${esc(label)}</span><span class="v${f && bad ? ' abn' : ''}">${text}</span><span class="u"></span>`;
    };
    return pointRow(p, 'temperature', 'Temperature', '°C', { d: 1 }) +
      pointRow(p, 'humidity', 'Humidity', '%', { d: 0 }) +
      on('flooding', 'Flooding') + on('smoke', 'Smoke') + on('door', 'Door open', false) +
      on('armed', 'Armed', false) + on('intrusion', 'Intrusion') + on('siren', 'Siren');
  }

  cams(v) {
    if (!(v.cameras || []).length) return '<span class="empty">No cameras.</span>';
    return v.cameras.map((c) => {
      const d = c.derived || {};
      const marks = (d.bookmarks || []).length;
      return `<div class="cam" data-device="${esc(c.id)}"><span><b>${esc(c.id.split('/')[1])}</b> ${esc(d.name || '')}</span>
        <span>${d.online === false ? '<span class="abn">OFFLINE</span>' : 'online'} · ${d.recording ? 'rec' : '<span class="abn">not recording</span>'}${d.motion ? ' · motion' : ''}${marks ? ` · ${marks} bookmark${marks > 1 ? 's' : ''}` : ''}</span></div>`;
    }).join('');
  }
}
