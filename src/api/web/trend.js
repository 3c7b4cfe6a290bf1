// Trend charts on a canvas: series seeded from the historian (`GET /api/v1/history`, raw
// samples for short ranges, the historian's rollups through `step` for long ones), extended by
// live values while the range ends now, drawn at most once per animation frame and only when
// something changed. A cursor under the pointer reads every series' value at that time; what is
// shown exports as CSV. The range picker offers the last 1 h … 30 d and an absolute from/to.

import { clock, num, date } from './format.js';
import { t } from './i18n.js';
import { get } from './api.js';

const STYLES = [
  { color: '#1f2326', dash: [] },
  { color: '#3f6f9f', dash: [] },
  { color: '#7a7f84', dash: [5, 3] },
  { color: '#8a5a2b', dash: [] },
];
const HOUR = 3600_000;
const DAY = 24 * HOUR;

// The picker's relative ranges.
export const RANGES = [
  { key: '1h', ms: HOUR },
  { key: '8h', ms: 8 * HOUR },
  { key: '24h', ms: DAY },
  { key: '7d', ms: 7 * DAY },
  { key: '30d', ms: 30 * DAY },
];

// The historian's bucket for a span: raw samples up to 2 h (≤ 3,600 per point at 2 s), then
// whole-minute or whole-hour steps, which the historian serves from its rollups (≤ ~1,500
// buckets per point, one per few pixels of a wide chart).
export function stepFor(spanMs) {
  if (spanMs <= 2 * HOUR) return null;
  if (spanMs <= DAY) return '1m';
  if (spanMs <= 8 * DAY) return '10m';
  return '1h';
}

// Stored history of up to 20 points over [from, to]: `{point: [[t, v], ...]}`, a bucket's mean
// standing for its value.
export async function loadHistory(points, from, to) {
  const step = stepFor(to - from);
  const q = points.map((p) => `point=${encodeURIComponent(p)}`).join('&');
  const body = await get(`/api/v1/history?${q}&from=${Math.round(from)}&to=${Math.round(to)}${step ? `&step=${step}` : ''}`);
  const out = {};
  for (const s of body.series || []) {
    out[s.point] = s.samples || (s.buckets || []).map((b) => [b.t, b.mean]);
  }
  return out;
}

// Value-axis ticks at a "nice" step (1, 2, 5 × 10^k) covering [lo, hi], with the decimals the
// step needs so that no two labels read the same.
export function niceTicks(lo, hi, count = 5) {
  const raw = (hi - lo) / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9) + (step / mag === 2.5 ? 1 : 0));
  const ticks = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toFixed(10)));
  return { ticks, decimals };
}

// Time-axis ticks: a whole-unit step giving 3–6 ticks, labelled by clock within a day, by date
// beyond.
export function timeTicks(t0, t1) {
  const span = t1 - t0;
  const steps = [60_000, 300_000, 600_000, 900_000, 1800_000, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY];
  const step = steps.find((s) => span / s <= 6) || 14 * DAY;
  const offset = new Date(t0).getTimezoneOffset() * 60_000;
  const ticks = [];
  for (let tt = Math.ceil((t0 - offset) / step) * step + offset; tt <= t1; tt += step) ticks.push(tt);
  const label = step >= DAY ? (tt) => date(tt).replace(/^\d+\D/, '') : (tt) => clock(tt).slice(0, 5);
  return ticks.map((tt) => [tt, label(tt)]);
}

export class Trend {
  constructor(parent, { title, unit, windowMs = HOUR, decimals = 2, min = null, max = null }) {
    this.box = document.createElement('div');
    this.box.className = 'trend';
    this.canvas = document.createElement('canvas');
    this.box.appendChild(this.canvas);
    parent.appendChild(this.box);
    this.title = title;
    this.unit = unit;
    this.windowMs = windowMs;
    this.fixed = null; // {from, to} for an absolute range; null while the range ends now
    this.decimals = decimals;
    this.fixedMin = min;
    this.fixedMax = max;
    this.series = []; // {name, label, data: [[t, v]]}
    this.frame = 0;
    this.cursor = null; // pointer x in CSS pixels
    const move = (e) => {
      const r = this.canvas.getBoundingClientRect();
      this.cursor = e.clientX - r.left;
      this.schedule();
    };
    this.canvas.addEventListener('pointermove', move);
    this.canvas.addEventListener('pointerdown', move);
    this.canvas.addEventListener('pointerleave', () => {
      this.cursor = null;
      this.schedule();
    });
  }

  add(name, label) {
    this.series.push({ name, label, data: [] });
  }

  has(name) {
    return this.series.some((s) => s.name === name);
  }

  // The range shown: the last `ms` (live), or [from, to] (fixed). Clears the data.
  setRange({ ms, from, to }) {
    this.fixed = typeof from === 'number' ? { from, to } : null;
    if (ms) this.windowMs = ms;
    for (const s of this.series) s.data = [];
    delete this.box.dataset.stored;
    this.schedule();
  }

  // History for a series: replaces what it held before `samples`' last time.
  seed(name, samples) {
    const s = this.series.find((x) => x.name === name);
    if (!s) return;
    const last = samples.length ? samples[samples.length - 1][0] : -Infinity;
    s.data = samples.concat(s.data.filter(([tt]) => tt > last));
    // How many stored samples the chart holds (for tests and people reading the DOM).
    this.box.dataset.stored = String(Number(this.box.dataset.stored || 0) + samples.length);
    this.schedule();
  }

  // A live value; ignored on a fixed range and unless newer than the series' last.
  push(name, tt, v) {
    const s = this.series.find((x) => x.name === name);
    if (this.fixed || !s || typeof tt !== 'number' || typeof v !== 'number') return;
    const n = s.data.length;
    if (n && s.data[n - 1][0] >= tt) return;
    s.data.push([tt, v]);
    this.schedule();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
  }

  // The time span shown.
  span() {
    if (this.fixed) return [this.fixed.from, this.fixed.to];
    const t1 = Math.max(Date.now(), ...this.series.map((s) => (s.data.length ? s.data[s.data.length - 1][0] : 0)));
    for (const s of this.series) {
      let i = 0;
      while (i < s.data.length && s.data[i][0] < t1 - this.windowMs) i++;
      if (i > 0) s.data.splice(0, i);
    }
    // The last hour, or less while less is known (a young node), never under 5 min; a longer
    // range chosen in the picker is shown whole.
    if (this.windowMs > HOUR) return [t1 - this.windowMs, t1];
    const first = Math.min(...this.series.map((s) => (s.data.length ? s.data[0][0] : t1)));
    return [t1 - Math.min(this.windowMs, Math.max(300_000, t1 - first)), t1];
  }

  // The shown series as CSV: a time column (ISO 8601, UTC) and one column per series, rows at
  // every time any series has a value.
  csv() {
    const [t0, t1] = this.span();
    const times = new Set();
    const maps = this.series.map((s) => new Map(s.data.filter(([tt]) => tt >= t0 && tt <= t1)));
    for (const m of maps) for (const tt of m.keys()) times.add(tt);
    const quote = (x) => `"${String(x).replace(/"/g, '""')}"`;
    const rows = [[t('trend.csv_time'), ...this.series.map((s) => `${s.name} [${this.unit}]`)].map(quote).join(',')];
    for (const tt of [...times].sort((a, b) => a - b)) {
      rows.push([new Date(tt).toISOString(), ...maps.map((m) => (m.has(tt) ? String(m.get(tt)) : ''))].join(','));
    }
    return `${rows.join('\r\n')}\r\n`;
  }

  draw() {
    this.frame = 0;
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (!w || !h) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);

    const [t0, t1] = this.span();
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of this.series) for (const [tt, v] of s.data) {
      if (tt < t0 || tt > t1) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (this.fixedMin !== null) lo = Math.min(lo, this.fixedMin);
    if (this.fixedMax !== null) hi = Math.max(hi, this.fixedMax);
    const empty = !Number.isFinite(lo);
    if (empty) {
      lo = 0;
      hi = 1;
    }
    if (hi - lo < 1e-9) {
      hi += Math.abs(hi) * 0.05 + 0.01;
      lo -= Math.abs(lo) * 0.05 + 0.01;
    }
    // Padding never takes a non-negative quantity (a pressure, a level) below zero.
    const padV = (hi - lo) * 0.08;
    lo = lo >= 0 ? Math.max(0, lo - padV) : lo - padV;
    hi += padV;
    const { ticks, decimals } = niceTicks(lo, hi);
    lo = Math.min(lo, ticks[0]);
    hi = Math.max(hi, ticks[ticks.length - 1]);

    const L = 46;
    const R = 8;
    const T = 22;
    const B = 18;
    const x = (tt) => L + ((tt - t0) / (t1 - t0)) * (w - L - R);
    const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (h - T - B);

    g.font = '11px "DejaVu Sans", "Noto Sans CJK SC", Arial, sans-serif';
    g.fillStyle = '#50565b';
    g.textBaseline = 'middle';
    g.textAlign = 'left';
    g.fillText(`${this.title} [${this.unit}]`, 6, 10);

    g.strokeStyle = '#d3d5d7';
    g.lineWidth = 1;
    g.textAlign = 'right';
    for (const v of ticks) {
      const yy = Math.round(y(v)) + 0.5;
      g.beginPath();
      g.moveTo(L, yy);
      g.lineTo(w - R, yy);
      g.stroke();
      g.fillStyle = '#6b7176';
      g.fillText(v.toFixed(decimals), L - 4, yy);
    }
    g.textAlign = 'center';
    g.textBaseline = 'alphabetic';
    let lastRight = -Infinity;
    for (const [tt, label] of timeTicks(t0, t1)) {
      const xx = Math.round(x(tt)) + 0.5;
      g.beginPath();
      g.moveTo(xx, T);
      g.lineTo(xx, h - B);
      g.stroke();
      const tw = g.measureText(label).width;
      const cx = Math.min(Math.max(xx, L + tw / 2), w - R - tw / 2);
      if (cx - tw / 2 < lastRight + 6) continue; // no overlapping labels on a narrow chart
      g.fillText(label, cx, h - 5);
      lastRight = cx + tw / 2;
    }
    if (empty) {
      g.fillStyle = '#83898e';
      g.fillText(t('trend.no_data'), (L + w - R) / 2, (T + h - B) / 2);
    }

    // The series, and a legend with each one's latest value, or its value under the cursor.
    const at = this.cursor !== null && this.cursor >= L && this.cursor <= w - R ? t0 + ((this.cursor - L) / (w - L - R)) * (t1 - t0) : null;
    let lx = w - R;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    this.series.forEach((s, i) => {
      const st = STYLES[i % STYLES.length];
      g.strokeStyle = st.color;
      g.setLineDash(st.dash);
      g.lineWidth = 1.4;
      g.beginPath();
      let drawn = 0;
      let px = 0;
      let py = 0;
      for (const [tt, v] of s.data) {
        if (tt < t0) continue;
        px = x(tt);
        py = y(v);
        if (drawn++) g.lineTo(px, py);
        else g.moveTo(px, py);
      }
      g.stroke();
      // A lone sample (one bucket of a long range) as a dot: no line joins it to anything.
      if (drawn === 1) {
        g.fillStyle = st.color;
        g.fillRect(px - 2, py - 2, 4, 4);
      }
      g.setLineDash([]);
      const shown = at === null ? s.data[s.data.length - 1] : nearest(s.data, at);
      const text = `${s.label} ${shown ? num(shown[1], this.decimals) : '—'}`;
      g.fillStyle = st.color;
      g.fillText(text, lx, 10);
      const tw = g.measureText(text).width;
      g.fillRect(lx - tw - 14, 9, 10, 2);
      lx -= tw + 22;
    });
    if (at !== null) {
      g.strokeStyle = '#1f2326';
      g.lineWidth = 1;
      g.beginPath();
      g.moveTo(Math.round(this.cursor) + 0.5, T);
      g.lineTo(Math.round(this.cursor) + 0.5, h - B);
      g.stroke();
      const label = t1 - t0 > DAY ? `${date(at)} ${clock(at).slice(0, 5)}` : clock(at);
      g.fillStyle = '#1f2326';
      g.textAlign = this.cursor > w / 2 ? 'right' : 'left';
      g.fillText(label, this.cursor + (this.cursor > w / 2 ? -4 : 4), T + 8);
    }
  }
}

// The sample of `data` (sorted by time) nearest `at`.
function nearest(data, at) {
  let a = 0;
  let b = data.length - 1;
  if (b < 0) return null;
  while (b - a > 1) {
    const m = (a + b) >> 1;
    if (data[m][0] < at) a = m;
    else b = m;
  }
  return Math.abs(data[a][0] - at) <= Math.abs(data[b][0] - at) ? data[a] : data[b];
}

// The range picker: a button per relative range, an absolute from/to, and the CSV export.
// `onRange({ms} | {from, to})` on a choice; `onCsv()` for the export.
export function rangePicker(parent, { onRange, onCsv, initial = '1h' }) {
  const bar = document.createElement('div');
  bar.className = 'range-picker';
  bar.innerHTML = `${RANGES.map((r) => `<button type="button" data-range="${r.key}" class="${r.key === initial ? 'active' : ''}">${t(`trend.last_${r.key}`)}</button>`).join('')}
    <label>${t('trend.from')} <input type="datetime-local" data-abs="from"></label>
    <label>${t('trend.to')} <input type="datetime-local" data-abs="to"></label>
    <button type="button" data-action="apply">${t('trend.apply')}</button>
    <button type="button" data-action="csv">${t('trend.csv')}</button>
    <span class="muted range-error"></span>`;
  const mark = (el) => {
    for (const b of bar.querySelectorAll('button[data-range]')) b.classList.toggle('active', b === el);
  };
  bar.addEventListener('click', (e) => {
    const b = e.target.closest('button');
    if (!b) return;
    const err = bar.querySelector('.range-error');
    err.textContent = '';
    if (b.dataset.range) {
      mark(b);
      onRange({ ms: RANGES.find((r) => r.key === b.dataset.range).ms });
    } else if (b.dataset.action === 'apply') {
      const from = new Date(bar.querySelector('[data-abs=from]').value).getTime();
      const to = new Date(bar.querySelector('[data-abs=to]').value).getTime();
      if (!(from < to) || to - from > 366 * DAY) {
        err.textContent = t('trend.bad_range');
        return;
      }
      mark(null);
      onRange({ from, to });
    } else if (b.dataset.action === 'csv') {
      onCsv();
    }
  });
  parent.appendChild(bar);
  return bar;
}

// Saves `text` as a file named `name` (a download the browser asks nothing about).
export function download(name, text, type = 'text/csv;charset=utf-8') {
  const url = URL.createObjectURL(new Blob(['\ufeff', text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
