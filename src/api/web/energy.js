// The energy page (issue 22 item 1, #/energy): for a day, a month or a year, the fleet's, each
// zone's and each room's kWh, m³, kWh/m³ and kWh per 1,000 m³·MPa with the pump-set
// efficiency (278 / measured) and the share of the period the meters covered, against the
// period before (环比) and the same period a year before (同比); rooms that use far more than
// their peers (same lift and size band, robust z-score) are flagged with the reason in words.
// A room's line opens its hourly bars for the day. Everything comes from
// GET /api/v1/analysis/energy and /api/v1/analysis/energy/rooms/{id}; a figure the data could
// not give shows as — with the reason, never as a made-up number.

import * as api from './api.js';
import { esc, zoneLabel } from './format.js';
import { t, num, apiError, lang } from './i18n.js';

const pad = (n) => String(n).padStart(2, '0');

// Today as YYYY-MM-DD in Beijing time (the node's days are local days).
export function localToday(now = Date.now()) {
  const d = new Date(now + 8 * 3600 * 1000);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
}

// A change in %, signed, or — (more energy is worse: a rise is marked).
export function changeCell(v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '<td class="n muted">—</td>';
  const cls = v > 5 ? 'en-up' : v < -5 ? 'en-down' : '';
  return `<td class="n ${cls}" translate="no">${v > 0 ? '+' : ''}${esc(num(v, 1))} %</td>`;
}

const pct = (v) => (typeof v === 'number' && Number.isFinite(v) ? `${num(v * 100, 0)} %` : '—');

// The peer column: the outlier's reason in the user's language, a plain verdict otherwise.
export function peerCell(row) {
  const p = row.peers;
  if (!p || p.verdict === 'no_figure') return `<td class="muted">${esc(t('energy.no_figure'))}</td>`;
  if (p.verdict === 'no_peer_group') return `<td class="muted">${esc(t('energy.no_peer_group', { n: p.peers }))}</td>`;
  if (p.outlier) {
    const reason = lang() === 'en' ? row.reason_en : row.reason_zh;
    return `<td class="en-outlier"><b>${esc(t('energy.outlier'))}</b> <span translate="no">${esc(reason || '')}</span></td>`;
  }
  return `<td class="muted" translate="no">z ${esc(num(p.z, 1))}</td>`;
}

function figureCells(f) {
  return `<td class="n" translate="no">${esc(num(f.kwh, 0))}</td>
    <td class="n" translate="no">${esc(num(f.m3, 0))}</td>
    <td class="n" translate="no">${esc(num(f.kwh_per_m3, 3))}</td>
    <td class="n" translate="no">${esc(num(f.kwh_per_kt_mpa, 0))}</td>
    <td class="n" translate="no">${esc(pct(f.set_efficiency))}</td>
    <td class="n" translate="no">${esc(pct(f.kwh_coverage))}</td>`;
}

function head(first) {
  return `<thead><tr><th>${esc(first)}</th><th class="n">${esc(t('energy.kwh'))}</th><th class="n">${esc(t('energy.m3'))}</th>
    <th class="n">${esc(t('energy.kwh_per_m3'))}</th><th class="n">${esc(t('energy.kwh_per_kt_mpa'))}</th><th class="n">${esc(t('energy.set_efficiency'))}</th>
    <th class="n">${esc(t('energy.coverage'))}</th><th class="n">${esc(t('energy.mom'))}</th><th class="n">${esc(t('energy.yoy'))}</th>`;
}

// 24 hourly bars of kWh (and m³ as a line of dots) in an SVG of our own.
export function hourBars(day) {
  const hours = (day.energy && day.energy.hours) || [];
  const water = (day.outlet && day.outlet.hours) || [];
  const W = 480;
  const H = 140;
  const bw = W / 24;
  const kmax = Math.max(1e-9, ...hours.map((h) => h.amount || 0));
  const mmax = Math.max(1e-9, ...water.map((h) => h.amount || 0));
  const bars = hours
    .map((h, i) => {
      if (typeof h.amount !== 'number') return `<rect class="en-gap" x="${(i * bw + 1).toFixed(1)}" y="${H - 4}" width="${(bw - 2).toFixed(1)}" height="4"><title>${esc(t('energy.hour_unknown', { h: i }))}</title></rect>`;
      const bh = (h.amount / kmax) * (H - 10);
      return `<rect class="en-bar${h.coverage < 0.9 ? ' partial' : ''}" x="${(i * bw + 1).toFixed(1)}" y="${(H - bh).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${bh.toFixed(1)}"><title>${esc(`${pad(i)}:00 ${num(h.amount, 1)} kWh · ${pct(h.coverage)}`)}</title></rect>`;
    })
    .join('');
  const dots = water
    .map((h, i) => (typeof h.amount === 'number' ? `<circle class="en-m3" cx="${(i * bw + bw / 2).toFixed(1)}" cy="${(H - (h.amount / mmax) * (H - 10)).toFixed(1)}" r="2.5"><title>${esc(`${pad(i)}:00 ${num(h.amount, 1)} m³`)}</title></circle>` : ''))
    .join('');
  const ticks = [0, 6, 12, 18, 23].map((i) => `<text class="en-axis" x="${(i * bw + bw / 2).toFixed(1)}" y="${H + 14}" text-anchor="middle" translate="no">${pad(i)}</text>`).join('');
  return `<svg class="en-hours" viewBox="-2 -2 ${W + 4} ${H + 20}" role="img" aria-label="${esc(t('energy.hours_title'))}">
    <rect class="en-frame" x="0" y="0" width="${W}" height="${H}"/>${bars}${dots}${ticks}
    <text class="en-axis" x="4" y="12" translate="no">${esc(num(kmax, 1))} kWh · ${esc(num(mmax, 1))} m³</text>
  </svg>`;
}

// The reasons a day's figure is missing, in words.
export function missingText(codes) {
  return (codes || []).map((c) => t(`energy.missing_${c}`)).join(' · ');
}

export class EnergyPage {
  constructor(root) {
    this.root = root;
    this.seq = 0;
    this.kind = 'month';
    this.date = localToday();
    this.zone = '';
  }

  close() {
    this.seq += 1;
  }

  period() {
    if (this.kind === 'day') return this.date;
    if (this.kind === 'year') return this.date.slice(0, 4);
    return this.date.slice(0, 7);
  }

  async open() {
    const seq = ++this.seq;
    this.root.innerHTML = `<div class="energy">
      <h2>${esc(t('energy.title'))}</h2>
      <p class="muted">${esc(t('energy.note'))}</p>
      <div class="en-controls">
        <label>${esc(t('energy.period'))} <select id="en-kind">
          ${['day', 'month', 'year'].map((k) => `<option value="${k}"${k === this.kind ? ' selected' : ''}>${esc(t(`energy.kind_${k}`))}</option>`).join('')}
        </select></label>
        <label>${esc(t('energy.date'))} <input id="en-date" type="date" value="${esc(this.date)}"></label>
        <label>${esc(t('energy.zone'))} <select id="en-zone"><option value="">${esc(t('energy.all_zones'))}</option></select></label>
      </div>
      <div id="en-body"><p class="muted">${esc(t('energy.loading'))}</p></div>
      <div id="en-room"></div>
    </div>`;
    this.root.querySelector('#en-kind').addEventListener('change', (e) => {
      this.kind = e.target.value;
      this.load();
    });
    this.root.querySelector('#en-date').addEventListener('change', (e) => {
      if (/^\d{4}-\d{2}-\d{2}$/.test(e.target.value)) {
        this.date = e.target.value;
        this.load();
      }
    });
    this.root.querySelector('#en-zone').addEventListener('change', (e) => {
      this.zone = e.target.value;
      this.load();
    });
    if (seq === this.seq) await this.load();
  }

  async load() {
    const seq = ++this.seq;
    const body = this.root.querySelector('#en-body');
    const q = new URLSearchParams({ period: this.period(), limit: '300' });
    if (this.zone) q.set('zone', this.zone);
    try {
      const r = await api.get(`/api/v1/analysis/energy?${q}`);
      if (seq !== this.seq) return;
      this.render(r);
    } catch (e) {
      if (seq !== this.seq) return;
      body.innerHTML = `<p class="status offline">${esc(apiError(e))}</p>`;
    }
  }

  render(r) {
    const body = this.root.querySelector('#en-body');
    const zoneSel = this.root.querySelector('#en-zone');
    if (zoneSel.options.length <= 1) {
      for (const z of r.zones) zoneSel.insertAdjacentHTML('beforeend', `<option value="${esc(z.key)}">${esc(zoneLabel(z.key))}</option>`);
      zoneSel.value = this.zone;
    }
    const f = r.fleet.figures;
    const card = (label, value) => `<div class="en-card"><span>${esc(label)}</span><b translate="no">${esc(value)}</b></div>`;
    const zoneRows = r.zones
      .map((z) => `<tr><td>${esc(zoneLabel(z.key))}</td>${figureCells(z.figures)}${changeCell(z.mom.kwh_per_kt_mpa_pct)}${changeCell(z.yoy.kwh_per_kt_mpa_pct)}</tr>`)
      .join('');
    const roomRows = r.rooms
      .map((x) => `<tr class="en-room-row${x.peers && x.peers.outlier ? ' en-flag' : ''}" data-room="${esc(x.key)}" tabindex="0">
        <td><a href="#/room/${esc(x.key)}" translate="no">${esc(x.key)}</a> <span class="muted" translate="no">${esc(x.name)}</span></td>
        ${figureCells(x.figures)}${changeCell(x.mom.kwh_per_kt_mpa_pct)}${changeCell(x.yoy.kwh_per_kt_mpa_pct)}${peerCell(x)}</tr>`)
      .join('');
    body.innerHTML = `
      <p class="muted" translate="no">${esc(r.from)} – ${esc(r.to)} · ${esc(t('energy.mom'))} ${esc(r.previous[0])} – ${esc(r.previous[1])} · ${esc(t('energy.yoy'))} ${esc(r.year_ago[0])} – ${esc(r.year_ago[1])}</p>
      <div class="en-cards" id="en-fleet">
        ${card(t('energy.kwh'), num(f.kwh, 0))}${card(t('energy.m3'), num(f.m3, 0))}
        ${card(t('energy.kwh_per_m3'), num(f.kwh_per_m3, 3))}${card(t('energy.kwh_per_kt_mpa'), num(f.kwh_per_kt_mpa, 0))}
        ${card(t('energy.set_efficiency'), pct(f.set_efficiency))}${card(t('energy.coverage'), pct(f.kwh_coverage))}
        ${card(t('energy.mom'), r.fleet.mom.kwh_per_kt_mpa_pct == null ? '—' : `${num(r.fleet.mom.kwh_per_kt_mpa_pct, 1)} %`)}
        ${card(t('energy.yoy'), r.fleet.yoy.kwh_per_kt_mpa_pct == null ? '—' : `${num(r.fleet.yoy.kwh_per_kt_mpa_pct, 1)} %`)}
      </div>
      <p class="muted">${esc(t('energy.change_note'))}</p>
      <h3>${esc(t('energy.zones'))}</h3>
      <div class="table-scroll"><table class="grid" id="en-zones">${head(t('energy.zone'))}</tr></thead><tbody>${zoneRows}</tbody></table></div>
      <h3>${esc(t('energy.rooms', { n: r.rooms.length, total: r.room_count ?? r.rooms.length }))}</h3>
      <p class="muted">${esc(t('energy.peer_note'))}</p>
      <div class="table-scroll"><table class="grid" id="en-rooms">${head(t('energy.room'))}<th>${esc(t('energy.peers'))}</th></tr></thead><tbody>${roomRows}</tbody></table></div>`;
    for (const tr of body.querySelectorAll('.en-room-row')) {
      const openRoom = (e) => {
        if (e.target.closest('a')) return;
        this.openRoom(tr.dataset.room, r.to);
      };
      tr.addEventListener('click', openRoom);
      tr.addEventListener('keydown', (e) => e.key === 'Enter' && openRoom(e));
    }
  }

  async openRoom(id, date) {
    const box = this.root.querySelector('#en-room');
    box.innerHTML = `<p class="muted">${esc(t('energy.loading'))}</p>`;
    try {
      const d = await api.get(`/api/v1/analysis/energy/rooms/${encodeURIComponent(id)}?date=${encodeURIComponent(date)}`);
      const e = d.energy;
      box.innerHTML = `<div class="en-room" id="en-room-day">
        <h3><span translate="no">${esc(id)} · ${esc(d.date)}</span> ${esc(t('energy.hours_title'))}</h3>
        <p translate="no">${esc(num(e.kwh, 1))} kWh · ${esc(num(e.m3, 1))} m³ · ${esc(num(e.kwh_per_m3, 3))} kWh/m³ · ${esc(num(e.lift_mpa, 3))} MPa · ${esc(num(e.kwh_per_kt_mpa, 0))} kWh/(1000 m³·MPa)</p>
        ${e.missing && e.missing.length ? `<p class="en-missing">${esc(missingText(e.missing))}</p>` : ''}
        <p class="muted">${esc(t('energy.counter_note', { resets: e.energy.resets, wraps: e.energy.wraps, gaps: e.energy.gaps, cov: pct(e.energy.coverage) }))}</p>
        ${hourBars(e)}
        <p class="muted">${esc(t('energy.hours_legend'))}</p>
      </div>`;
      box.scrollIntoView({ block: 'nearest' });
    } catch (err) {
      box.innerHTML = `<p class="status offline">${esc(apiError(err))}</p>`;
    }
  }
}
