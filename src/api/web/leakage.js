// The leakage page (issue 22 item 3, #/leakage): the fleet's rooms by their last night's leak
// index against their own baseline (minimum night flow 02:00-04:00 at the booster outlet, less
// the households' legitimate night use, over the day's mean flow), the nights running over it,
// float-valve overflow minutes; a room's nightly chart of MNF with its legitimate use and the
// MNF its baseline stands for. From GET /api/v1/analysis/leakage[/{room}]. The alarm itself is
// the library rule `night_flow_leak` (tunable and backtestable like every rule).

import * as api from './api.js';
import { esc } from './format.js';
import { t, num, date, apiError } from './i18n.js';

const fmt = (v, d = 3) => (typeof v === 'number' && Number.isFinite(v) ? num(v, d) : '—');
const pct = (v) => (typeof v === 'number' && Number.isFinite(v) ? `${num(v * 100, 1)} %` : '—');
const dayMs = (d) => Date.parse(`${d}T12:00:00`);

// A room's nights as SVG: MNF (solid), the MNF at its baseline (dashed), legitimate use (thin).
export function nightsSvg(nights) {
  const W = 800;
  const H = 220;
  const keys = ['mnf_m3h', 'baseline_mnf_m3h', 'legit_m3h'];
  const values = nights.flatMap((n) => keys.map((k) => n[k])).filter((v) => typeof v === 'number' && Number.isFinite(v));
  if (!nights.length || !values.length) return `<p class="muted" id="lk-nochart">${esc(t('leakage.no_nights'))}</p>`;
  const hi = Math.max(...values, 1e-6) * 1.1;
  const n = nights.length;
  const x = (i) => (n === 1 ? W / 2 : (i / (n - 1)) * W);
  const y = (v) => H - (v / hi) * H;
  const line = (k, cls) => {
    const segs = [];
    let cur = [];
    nights.forEach((night, i) => {
      const v = night[k];
      if (typeof v === 'number' && Number.isFinite(v)) cur.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
      else if (cur.length) {
        segs.push(cur);
        cur = [];
      }
    });
    if (cur.length) segs.push(cur);
    return segs.map((s) => `<polyline class="${cls}" points="${s.join(' ')}" fill="none"/>`).join('');
  };
  const flags = nights
    .map((night, i) => (night.flagged && Number.isFinite(night.mnf_m3h) ? `<circle class="lk-flag" cx="${x(i).toFixed(1)}" cy="${y(night.mnf_m3h).toFixed(1)}" r="4"/>` : ''))
    .join('');
  return `<svg class="cmp-chart lk-chart" viewBox="-2 -2 ${W + 4} ${H + 20}" role="img" aria-label="${esc(t('leakage.chart'))}" data-nights="${n}">
    <rect x="0" y="0" width="${W}" height="${H}" class="cmp-frame"/>
    ${line('legit_m3h', 'lk-legit')}${line('baseline_mnf_m3h', 'lk-base')}${line('mnf_m3h', 'lk-mnf')}${flags}
    <text x="4" y="14" class="cmp-axis" translate="no">${esc(num(hi, 2))} m³/h</text>
    <text x="0" y="${H + 16}" class="cmp-axis" translate="no">${esc(date(dayMs(nights[0].date)))}</text>
    <text x="${W}" y="${H + 16}" class="cmp-axis" text-anchor="end" translate="no">${esc(date(dayMs(nights[n - 1].date)))}</text>
  </svg>
  <ul class="cmp-legend"><li><span class="cmp-swatch lk-mnf"></span>${esc(t('leakage.mnf'))}</li><li><span class="cmp-swatch lk-base"></span>${esc(t('leakage.baseline_mnf'))}</li><li><span class="cmp-swatch lk-legit"></span>${esc(t('leakage.legit'))}</li></ul>`;
}

export class LeakagePage {
  constructor(root) {
    this.root = root;
    this.seq = 0;
  }

  close() {
    this.seq += 1;
  }

  async open(room) {
    const seq = ++this.seq;
    this.root.innerHTML = `<div class="leakage">
      <h2>${esc(t('leakage.title'))}</h2>
      <p class="muted">${esc(t('leakage.note'))}</p>
      <div id="lk-room"></div>
      <div id="lk-fleet"><p class="muted">${esc(t('leakage.loading'))}</p></div>
    </div>`;
    try {
      const fleet = await api.get('/api/v1/analysis/leakage');
      if (seq !== this.seq) return;
      this.renderFleet(fleet);
    } catch (e) {
      if (seq !== this.seq) return;
      this.root.querySelector('#lk-fleet').innerHTML = `<p class="status offline">${esc(apiError(e))}</p>`;
    }
    if (room) await this.openRoom(room, seq);
  }

  renderFleet(fleet) {
    const rows = (fleet.rooms || [])
      .map((r) => `<tr class="${r.nights_over >= 3 ? 'lk-over3' : r.flagged ? 'lk-over' : ''}" data-room="${esc(r.room)}">
        <td><a href="#/leakage/${encodeURIComponent(r.room)}" translate="no">${esc(r.room)}</a></td>
        <td>${esc(r.name || '')}</td>
        <td class="n" translate="no">${fmt(r.leak_index)}</td>
        <td class="n" translate="no">${fmt(r.baseline)}</td>
        <td class="n" translate="no">${fmt(r.excess)}</td>
        <td class="n">${r.nights_over ?? 0}</td>
        <td class="n" translate="no">${fmt(r.mnf_m3h, 2)}</td>
        <td class="n" translate="no">${fmt(r.legit_m3h, 2)}</td>
        <td class="n">${typeof r.overflow_minutes === 'number' ? num(r.overflow_minutes, 0) : '—'}</td>
        <td>${r.gap ? esc(t(`leakage.gap_${r.gap}`)) : ''}</td></tr>`)
      .join('');
    this.root.querySelector('#lk-fleet').innerHTML = `<h3>${esc(t('leakage.fleet', { date: fleet.date ? date(dayMs(fleet.date)) : '—' }))}</h3>
      <div class="table-scroll"><table class="lk-table" id="lk-rows"><thead><tr>
        <th>${esc(t('leakage.room'))}</th><th>${esc(t('leakage.name'))}</th><th>${esc(t('leakage.index'))}</th><th>${esc(t('leakage.baseline'))}</th>
        <th>${esc(t('leakage.excess'))}</th><th>${esc(t('leakage.nights_over'))}</th><th>${esc(t('leakage.mnf'))}</th><th>${esc(t('leakage.legit'))}</th>
        <th>${esc(t('leakage.overflow'))}</th><th>${esc(t('leakage.gap'))}</th></tr></thead>
        <tbody>${rows || `<tr><td colspan="10" class="muted">${esc(t('leakage.none'))}</td></tr>`}</tbody></table></div>`;
  }

  async openRoom(room, seq) {
    const box = this.root.querySelector('#lk-room');
    box.innerHTML = `<p class="muted">${esc(t('leakage.loading'))}</p>`;
    try {
      const r = await api.get(`/api/v1/analysis/leakage/${encodeURIComponent(room)}`);
      if (seq !== this.seq) return;
      const last = r.nights.length ? r.nights[r.nights.length - 1] : {};
      box.innerHTML = `<h3><span translate="no">${esc(r.room)}</span> ${esc(r.name || '')}</h3>
        <p>${esc(t('leakage.room_summary', { index: fmt(last.leak_index), baseline: fmt(last.baseline), over: last.nights_over ?? 0, share: pct(last.leak_index) }))}</p>
        ${nightsSvg(r.nights)}`;
    } catch (e) {
      if (seq !== this.seq) return;
      box.innerHTML = `<p class="status offline">${esc(apiError(e))}</p>`;
    }
  }
}
