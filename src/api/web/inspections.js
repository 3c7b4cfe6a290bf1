// Online inspection (线上巡检, issue 21 item 7) on screen. #/inspections: coverage (plans
// inspected on time, overall and per zone), the plans (overdue first) with a "start" button,
// the last 30 days' report and the inspectors' figures. #/inspections/<id>: the guided page —
// one item at a time beside the room's live values (the `room` topic of the live client, as on
// the room page) and its cameras' state, ok / anomaly, a note, a value, a photo, and on an
// anomaly one button that raises a work order. Built for a phone (390×844): one column.

import * as api from './api.js';
import { esc, zoneLabel, value, quality } from './format.js';
import { t, apiError, lang, num, stamp } from './i18n.js';

const RANK = { viewer: 0, operator: 1, 'rule-author': 2, admin: 3 };
const zh = () => lang() === 'zh-CN';
const text = (x) => (zh() ? x.text_zh : x.text) || x.text;
const tplName = (tpl) => (tpl ? (zh() ? tpl.name_zh : tpl.name) : '');
// The live values shown beside every item.
const LIVE = ['outlet_pressure', 'inlet_pressure', 'chlorine', 'turbidity', 'ph', 'door', 'armed', 'intrusion', 'flooding'];

let templates = null;
async function templateList() {
  if (!templates) templates = (await api.get('/api/v1/inspection-templates')).templates || [];
  return templates;
}

const pct = (r) => `${num(r * 100, 0)}%`;

export class InspectionsPage {
  constructor(root, { role = () => 'viewer', toast = () => {}, live = null, user = () => '' }) {
    this.root = root;
    this.role = role;
    this.toast = toast;
    this.live = live;
    this.user = user;
    this.seq = 0;
    this.unsub = null;
  }

  mayInspect() {
    return (RANK[this.role()] ?? 0) >= RANK.operator;
  }

  close() {
    this.seq += 1;
    if (this.unsub) this.unsub();
    this.unsub = null;
  }

  open(id) {
    this.close();
    if (id) this.walk(id, this.seq);
    else this.overview(this.seq);
  }

  async overview(seq) {
    this.root.innerHTML = `<div class="inspections"><div class="orders-bar"><h2>${esc(t('inspections.title'))}</h2></div>
      <div id="in-coverage" class="in-coverage"></div>
      <h3>${esc(t('inspections.plans'))}</h3><div id="in-plans"><p class="empty">${esc(t('orders.loading'))}</p></div>
      <h3>${esc(t('inspections.report'))}</h3><div id="in-report"></div>
      <h3>${esc(t('inspections.inspectors'))}</h3><div id="in-people"></div></div>`;
    let cov, plans, report, people, tpls;
    try {
      [cov, plans, report, people, tpls] = await Promise.all([
        api.get('/api/v1/inspection-coverage'),
        api.get('/api/v1/inspection-plans'),
        api.get('/api/v1/inspections'),
        api.get('/api/v1/inspectors'),
        templateList(),
      ]);
    } catch (e) {
      if (seq === this.seq) this.root.querySelector('#in-plans').innerHTML = `<p class="empty">${esc(apiError(e))}</p>`;
      return;
    }
    if (seq !== this.seq) return;
    const byId = new Map(tpls.map((x) => [x.id, x]));
    this.root.querySelector('#in-coverage').innerHTML = cov.coverage.map((c) => `<div class="in-cov">
      <b>${esc(c.zone ? zoneLabel(c.zone) : t('inspections.overall'))}</b>
      <span class="big">${esc(pct(c.ratio))}</span>
      <span class="muted">${esc(t('inspections.on_time_of', { on_time: c.on_time, plans: c.plans }))}</span></div>`).join('');
    const shown = plans.plans.slice(0, 200);
    this.root.querySelector('#in-plans').innerHTML = shown.length ? `<div class="table-wrap"><table class="in-plans"><thead><tr>
      <th>${esc(t('inspections.room'))}</th><th>${esc(t('inspections.template'))}</th><th>${esc(t('inspections.last'))}</th><th>${esc(t('inspections.due'))}</th><th></th></tr></thead><tbody>
      ${shown.map((p) => `<tr class="${p.overdue ? 'in-overdue' : ''}"><td translate="no"><a href="#/room/${encodeURIComponent(p.room)}/inspections">${esc(p.room)}</a> ${esc(p.room_name)}</td>
        <td>${esc(tplName(byId.get(p.template)))}</td><td translate="no">${esc(p.last || '—')}</td>
        <td>${p.overdue ? `<span class="abn">${esc(t('inspections.overdue'))}</span> ` : ''}<span translate="no">${esc(p.due)}</span></td>
        <td>${this.mayInspect() ? `<button type="button" class="in-start" data-room="${esc(p.room)}" data-template="${esc(p.template)}">${esc(t('inspections.start'))}</button>` : ''}</td></tr>`).join('')}
      </tbody></table></div>${plans.count > shown.length ? `<p class="muted">${esc(t('inspections.more', { n: plans.count - shown.length }))}</p>` : ''}` : `<p class="empty">${esc(t('inspections.no_plans'))}</p>`;
    for (const b of this.root.querySelectorAll('.in-start')) {
      b.addEventListener('click', () => startInspection(b.dataset.room, b.dataset.template, this.toast));
    }
    this.root.querySelector('#in-report').innerHTML = `<p>${esc(t('inspections.period', { from: report.from, to: report.to, n: report.inspections, finished: report.finished, on_time: report.on_time, anomalies: report.anomalies, orders: report.orders.length }))}</p>
      ${inspectionRows(report.rows, byId)}`;
    this.root.querySelector('#in-people').innerHTML = people.inspectors.length ? `<div class="table-wrap"><table><thead><tr><th>${esc(t('inspections.inspector'))}</th>
      <th>${esc(t('inspections.finished'))}</th><th>${esc(t('inspections.on_time'))}</th><th>${esc(t('inspections.anomalies'))}</th><th>${esc(t('inspections.mean_minutes'))}</th></tr></thead><tbody>
      ${people.inspectors.map((p) => `<tr><td translate="no">${esc(p.inspector)}</td><td>${p.finished}/${p.started}</td><td>${p.on_time}</td><td>${p.anomalies}</td><td>${p.mean_minutes == null ? '—' : esc(num(p.mean_minutes, 1))}</td></tr>`).join('')}
      </tbody></table></div>` : `<p class="empty">${esc(t('inspections.none'))}</p>`;
  }

  async walk(id, seq) {
    this.root.innerHTML = `<p class="empty">${esc(t('orders.loading'))}</p>`;
    let ins, tpls;
    try {
      [ins, tpls] = await Promise.all([api.get(`/api/v1/inspections/${encodeURIComponent(id)}`), templateList()]);
    } catch (e) {
      if (seq === this.seq) this.root.innerHTML = `<p class="empty">${esc(apiError(e))}</p>`;
      return;
    }
    if (seq !== this.seq) return;
    this.ins = ins.inspection;
    this.tpl = tpls.find((x) => x.id === this.ins.template);
    this.view = null;
    const first = this.ins.items.findIndex((x) => !x.status);
    this.at = first < 0 ? this.ins.items.length : first;
    this.root.innerHTML = `<div class="in-walk">
      <div class="in-head"><h2><span translate="no">${esc(this.ins.room)}</span> ${esc(this.ins.room_name)}</h2>
        <span class="muted">${esc(tplName(this.tpl))} · <span translate="no">${esc(this.ins.id)}</span></span></div>
      <div class="in-step" id="in-step"></div>
      <div class="in-live panel"><h3>${esc(t('inspections.live'))}</h3><div id="in-values"></div><div id="in-cams"></div></div></div>`;
    if (this.live) {
      this.unsub = this.live.subscribe(`inspect-${this.ins.room}`, 'room', { room: this.ins.room }, (m) => this.onLive(m));
    }
    this.step();
  }

  onLive(m) {
    if (m.type === 'snapshot') this.view = m.data;
    else if (m.type === 'delta' && this.view) {
      const d = m.data;
      if (d.kind === 'room') Object.assign(this.view, d.room);
      else if (d.kind === 'device') {
        const list = d.device.kind === 'pump' ? 'pumps' : d.device.kind === 'tank' ? 'tanks' : 'cameras';
        const arr = this.view[list] || (this.view[list] = []);
        const i = arr.findIndex((x) => x.id === d.device.id);
        if (i >= 0) arr[i] = d.device;
        else arr.push(d.device);
      }
    } else return;
    this.drawLive();
  }

  drawLive() {
    const v = this.view;
    const box = this.root.querySelector('#in-values');
    if (!box || !v) return;
    const row = (name) => {
      const q = quality(v.points, name);
      if (q === 'none') return '';
      const x = value(v.points, name);
      return `<div class="in-val" data-point="${name}"><span>${esc(t(`inspections.point.${name}`))}</span><b translate="no">${x == null ? '—' : esc(num(x, 2))}</b></div>`;
    };
    const tanks = (v.tanks || []).map((tk) => {
      const lvl = (tk.derived || {}).level_pct;
      return `<div class="in-val"><span translate="no">${esc(tk.id.split('/')[1])}</span><b translate="no">${lvl == null ? '—' : `${esc(num(lvl, 0))}%`}</b></div>`;
    }).join('');
    box.innerHTML = LIVE.map(row).join('') + tanks;
    const cams = this.root.querySelector('#in-cams');
    cams.innerHTML = (v.cameras || []).length ? (v.cameras || []).map((c) => {
      const d = c.derived || {};
      const state = d.online === false ? t('mimic.cam_offline') : d.online === true ? t('mimic.cam_online') : t('mimic.unknown');
      return `<div class="cam in-cam"><b translate="no">${esc(c.id.split('/')[1])}</b> ${esc(state)}${d.recording ? ` · ${esc(t('room.cam_rec'))}` : ''}</div>`;
    }).join('') : `<span class="muted">${esc(t('mimic.no_cameras'))}</span>`;
    this.liveCheck();
  }

  // A live-value item: the platform's own check of the range, for the inspector to confirm.
  liveCheck() {
    const item = this.ins && this.ins.items[this.at];
    const el = this.root.querySelector('#in-auto');
    if (!item || !el || item.kind !== 'live_value' || !this.view) return;
    const x = value(this.view.points, item.point);
    if (x == null) {
      el.textContent = t('inspections.auto_unknown');
      el.className = 'in-auto muted';
      return;
    }
    const ok = (item.min == null || x >= item.min) && (item.max == null || x <= item.max);
    el.textContent = t(ok ? 'inspections.auto_ok' : 'inspections.auto_out', { value: num(x, 2) });
    el.className = ok ? 'in-auto' : 'in-auto abn';
    const input = this.root.querySelector('#in-value');
    if (input && input.value === '') input.value = String(Math.round(x * 1000) / 1000);
  }

  step() {
    const box = this.root.querySelector('#in-step');
    const items = this.ins.items;
    const done = items.filter((x) => x.status).length;
    const progress = `<div class="in-progress" aria-label="${esc(t('inspections.progress', { done, n: items.length }))}">${items.map((x, i) => `<button type="button" class="in-dot ${x.status || ''} ${i === this.at ? 'cur' : ''}" data-i="${i}">${i + 1}</button>`).join('')}</div>`;
    if (this.ins.finished_at) {
      box.innerHTML = `${progress}<p class="in-done">${esc(t('inspections.finished_at', { at: stamp(this.ins.finished_at) }))}</p>${anomalyList(this.ins)}`;
      this.wireDots(box);
      return;
    }
    if (this.at >= items.length) {
      box.innerHTML = `${progress}<p>${esc(t('inspections.all_done', { n: items.length }))}</p>${anomalyList(this.ins)}
        ${this.mayInspect() ? `<button type="button" class="primary" id="in-finish">${esc(t('inspections.finish'))}</button>` : ''}`;
      this.wireDots(box);
      const f = box.querySelector('#in-finish');
      if (f) f.addEventListener('click', () => this.finish());
      return;
    }
    const item = items[this.at];
    const range = item.min != null || item.max != null ? `<span class="muted" translate="no">${esc(`${item.min ?? ''}–${item.max ?? ''} ${item.unit || ''}`)}</span>` : '';
    const needsValue = item.kind === 'reading' || item.kind === 'live_value';
    box.innerHTML = `${progress}
      <div class="in-item" data-kind="${esc(item.kind)}">
        <p class="muted">${esc(t('inspections.item_of', { i: this.at + 1, n: items.length }))} · ${esc(t(`inspections.kind.${item.kind}`))}</p>
        <p class="in-text" translate="no">${esc(text(item))}</p>${range}
        ${item.kind === 'live_value' ? `<p id="in-auto" class="in-auto muted">${esc(t('inspections.auto_unknown'))}</p>` : ''}
        ${needsValue ? `<label>${esc(t('inspections.value'))} <input id="in-value" type="number" step="any" inputmode="decimal" value="${item.value ?? ''}"></label>` : ''}
        <label>${esc(t('inspections.note'))} <textarea id="in-note" rows="2">${esc(item.note || '')}</textarea></label>
        <label>${esc(t('inspections.photo'))} <input id="in-photo" type="file" accept="image/*" capture="environment"></label>
        <div class="in-buttons">
          <button type="button" class="primary in-ok" id="in-ok">${esc(t('inspections.ok'))}</button>
          <button type="button" class="danger in-anomaly" id="in-anomaly">${esc(t('inspections.anomaly'))}</button>
        </div>
        ${item.status === 'anomaly' ? this.orderBlock(item) : ''}
      </div>`;
    this.wireDots(box);
    box.querySelector('#in-ok').addEventListener('click', () => this.save('ok'));
    box.querySelector('#in-anomaly').addEventListener('click', () => this.save('anomaly'));
    this.wireOrder(box);
    this.liveCheck();
  }

  orderBlock(item) {
    return `<div class="in-order">${item.order
      ? `${esc(t('inspections.order_raised'))} <a href="#/orders/${encodeURIComponent(item.order)}" translate="no">${esc(item.order)}</a>`
      : `<button type="button" class="primary" id="in-raise">${esc(t('inspections.raise'))}</button>`}
      <button type="button" class="ghost" id="in-next">${esc(t('inspections.next'))}</button></div>`;
  }

  wireOrder(box) {
    const raise = box.querySelector('#in-raise');
    if (raise) raise.addEventListener('click', () => this.raise());
    const next = box.querySelector('#in-next');
    if (next) next.addEventListener('click', () => this.advance());
  }

  wireDots(box) {
    for (const d of box.querySelectorAll('.in-dot')) {
      d.addEventListener('click', () => {
        this.at = Number(d.dataset.i);
        this.step();
      });
    }
  }

  advance() {
    const next = this.ins.items.findIndex((x, i) => i > this.at && !x.status);
    const any = this.ins.items.findIndex((x) => !x.status);
    this.at = next >= 0 ? next : any >= 0 ? any : this.ins.items.length;
    this.step();
  }

  async save(status) {
    const box = this.root.querySelector('#in-step');
    const body = { status };
    const v = box.querySelector('#in-value');
    if (v && v.value !== '') {
      const n = Number(v.value);
      if (!Number.isFinite(n)) return this.toast(t('inspections.bad_value'), false);
      body.value = n;
    }
    const note = box.querySelector('#in-note').value.trim();
    if (note) body.note = note;
    const file = box.querySelector('#in-photo').files[0];
    if (file) {
      if (file.size > 700000) return this.toast(t('inspections.photo_too_large'), false);
      body.photo = await new Promise((resolve, reject) => {
        const r = new FileReader();
        r.onload = () => resolve(r.result);
        r.onerror = reject;
        r.readAsDataURL(file);
      });
    }
    try {
      const res = await api.post(`/api/v1/inspections/${encodeURIComponent(this.ins.id)}/items/${this.at}`, body);
      this.ins = res.inspection;
    } catch (e) {
      return this.toast(apiError(e), false);
    }
    if (status === 'anomaly') this.step();
    else this.advance();
  }

  async raise() {
    try {
      const res = await api.post(`/api/v1/inspections/${encodeURIComponent(this.ins.id)}/items/${this.at}/order`);
      this.ins = res.inspection;
      this.toast(t('inspections.order_created', { order: res.order }), true);
    } catch (e) {
      return this.toast(apiError(e), false);
    }
    this.step();
  }

  async finish() {
    try {
      const res = await api.post(`/api/v1/inspections/${encodeURIComponent(this.ins.id)}/finish`);
      this.ins = res.inspection;
      this.toast(t('inspections.finished_ok'), true);
    } catch (e) {
      return this.toast(apiError(e), false);
    }
    this.step();
  }
}

function anomalyList(ins) {
  const rows = ins.items.map((x, i) => [x, i]).filter(([x]) => x.status === 'anomaly');
  if (!rows.length) return '';
  return `<ul class="in-anomalies">${rows.map(([x, i]) => `<li>${i + 1}. <span translate="no">${esc(text(x))}</span>${x.order ? ` → <a href="#/orders/${encodeURIComponent(x.order)}" translate="no">${esc(x.order)}</a>` : ''}</li>`).join('')}</ul>`;
}

// Starts an inspection and opens its guided page.
export async function startInspection(room, template, toast) {
  try {
    const res = await api.post('/api/v1/inspections', { room, template });
    location.hash = `#/inspections/${encodeURIComponent(res.inspection.id)}`;
  } catch (e) {
    toast(apiError(e), false);
  }
}

// Inspections as rows (the report, a room's tab).
export function inspectionRows(rows, byId) {
  if (!rows.length) return `<p class="empty">${esc(t('inspections.none'))}</p>`;
  return `<div class="table-wrap"><table class="in-rows"><thead><tr><th>${esc(t('inspections.started'))}</th><th>${esc(t('inspections.room'))}</th>
    <th>${esc(t('inspections.template'))}</th><th>${esc(t('inspections.inspector'))}</th><th>${esc(t('inspections.state'))}</th><th>${esc(t('inspections.anomalies'))}</th><th>${esc(t('inspections.orders'))}</th></tr></thead><tbody>
    ${rows.map((r) => `<tr><td><a href="#/inspections/${encodeURIComponent(r.id)}">${esc(stamp(r.started_at))}</a></td><td translate="no">${esc(r.room)} ${esc(r.room_name)}</td>
      <td>${esc(tplName(byId.get(r.template)))}</td><td translate="no">${esc(r.inspector)}</td>
      <td>${esc(r.finished_at ? (r.on_time ? t('inspections.on_time') : t('inspections.late')) : t('inspections.open'))}</td>
      <td>${r.anomalies}</td><td translate="no">${r.orders.map((o) => `<a href="#/orders/${encodeURIComponent(o)}">${esc(o)}</a>`).join(' ')}</td></tr>`).join('')}
    </tbody></table></div>`;
}

export { templateList };
