// Tank cleaning (水箱清洗, issue 21 item 6) on screen (#/cleaning): every tank's schedule, the
// overdue first, and the form that records a cleaning with its water test — each reading shown
// beside its GB 5749-2022 limit and flagged as soon as it is outside it. The room's cleaning tab
// (roomtab_cleaning.js) reuses the schedule table and the form.

import * as api from './api.js';
import { esc, zoneLabel } from './format.js';
import { t, apiError, num } from './i18n.js';

const RANK = { viewer: 0, operator: 1, 'rule-author': 2, admin: 3 };
export const mayRecord = (role) => (RANK[role] ?? 0) >= RANK.operator;

// The test's fields, in the form's order (the limits come from the node).
const FIELDS = ['colour', 'turbidity_ntu', 'odour', 'ph', 'free_chlorine_mg_l', 'coliforms_per_100ml', 'bacteria_cfu_ml'];

function limitText(l) {
  if (l.parameter === 'odour') return t('cleaning.limit_none');
  if (l.parameter === 'coliforms_per_100ml') return `${t('cleaning.limit_not_detected')} (${l.unit})`;
  const unit = l.unit ? ` ${l.unit}` : '';
  if (l.min != null && l.max != null) return `${l.min}–${l.max}${unit}`;
  return `≤ ${l.max}${unit}`;
}

function outside(l, v) {
  return (l.min != null && v < l.min) || (l.max != null && v > l.max);
}

function today() {
  const d = new Date();
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

// The schedule as rows (a table on a desk, cards on a phone through the CSS).
export function scheduleTable(tanks, { record = false } = {}) {
  if (!tanks.length) return `<p class="empty">${esc(t('cleaning.none'))}</p>`;
  const rows = tanks.map((x) => {
    const days = x.days_left == null ? '' : x.days_left < 0 ? t('cleaning.overdue_by', { n: -x.days_left }) : t('cleaning.due_in', { n: x.days_left });
    const order = x.order ? `<a href="#/orders/${encodeURIComponent(x.order)}" translate="no">${esc(x.order)}</a>` : '';
    const [room, tank] = x.tank.split('/');
    return `<tr class="cl-${esc(x.status)}" data-tank="${esc(x.tank)}">
      <td translate="no"><a href="#/room/${encodeURIComponent(room)}/cleaning">${esc(x.tank)}</a></td>
      <td translate="no">${esc(x.room_name)}</td>
      <td>${esc(zoneLabel(x.zone))}</td>
      <td translate="no">${esc(x.last_cleaning || '—')}${x.last_passed === false ? ` <span class="abn">${esc(t('cleaning.failed'))}</span>` : ''}</td>
      <td translate="no">${esc(x.due || '—')}</td>
      <td><span class="cl-status">${esc(t(`cleaning.status.${x.status}`))}</span> ${esc(days)}</td>
      <td>${esc(t('cleaning.every', { n: x.interval_days }))}</td>
      <td>${order}</td>
      <td>${record ? `<button type="button" class="cl-record" data-room="${esc(room)}" data-t="${esc(tank)}">${esc(t('cleaning.record'))}</button>` : ''}</td>
    </tr>`;
  }).join('');
  return `<div class="table-wrap"><table class="cl-table"><thead><tr>
    <th>${esc(t('cleaning.tank'))}</th><th>${esc(t('cleaning.room'))}</th><th>${esc(t('cleaning.zone'))}</th>
    <th>${esc(t('cleaning.last'))}</th><th>${esc(t('cleaning.due'))}</th><th>${esc(t('cleaning.state'))}</th>
    <th>${esc(t('cleaning.interval'))}</th><th>${esc(t('cleaning.order'))}</th><th></th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

// Opens the form to record a cleaning of `room`/`tank` in `host`; `done(record)` after saving.
export function recordForm(host, room, tank, limits, { toast = () => {}, done = () => {} } = {}) {
  const field = (l) => {
    const name = l.parameter;
    const input = name === 'odour'
      ? `<select name="odour"><option value="false">${esc(t('cleaning.odour_none'))}</option><option value="true">${esc(t('cleaning.odour_present'))}</option></select>`
      : `<input name="${name}" type="number" step="any" min="0" required inputmode="decimal">`;
    return `<label class="cl-field" data-field="${name}"><span>${esc(t(`cleaning.test.${name}`))}</span>${input}
      <span class="muted cl-limit" translate="no">${esc(limitText(l))}</span><span class="abn cl-flag" hidden>${esc(t('cleaning.out_of_limit'))}</span></label>`;
  };
  const fields = FIELDS.map((f) => field(limits.find((l) => l.parameter === f) || { parameter: f })).join('');
  host.innerHTML = `<form class="cl-form" novalidate>
    <h3 translate="no">${esc(room)}/${esc(tank)}</h3>
    <label><span>${esc(t('cleaning.date'))}</span><input name="date" type="date" required value="${today()}"></label>
    <label><span>${esc(t('cleaning.crew'))}</span><input name="crew" required></label>
    <label><span>${esc(t('cleaning.order_closed'))}</span><input name="order"></label>
    <fieldset><legend>${esc(t('cleaning.water_test'))}</legend>${fields}</fieldset>
    <label><span>${esc(t('cleaning.note'))}</span><textarea name="note" rows="2"></textarea></label>
    <p class="cl-verdict" aria-live="polite"></p>
    <div class="actions"><button type="submit">${esc(t('cleaning.save'))}</button> <button type="button" class="cl-cancel">${esc(t('cleaning.cancel'))}</button></div>
  </form>`;
  const form = host.querySelector('form');
  const read = () => {
    const test = {};
    for (const f of FIELDS) {
      const el = form.elements[f];
      test[f] = f === 'odour' ? el.value === 'true' : el.value === '' ? null : Number(el.value);
    }
    return test;
  };
  const check = () => {
    const test = read();
    let bad = 0;
    for (const l of limits) {
      const v = l.parameter === 'odour' ? (test.odour ? 1 : 0) : test[l.parameter];
      const off = v != null && Number.isFinite(v) && outside(l, v);
      form.querySelector(`[data-field="${l.parameter}"] .cl-flag`).hidden = !off;
      if (off) bad += 1;
    }
    form.querySelector('.cl-verdict').textContent = bad ? t('cleaning.will_fail', { n: bad }) : '';
  };
  form.addEventListener('input', check);
  form.querySelector('.cl-cancel').addEventListener('click', () => (host.innerHTML = ''));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const test = read();
    if (Object.values(test).some((v) => v === null || (typeof v === 'number' && !Number.isFinite(v)))) {
      toast(t('cleaning.fill_all'), false);
      return;
    }
    const body = { date: form.elements.date.value, crew: form.elements.crew.value, test };
    if (form.elements.order.value.trim()) body.order = form.elements.order.value.trim();
    if (form.elements.note.value.trim()) body.note = form.elements.note.value.trim();
    try {
      const res = await api.post(`/api/v1/cleaning/${encodeURIComponent(room)}/${encodeURIComponent(tank)}/records`, body);
      const r = res.record;
      toast(r.passed ? t('cleaning.saved_passed') : t('cleaning.saved_failed', { order: r.follow_up || '—' }), r.passed);
      host.innerHTML = '';
      done(r);
    } catch (e) {
      toast(apiError(e), false);
    }
  });
  check();
}

// A tank's log as rows.
export function logTable(log) {
  if (!log.length) return `<p class="empty">${esc(t('cleaning.no_log'))}</p>`;
  return `<div class="table-wrap"><table class="cl-log"><thead><tr><th>${esc(t('cleaning.date'))}</th><th>${esc(t('cleaning.crew'))}</th>
    <th>${esc(t('cleaning.result'))}</th><th>${esc(t('cleaning.order'))}</th><th>${esc(t('cleaning.note'))}</th></tr></thead><tbody>${log.map((r) => `<tr>
    <td translate="no">${esc(r.date)}</td><td translate="no">${esc(r.crew)}</td>
    <td>${r.passed ? esc(t('cleaning.passed')) : `<span class="abn">${esc(t('cleaning.failed'))}</span> <span translate="no">${esc(r.failures.map((f) => `${t(`cleaning.test.${f.parameter}`)} ${num(f.value, 2)}`).join(', '))}</span>`}</td>
    <td translate="no">${esc([r.order, r.follow_up].filter(Boolean).join(' → '))}</td><td translate="no">${esc(r.note || '')}</td></tr>`).join('')}</tbody></table></div>`;
}

export class CleaningPage {
  constructor(root, { role = () => 'viewer', toast = () => {} }) {
    this.root = root;
    this.role = role;
    this.toast = toast;
    this.seq = 0;
    this.overdue = false;
  }

  close() {
    this.seq += 1;
  }

  open() {
    this.seq += 1;
    this.root.innerHTML = `<div class="cleaning">
      <div class="orders-bar"><h2>${esc(t('cleaning.title'))}</h2>
        <label><input type="checkbox" id="cl-overdue" ${this.overdue ? 'checked' : ''}> ${esc(t('cleaning.only_overdue'))}</label>
        <span class="muted" id="cl-summary"></span></div>
      <div id="cl-form"></div>
      <div id="cl-list"><p class="empty">${esc(t('orders.loading'))}</p></div></div>`;
    this.root.querySelector('#cl-overdue').addEventListener('change', (e) => {
      this.overdue = e.target.checked;
      this.fill(++this.seq);
    });
    this.fill(this.seq);
  }

  async fill(seq) {
    let res;
    try {
      res = await api.get(`/api/v1/cleaning${this.overdue ? '?overdue=true' : ''}`);
    } catch (e) {
      if (seq === this.seq) this.root.querySelector('#cl-list').innerHTML = `<p class="empty">${esc(apiError(e))}</p>`;
      return;
    }
    if (seq !== this.seq) return;
    const overdue = res.tanks.filter((x) => x.status === 'overdue').length;
    this.root.querySelector('#cl-summary').textContent = t('cleaning.summary', { n: res.count, overdue, days: res.interval_days });
    const list = this.root.querySelector('#cl-list');
    list.innerHTML = scheduleTable(res.tanks, { record: mayRecord(this.role()) });
    for (const b of list.querySelectorAll('.cl-record')) {
      b.addEventListener('click', () => {
        const host = this.root.querySelector('#cl-form');
        recordForm(host, b.dataset.room, b.dataset.t, res.limits, { toast: this.toast, done: () => this.fill(++this.seq) });
        host.scrollIntoView({ block: 'start' });
      });
    }
  }
}
