// Trend charts on a canvas: series seeded from the historian (`GET /api/v1/history`, raw
// samples for short ranges, the historian's rollups through `step` for long ones), extended by
// live values while the range ends now, drawn at most once per animation frame and only when
// something changed. A cursor under the pointer reads every series' value at that time; what is
// shown exports as CSV or xlsx. The range picker offers the last 1 h … 30 d and an absolute
// from/to; a horizontal drag over a chart zooms to the span dragged over (an absolute range) and
// the same period before the range (yesterday for the last 24 h) can be overlaid, dashed, on the
// same time axis.

import { clock, csvText, num, date } from './format.js';
import { t } from './i18n.js';
import { get, downloadBlob } from './api.js';
import { xlsx, XLSX_TYPE } from './xlsx.js';

const STYLES = [
  { color: '#1f2326', dash: [] },
  { color: '#3f6f9f', dash: [] },
  { color: '#7a7f84', dash: [5, 3] },
  { color: '#8a5a2b', dash: [] },
];
const PREV_DASH = [2, 3];
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

// Time-axis ticks: a whole-unit step giving 3–6 ticks, labelled by clock within a day (with
// seconds below a minute's step), by date beyond.
export function timeTicks(t0, t1) {
  const span = t1 - t0;
  const steps = [10_000, 15_000, 30_000, 60_000, 300_000, 600_000, 900_000, 1800_000, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY];
  const step = steps.find((s) => span / s <= 6) || 14 * DAY;
  const offset = new Date(t0).getTimezoneOffset() * 60_000;
  const ticks = [];
  for (let tt = Math.ceil((t0 - offset) / step) * step + offset; tt <= t1; tt += step) ticks.push(tt);
  // Seconds only on a zoom shorter than a few minutes, where whole minutes would be too few.
  const label = step >= DAY ? (tt) => date(tt).replace(/^\d+\D/, '') : step < 60_000 ? (tt) => clock(tt) : (tt) => clock(tt).slice(0, 5);
  return ticks.map((tt) => [tt, label(tt)]);
}

export class Trend {
  constructor(parent, { title, unit, windowMs = HOUR, decimals = 2, min = null, max = null, onZoom = null }) {
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
    this.series = []; // {name, label, data: [[t, v]], prev: [[t, v]] shifted onto this range}
    this.frame = 0;
    this.cursor = null; // pointer x in CSS pixels
    this.drag = null; // {x0, x1} in CSS pixels while a span is being dragged over
    this.onZoom = onZoom;
    const xOf = (e) => e.clientX - this.canvas.getBoundingClientRect().left;
    // A mouse drag zooms at once. A finger sliding across reads values under the cursor, so a
    // touch zooms only after a press held still for half a second (the chart's
    // `touch-action: pan-y` leaves vertical swipes to the page's scrolling).
    let hold = 0;
    const unhold = () => {
      clearTimeout(hold);
      hold = 0;
    };
    this.canvas.addEventListener('pointerdown', (e) => {
      this.cursor = xOf(e);
      if (this.onZoom && e.button === 0) {
        const x0 = this.cursor;
        const start = () => {
          hold = 0;
          this.drag = { x0, x1: x0 };
          this.schedule();
        };
        if (e.pointerType === 'touch') hold = setTimeout(start, 500);
        else start();
        try {
          this.canvas.setPointerCapture(e.pointerId);
        } catch {
          // A synthetic or already-ended pointer: the drag still works while over the chart.
        }
      }
      this.schedule();
    });
    this.canvas.addEventListener('pointermove', (e) => {
      this.cursor = xOf(e);
      if (this.drag) this.drag.x1 = this.cursor;
      else if (hold) unhold(); // a slide before the hold: reading values, not zooming
      this.schedule();
    });
    this.canvas.addEventListener('pointerup', (e) => {
      unhold();
      const d = this.drag;
      this.drag = null;
      this.schedule();
      if (!d) return;
      d.x1 = xOf(e);
      const span = this.timeAt(Math.min(d.x0, d.x1), Math.max(d.x0, d.x1));
      // A click or a jitter of a few pixels is not a zoom; nor is a span under a minute.
      if (Math.abs(d.x1 - d.x0) >= 8 && span && span[1] - span[0] >= 60_000) this.onZoom({ from: span[0], to: span[1] });
    });
    this.canvas.addEventListener('pointercancel', () => {
      unhold();
      this.drag = null;
      this.schedule();
    });
    this.canvas.addEventListener('pointerleave', () => {
      this.cursor = null;
      this.schedule();
    });
  }

  // The chart's plot area in CSS pixels (left, right margins); `draw` and `timeAt` share it.
  static get L() {
    return 46;
  }

  static get R() {
    return 8;
  }

  // The times under x positions a and b (CSS pixels), clamped to the plot; null if not drawn.
  timeAt(a, b) {
    const w = this.canvas.clientWidth;
    if (!w) return null;
    const [t0, t1] = this.span();
    const at = (x) => t0 + ((Math.min(Math.max(x, Trend.L), w - Trend.R) - Trend.L) / (w - Trend.L - Trend.R)) * (t1 - t0);
    return [Math.round(at(a)), Math.round(at(b))];
  }

  add(name, label) {
    this.series.push({ name, label, data: [], prev: [] });
  }

  has(name) {
    return this.series.some((s) => s.name === name);
  }

  // The range shown: the last `ms` (live), or [from, to] (fixed). Clears the data.
  setRange({ ms, from, to }) {
    this.fixed = typeof from === 'number' ? { from, to } : null;
    if (ms) this.windowMs = ms;
    for (const s of this.series) {
      s.data = [];
      s.prev = [];
    }
    delete this.box.dataset.stored;
    delete this.box.dataset.previous;
    // The range shown, for tests and people reading the DOM: "from-to" in ms, or the window.
    this.box.dataset.range = this.fixed ? `${from}-${to}` : String(this.windowMs);
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

  // The previous period's history for a series, `shift` ms earlier than the range: drawn dashed
  // at its time plus `shift`, on the current axis.
  seedPrevious(name, samples, shift) {
    const s = this.series.find((x) => x.name === name);
    if (!s) return;
    s.prev = samples.map(([tt, v]) => [tt + shift, v]);
    this.box.dataset.previous = String(Number(this.box.dataset.previous || 0) + samples.length);
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
      let j = 0;
      while (j < s.prev.length && s.prev[j][0] < t1 - this.windowMs) j++;
      if (j > 0) s.prev.splice(0, j);
    }
    // The last hour, or less while less is known (a young node), never under 5 min; a longer
    // range chosen in the picker is shown whole.
    if (this.windowMs > HOUR) return [t1 - this.windowMs, t1];
    const first = Math.min(...this.series.map((s) => (s.data.length ? s.data[0][0] : t1)));
    return [t1 - Math.min(this.windowMs, Math.max(300_000, t1 - first)), t1];
  }

  // The shown series: column headers (`point [unit]`) and, per series, its samples in range by
  // time.
  columns() {
    const [t0, t1] = this.span();
    return this.series.map((s) => ({ head: `${s.name} [${this.unit}]`, values: new Map(s.data.filter(([tt]) => tt >= t0 && tt <= t1)) }));
  }

  // The shown series as CSV: a time column (ISO 8601, UTC) and one column per series, rows at
  // every time any series has a value.
  csv() {
    return csvText(tableRows([this]));
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
    for (const s of this.series) for (const [tt, v] of s.data.concat(s.prev)) {
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

    const L = Trend.L;
    const R = Trend.R;
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
    if (this.drag) {
      // The span being dragged over, shaded.
      const a = Math.min(Math.max(Math.min(this.drag.x0, this.drag.x1), L), w - R);
      const b = Math.min(Math.max(Math.max(this.drag.x0, this.drag.x1), L), w - R);
      g.fillStyle = 'rgba(63, 111, 159, 0.18)';
      g.fillRect(a, T, b - a, h - T - B);
    }
    // The previous period under the current one: each series' colour, dotted and faint.
    let prevDrawn = 0;
    this.series.forEach((s, i) => {
      if (!s.prev.length) return;
      g.strokeStyle = STYLES[i % STYLES.length].color;
      g.globalAlpha = 0.55;
      g.setLineDash(PREV_DASH);
      g.lineWidth = 1.2;
      g.beginPath();
      let n = 0;
      for (const [tt, v] of s.prev) {
        if (tt < t0 || tt > t1) continue;
        if (n++) g.lineTo(x(tt), y(v));
        else g.moveTo(x(tt), y(v));
      }
      g.stroke();
      g.globalAlpha = 1;
      g.setLineDash([]);
      if (n) prevDrawn++;
    });
    this.box.dataset.previousDrawn = String(prevDrawn);

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
    if (prevDrawn) {
      // The legend's entry for the overlay: a dotted swatch and "previous period".
      const text = t('trend.previous');
      g.fillStyle = '#50565b';
      g.fillText(text, lx, 10);
      const tw = g.measureText(text).width;
      g.strokeStyle = '#50565b';
      g.setLineDash(PREV_DASH);
      g.beginPath();
      g.moveTo(lx - tw - 16, 10);
      g.lineTo(lx - tw - 4, 10);
      g.stroke();
      g.setLineDash([]);
    }
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

// The rows of a table of `trends`' shown series: a header (time, then `point [unit]` per series)
// and a row per time any series has a value, the time as ISO 8601 (UTC) text, values as numbers
// or null where a series has none at that time.
export function tableRows(trends) {
  const cols = trends.flatMap((tr) => tr.columns());
  const times = new Set();
  for (const c of cols) for (const tt of c.values.keys()) times.add(tt);
  const rows = [[t('trend.csv_time'), ...cols.map((c) => c.head)]];
  for (const tt of [...times].sort((a, b) => a - b)) {
    rows.push([new Date(tt).toISOString(), ...cols.map((c) => (c.values.has(tt) ? c.values.get(tt) : null))]);
  }
  return rows;
}

// What `trends` show as an .xlsx file: one sheet, one table (see `tableRows`).
export function xlsxBlob(trends, sheet) {
  return new Blob([xlsx(tableRows(trends), sheet)], { type: XLSX_TYPE });
}

// The range picker: a button per relative range, an absolute from/to, "back" out of a zoom, the
// previous-period overlay and the CSV and xlsx exports. `onRange({ms} | {from, to})` on a
// choice, `onUnzoom()`, `onCompare(on)`, `onCsv()`, `onXlsx()`.
export function rangePicker(parent, { onRange, onUnzoom, onCompare, onCsv, onXlsx, initial = '1h' }) {
  const bar = document.createElement('div');
  bar.className = 'range-picker';
  bar.innerHTML = `${RANGES.map((r) => `<button type="button" data-range="${r.key}" class="${r.key === initial ? 'active' : ''}">${t(`trend.last_${r.key}`)}</button>`).join('')}
    <label>${t('trend.from')} <input type="datetime-local" data-abs="from"></label>
    <label>${t('trend.to')} <input type="datetime-local" data-abs="to"></label>
    <button type="button" data-action="apply">${t('trend.apply')}</button>
    <button type="button" data-action="unzoom" hidden>${t('trend.unzoom')}</button>
    <label class="compare"><input type="checkbox" data-action="compare"> ${t('trend.compare')}</label>
    <button type="button" data-action="csv">${t('trend.csv')}</button>
    <button type="button" data-action="xlsx">${t('trend.xlsx')}</button>
    <span class="muted range-hint">${t('trend.drag_hint')}</span>
    <span class="muted range-error"></span>`;
  bar.querySelector('[data-action=compare]').addEventListener('change', (e) => onCompare(e.target.checked));
  bar.addEventListener('click', (e) => {
    const b = e.target.closest('button');
    if (!b) return;
    const err = bar.querySelector('.range-error');
    err.textContent = '';
    if (b.dataset.range) {
      onRange({ ms: RANGES.find((r) => r.key === b.dataset.range).ms });
    } else if (b.dataset.action === 'apply') {
      const from = new Date(bar.querySelector('[data-abs=from]').value).getTime();
      const to = new Date(bar.querySelector('[data-abs=to]').value).getTime();
      if (!(from < to) || to - from > 366 * DAY) {
        err.textContent = t('trend.bad_range');
        return;
      }
      onRange({ from, to });
    } else if (b.dataset.action === 'unzoom') {
      onUnzoom();
    } else if (b.dataset.action === 'csv') {
      onCsv();
    } else if (b.dataset.action === 'xlsx') {
      onXlsx();
    }
  });
  parent.appendChild(bar);
  return bar;
}

// Shows `range` as chosen in the picker `bar`: its relative button lit (none for an absolute
// range), and "back" offered while `zoomed`.
export function showRange(bar, range, zoomed) {
  const key = range.ms && typeof range.from !== 'number' ? (RANGES.find((r) => r.ms === range.ms) || {}).key : null;
  for (const b of bar.querySelectorAll('button[data-range]')) b.classList.toggle('active', b.dataset.range === key);
  bar.querySelector('[data-action=unzoom]').hidden = !zoomed;
}

// A full point id (`XM-0042.outlet_pressure`, `XM-0042/T1.level`) split into its owner (room or
// device), its room and its name; null if `id` is not one.
export function parsePoint(id) {
  const m = /^(([A-Za-z0-9_-]+)(?:\/[A-Za-z0-9_-]+)?)\.([a-z0-9_]+)$/.exec(String(id).trim());
  return m ? { owner: m[1], room: m[2], name: m[3] } : null;
}

// "Add a point": a text input offering `options` (point ids) that takes any full point id, and
// its button; `onAdd(id)` returns a promise whose rejection is shown as the reason.
export function pointAdder(parent, { options, onAdd }) {
  const form = document.createElement('form');
  form.className = 'point-adder';
  const list = `pa-${Math.random().toString(36).slice(2)}`;
  form.innerHTML = `<input type="text" list="${list}" data-role="point" translate="no" spellcheck="false" autocomplete="off" aria-label="${t('trend.add_point_label')}" placeholder="${t('trend.add_point_hint')}">
    <datalist id="${list}">${options.map((o) => `<option value="${o.replace(/"/g, '&quot;')}"></option>`).join('')}</datalist>
    <button type="submit">${t('trend.add_point')}</button>
    <span class="muted adder-error"></span>`;
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const input = form.querySelector('input');
    const err = form.querySelector('.adder-error');
    err.textContent = '';
    Promise.resolve(onAdd(input.value.trim()))
      .then(() => {
        input.value = '';
      })
      .catch((reason) => {
        err.textContent = reason && reason.message ? reason.message : String(reason);
      });
  });
  parent.appendChild(form);
  return form;
}

// Saves `text` as a file named `name` (a download the browser asks nothing about), UTF-8 with
// a byte-order mark so that Excel opens Chinese text correctly.
export function download(name, text, type = 'text/csv;charset=utf-8') {
  downloadBlob(name, new Blob(['\ufeff', text], { type }));
}

// Saves `blob` as a file named `name` (kept here for the pages that import it from the trends).
export { downloadBlob } from './api.js';
