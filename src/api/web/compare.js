// The comparisons page (issue 22 item 4, #/compare): several devices' points on one chart,
// aligned on one time grid, and the same points over an earlier period (last week, last month,
// the same month last year) moved onto this period's axis and drawn dashed. Served by
// GET /api/v1/analysis/compare, which reads the historian's rollups for long ranges; the same
// request downloads the table as .xlsx or CSV. `#/compare?point=XM-0001.outlet_flow&…` opens
// with those points.

import * as api from './api.js';
import { esc } from './format.js';
import { t, num, stamp, date, apiError } from './i18n.js';

const RANGES = { '1d': 86_400_000, '7d': 7 * 86_400_000, '31d': 31 * 86_400_000, '366d': 366 * 86_400_000 };
const EARLIER = ['', 'previous', 'week', 'month', 'year'];
const MAX_POINTS = 8;

// The polyline segments of one column (a gap where a value is missing).
function segments(times, values, x, y) {
  const out = [];
  let cur = [];
  values.forEach((v, i) => {
    if (typeof v === 'number' && Number.isFinite(v)) cur.push(`${x(times[i]).toFixed(1)},${y(v).toFixed(1)}`);
    else if (cur.length) {
      out.push(cur);
      cur = [];
    }
  });
  if (cur.length) out.push(cur);
  return out;
}

// The chart of a comparison as SVG: a line per column (earlier periods dashed), the value range
// on the left, the first and last times below.
export function chartSvg(data) {
  const W = 800;
  const H = 260;
  const times = data.times || [];
  const cols = data.columns || [];
  const values = cols.flatMap((c) => c.values).filter((v) => typeof v === 'number' && Number.isFinite(v));
  if (!times.length || !values.length) return `<p class="muted">${esc(t('compare.no_data'))}</p>`;
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi - lo < 1e-9) {
    lo -= 1;
    hi += 1;
  }
  const t0 = times[0];
  const t1 = Math.max(times[times.length - 1], t0 + 1);
  const x = (tm) => ((tm - t0) / (t1 - t0)) * W;
  const y = (v) => H - ((v - lo) / (hi - lo)) * H;
  const lines = cols
    .map((c, i) => segments(times, c.values, x, y)
      .map((pts) => `<polyline class="cmp-line cmp-s${i % MAX_POINTS} ${c.period === 'earlier' ? 'cmp-earlier' : ''}" data-col="${i}" points="${pts.join(' ')}" fill="none"/>`)
      .join(''))
    .join('');
  return `<svg class="cmp-chart" viewBox="-2 -2 ${W + 4} ${H + 20}" role="img" aria-label="${esc(t('compare.chart'))}" data-columns="${cols.length}">
    <rect x="0" y="0" width="${W}" height="${H}" class="cmp-frame"/>
    ${lines}
    <text x="4" y="14" class="cmp-axis" translate="no">${esc(num(hi, 2))}</text>
    <text x="4" y="${H - 4}" class="cmp-axis" translate="no">${esc(num(lo, 2))}</text>
    <text x="0" y="${H + 16}" class="cmp-axis" translate="no">${esc(stamp(t0))}</text>
    <text x="${W}" y="${H + 16}" class="cmp-axis" text-anchor="end" translate="no">${esc(stamp(t1))}</text>
  </svg>`;
}

function legend(data) {
  return `<ul class="cmp-legend">${(data.columns || [])
    .map((c, i) => `<li><span class="cmp-swatch cmp-s${i % MAX_POINTS} ${c.period === 'earlier' ? 'cmp-earlier' : ''}"></span><span translate="no">${esc(c.point)}</span>${c.period === 'earlier' ? ` <span class="muted">${esc(t('compare.earlier_of', { from: date(data.earlier.from), to: date(data.earlier.to) }))}</span>` : ''}</li>`)
    .join('')}</ul>`;
}

export class ComparePage {
  constructor(root, { toast = () => {} } = {}) {
    this.root = root;
    this.toast = toast;
    this.seq = 0;
    this.data = null;
  }

  close() {
    this.seq += 1;
  }

  // `query`: the hash's own query (`point=…&point=…&range=7d&earlier=week`).
  async open(query) {
    const seq = ++this.seq;
    const q = new URLSearchParams(query || '');
    let points = q.getAll('point');
    if (!points.length) {
      try {
        const rooms = await api.get('/api/v1/rooms');
        if (seq !== this.seq) return;
        const list = Array.isArray(rooms) ? rooms : rooms.rooms || [];
        points = list.slice(0, 2).map((r) => `${r.id}.outlet_flow`);
      } catch {
        points = [];
      }
    }
    const range = RANGES[q.get('range')] ? q.get('range') : '7d';
    const earlier = EARLIER.includes(q.get('earlier') || '') ? q.get('earlier') || '' : 'week';
    this.root.innerHTML = `<div class="compare">
      <h2>${esc(t('compare.title'))}</h2>
      <p class="muted">${esc(t('compare.note'))}</p>
      <form class="cmp-form" id="cmp-form">
        <label>${esc(t('compare.points'))}<textarea id="cmp-points" rows="2" spellcheck="false" translate="no">${esc(points.join('\n'))}</textarea></label>
        <label>${esc(t('compare.range'))}<select id="cmp-range">${Object.keys(RANGES).map((r) => `<option value="${r}" ${r === range ? 'selected' : ''}>${esc(t(`compare.range_${r}`))}</option>`).join('')}</select></label>
        <label>${esc(t('compare.earlier'))}<select id="cmp-earlier">${EARLIER.map((e) => `<option value="${e}" ${e === earlier ? 'selected' : ''}>${esc(t(`compare.earlier_${e || 'none'}`))}</option>`).join('')}</select></label>
        <div class="cmp-actions">
          <button type="submit" id="cmp-show">${esc(t('compare.show'))}</button>
          <button type="button" id="cmp-xlsx">${esc(t('compare.export_xlsx'))}</button>
          <button type="button" id="cmp-csv">${esc(t('compare.export_csv'))}</button>
        </div>
      </form>
      <p class="status offline" id="cmp-error" hidden></p>
      <div id="cmp-body"></div>
    </div>`;
    const form = this.root.querySelector('#cmp-form');
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.load();
    });
    this.root.querySelector('#cmp-xlsx').addEventListener('click', () => this.export('xlsx'));
    this.root.querySelector('#cmp-csv').addEventListener('click', () => this.export('csv'));
    if (points.length) await this.load();
  }

  // The request's query for the form's choices and `format`.
  query(format) {
    const points = this.root.querySelector('#cmp-points').value.split(/[\s,，]+/).map((s) => s.trim()).filter(Boolean);
    const range = this.root.querySelector('#cmp-range').value;
    const earlier = this.root.querySelector('#cmp-earlier').value;
    const q = new URLSearchParams();
    for (const p of points.slice(0, MAX_POINTS + 1)) q.append('point', p);
    q.set('from', `-${range}`);
    if (earlier) q.set('earlier', earlier);
    q.set('format', format);
    return q;
  }

  showError(e) {
    const el = this.root.querySelector('#cmp-error');
    el.hidden = !e;
    el.textContent = e ? apiError(e) : '';
  }

  async load() {
    const seq = ++this.seq;
    const body = this.root.querySelector('#cmp-body');
    body.innerHTML = `<p class="muted">${esc(t('compare.loading'))}</p>`;
    try {
      const data = await api.get(`/api/v1/analysis/compare?${this.query('json')}`);
      if (seq !== this.seq) return;
      this.data = data;
      this.showError(null);
      const step = data.step >= 3_600_000 ? t('compare.step_h', { n: num(data.step / 3_600_000, 0) }) : t('compare.step_m', { n: num(data.step / 60_000, 0) });
      body.innerHTML = `<p class="muted" id="cmp-meta">${esc(t('compare.meta', { rows: data.times.length, step }))}</p>${chartSvg(data)}${legend(data)}`;
    } catch (e) {
      if (seq !== this.seq) return;
      body.innerHTML = '';
      this.showError(e);
    }
  }

  async export(format) {
    try {
      await api.download(`/api/v1/analysis/compare?${this.query(format)}`, `compare.${format}`);
      this.showError(null);
    } catch (e) {
      this.showError(e);
    }
  }
}
