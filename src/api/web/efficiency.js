// The pump efficiency page (issue 22 item 2, #/efficiency, #/efficiency/XM-0001): the rooms
// ranked by the energy their pumps lost against running at the best point, and for one room
// each pump's day — speed, flow, head, BEP ratio Q/(r·Q_BEP), time in the preferred region
// (70-120 % of BEP), efficiency from the curve and measured wire-to-water, lost kWh — with an
// H-Q chart drawn by our own SVG code: the rated curve, the curve at the day's mean speed by the
// affinity laws (Q·r, H·r²), and the cloud of the day's operating points. Where the curve came
// from (the archive's nameplate or the inventory's rated point) is said.

import * as api from './api.js';
import { esc } from './format.js';
import { t, num, apiError } from './i18n.js';
import { localToday, missingText } from './energy.js';

const pct = (v) => (typeof v === 'number' && Number.isFinite(v) ? `${num(v * 100, 0)} %` : '—');

// The H-Q chart of a pump's day: rated curve (dashed), the curve at the mean speed, the
// operating points; the BEP flow at that speed marked.
export function hqChart(p) {
  const c = p.curves;
  if (!c || !c.hq || c.hq.length < 2) return `<p class="muted">${esc(t('efficiency.no_curve'))}</p>`;
  const r = typeof p.mean_speed === 'number' ? p.mean_speed : 1;
  const atSpeed = c.hq.map(([q, h]) => [q * r, h * r * r]);
  const cloud = p.cloud || [];
  const qmax = Math.max(...c.hq.map((x) => x[0]), ...cloud.map((x) => x[0]), 1) * 1.05;
  const hmax = Math.max(...c.hq.map((x) => x[1]), ...cloud.map((x) => x[1]), 1) * 1.1;
  const W = 300;
  const H = 180;
  const X = (q) => ((q / qmax) * W).toFixed(1);
  const Y = (h) => (H - (Math.max(0, Math.min(h, hmax)) / hmax) * H).toFixed(1);
  const line = (pts, cls) => `<polyline class="${cls}" fill="none" points="${pts.map(([q, h]) => `${X(q)},${Y(h)}`).join(' ')}"/>`;
  const dots = cloud.map(([q, h]) => `<circle class="ef-point" cx="${X(q)}" cy="${Y(h)}" r="2"/>`).join('');
  const bep = c.bep_flow_m3h * r;
  return `<svg class="ef-chart" viewBox="-4 -4 ${W + 8} ${H + 22}" role="img" aria-label="${esc(t('efficiency.chart'))}">
    <rect class="en-frame" x="0" y="0" width="${W}" height="${H}"/>
    <rect class="ef-por" x="${X(bep * 0.7)}" y="0" width="${(Number(X(bep * 1.2)) - Number(X(bep * 0.7))).toFixed(1)}" height="${H}"/>
    ${line(c.hq, 'ef-rated')}${line(atSpeed, 'ef-speed')}${dots}
    <text class="en-axis" x="0" y="${H + 16}" translate="no">0</text>
    <text class="en-axis" x="${W}" y="${H + 16}" text-anchor="end" translate="no">${esc(num(qmax, 0))} m³/h</text>
    <text class="en-axis" x="4" y="12" translate="no">${esc(num(hmax, 0))} m</text>
  </svg>`;
}

function pumpCard(p) {
  const c = p.curves;
  const por = p.point_minutes > 0 ? p.por_minutes / p.point_minutes : null;
  const source = c ? t(`efficiency.source_${c.source}`) : t('efficiency.source_none');
  return `<div class="ef-card" data-pump="${esc(p.unit)}">
    <h3>${esc(t('efficiency.pump'))} <span translate="no">${esc(p.unit)}${c && c.model ? ` ${esc(c.model)}` : ''}</span></h3>
    <p class="muted">${esc(source)}</p>
    <table class="ef-facts">
      <tr><th>${esc(t('efficiency.run'))}</th><td translate="no">${esc(num(p.run_minutes / 60, 1))} h</td></tr>
      <tr><th>${esc(t('efficiency.point'))}</th><td translate="no">${esc(num(p.mean_flow_m3h, 1))} m³/h · ${esc(num(p.mean_head_m, 1))} m · r ${esc(num(p.mean_speed, 2))}</td></tr>
      <tr><th>${esc(t('efficiency.bep_ratio'))}</th><td translate="no">${esc(pct(p.bep_ratio))}</td></tr>
      <tr><th>${esc(t('efficiency.por'))}</th><td translate="no">${esc(pct(por))}</td></tr>
      <tr><th>${esc(t('efficiency.estimated'))}</th><td translate="no">${esc(pct(p.efficiency))}${c ? ` / ${esc(pct(c.bep_efficiency))}` : ''}</td></tr>
      <tr><th>${esc(t('efficiency.measured'))}</th><td translate="no">${esc(pct(p.wire_to_water))}</td></tr>
      <tr><th>${esc(t('efficiency.kwh'))}</th><td translate="no">${esc(num(p.kwh, 1))} kWh</td></tr>
      <tr><th>${esc(t('efficiency.lost'))}</th><td translate="no">${esc(num(p.lost_kwh, 1))} kWh</td></tr>
    </table>
    ${p.missing && p.missing.length ? `<p class="en-missing">${esc(p.missing.map((m) => t(`efficiency.missing_${m}`)).join(' · '))}</p>` : ''}
    ${hqChart(p)}
  </div>`;
}

export class EfficiencyPage {
  constructor(root) {
    this.root = root;
    this.seq = 0;
    this.date = localToday();
  }

  close() {
    this.seq += 1;
  }

  async open(room) {
    const seq = ++this.seq;
    this.room = room || null;
    this.root.innerHTML = `<div class="efficiency">
      <h2>${esc(t('efficiency.title'))}</h2>
      <p class="muted">${esc(t('efficiency.note'))}</p>
      <div class="en-controls">
        <label>${esc(t('energy.date'))} <input id="ef-date" type="date" value="${esc(this.date)}"></label>
        <label>${esc(t('efficiency.room'))} <input id="ef-room" value="${esc(this.room || '')}" translate="no" size="9"></label>
      </div>
      <div id="ef-pumps"></div>
      <div id="ef-body"><p class="muted">${esc(t('energy.loading'))}</p></div>
    </div>`;
    this.root.querySelector('#ef-date').addEventListener('change', (e) => {
      if (/^\d{4}-\d{2}-\d{2}$/.test(e.target.value)) {
        this.date = e.target.value;
        this.open(this.room);
      }
    });
    this.root.querySelector('#ef-room').addEventListener('change', (e) => {
      const id = e.target.value.trim().toUpperCase();
      if (id) location.hash = `#/efficiency/${encodeURIComponent(id)}`;
    });
    await Promise.all([this.loadFleet(seq), this.room ? this.loadRoom(seq, this.room) : null]);
  }

  async loadFleet(seq) {
    const body = this.root.querySelector('#ef-body');
    try {
      const r = await api.get(`/api/v1/analysis/efficiency?period=${encodeURIComponent(this.date)}&limit=100`);
      if (seq !== this.seq) return;
      const rows = r.rooms
        .map((x) => `<tr><td><a href="#/efficiency/${esc(x.key)}" translate="no">${esc(x.key)}</a> <span class="muted" translate="no">${esc(x.name)}</span></td>
          <td class="n" translate="no">${esc(pct(x.figures.pump_efficiency))}</td><td class="n" translate="no">${esc(pct(x.figures.por_share))}</td>
          <td class="n" translate="no">${esc(num(x.figures.lost_kwh, 1))}</td><td class="n" translate="no">${esc(pct(x.figures.set_efficiency))}</td></tr>`)
        .join('');
      body.innerHTML = `<h3>${esc(t('efficiency.ranking'))}</h3>
        <div class="table-scroll"><table class="grid" id="ef-rooms"><thead><tr><th>${esc(t('energy.room'))}</th><th class="n">${esc(t('efficiency.estimated'))}</th>
        <th class="n">${esc(t('efficiency.por'))}</th><th class="n">${esc(t('efficiency.lost'))}</th><th class="n">${esc(t('energy.set_efficiency'))}</th></tr></thead><tbody>${rows}</tbody></table></div>`;
    } catch (e) {
      if (seq !== this.seq) return;
      body.innerHTML = `<p class="status offline">${esc(apiError(e))}</p>`;
    }
  }

  async loadRoom(seq, id) {
    const box = this.root.querySelector('#ef-pumps');
    box.innerHTML = `<p class="muted">${esc(t('energy.loading'))}</p>`;
    try {
      const d = await api.get(`/api/v1/analysis/efficiency/rooms/${encodeURIComponent(id)}?date=${encodeURIComponent(this.date)}`);
      if (seq !== this.seq) return;
      box.innerHTML = `<h3 translate="no">${esc(id)} · ${esc(d.date)}</h3>
        ${d.missing && d.missing.length ? `<p class="en-missing">${esc(missingText(d.missing))}</p>` : ''}
        <p class="muted">${esc(t('efficiency.legend'))}</p>
        <div class="ef-cards" id="ef-cards">${d.pumps.map(pumpCard).join('')}</div>`;
    } catch (e) {
      if (seq !== this.seq) return;
      box.innerHTML = `<p class="status offline">${esc(apiError(e))}</p>`;
    }
  }
}
