// A live trend chart on a canvas: series seeded from the historian (`GET /api/v1/history`),
// extended by live values, trimmed to a sliding window, drawn at most once per animation frame
// and only when something changed.

import { clock } from './format.js';

const STYLES = [
  { color: '#1f2326', dash: [] },
  { color: '#3f6f9f', dash: [] },
  { color: '#7a7f84', dash: [5, 3] },
  { color: '#8a5a2b', dash: [] },
];

export class Trend {
  constructor(parent, { title, unit, windowMs = 3600_000, decimals = 2, min = null, max = null }) {
    this.box = document.createElement('div');
    this.box.className = 'trend';
    this.canvas = document.createElement('canvas');
    this.box.appendChild(this.canvas);
    parent.appendChild(this.box);
    this.title = title;
    this.unit = unit;
    this.windowMs = windowMs;
    this.decimals = decimals;
    this.fixedMin = min;
    this.fixedMax = max;
    this.series = []; // {name, label, data: [[t, v]]}
    this.frame = 0;
  }

  add(name, label) {
    this.series.push({ name, label, data: [] });
  }

  has(name) {
    return this.series.some((s) => s.name === name);
  }

  // History for a series: replaces what it held before `samples`' last time.
  seed(name, samples) {
    const s = this.series.find((x) => x.name === name);
    if (!s) return;
    const last = samples.length ? samples[samples.length - 1][0] : -Infinity;
    s.data = samples.concat(s.data.filter(([t]) => t > last));
    this.schedule();
  }

  // A live value; ignored unless newer than the series' last.
  push(name, t, v) {
    const s = this.series.find((x) => x.name === name);
    if (!s || typeof t !== 'number' || typeof v !== 'number') return;
    const n = s.data.length;
    if (n && s.data[n - 1][0] >= t) return;
    s.data.push([t, v]);
    this.schedule();
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
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

    const now = Date.now();
    const t1 = Math.max(now, ...this.series.map((s) => (s.data.length ? s.data[s.data.length - 1][0] : 0)));
    for (const s of this.series) {
      let i = 0;
      while (i < s.data.length && s.data[i][0] < t1 - this.windowMs) i++;
      if (i > 0) s.data.splice(0, i);
    }
    // The window: the last hour, or less while less is known (a young node), never under 5 min.
    const first = Math.min(...this.series.map((s) => (s.data.length ? s.data[0][0] : t1)));
    const t0 = t1 - Math.min(this.windowMs, Math.max(300_000, t1 - first));
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of this.series) for (const [, v] of s.data) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (this.fixedMin !== null) lo = Math.min(lo, this.fixedMin);
    if (this.fixedMax !== null) hi = Math.max(hi, this.fixedMax);
    if (!Number.isFinite(lo)) {
      lo = 0;
      hi = 1;
    }
    if (hi - lo < 1e-9) {
      hi += Math.abs(hi) * 0.05 + 0.01;
      lo -= Math.abs(lo) * 0.05 + 0.01;
    }
    const padV = (hi - lo) * 0.08;
    lo -= padV;
    hi += padV;

    const L = 46;
    const R = 8;
    const T = 22;
    const B = 18;
    const x = (t) => L + ((t - t0) / (t1 - t0)) * (w - L - R);
    const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (h - T - B);

    g.font = '11px "DejaVu Sans", Arial, sans-serif';
    g.fillStyle = '#50565b';
    g.textBaseline = 'middle';
    g.textAlign = 'left';
    g.fillText(`${this.title} [${this.unit}]`, 6, 10);

    // Grid: five value lines, a time line every quarter of the window.
    g.strokeStyle = '#d3d5d7';
    g.lineWidth = 1;
    g.textAlign = 'right';
    for (let k = 0; k <= 4; k++) {
      const v = lo + ((hi - lo) * k) / 4;
      const yy = Math.round(y(v)) + 0.5;
      g.beginPath();
      g.moveTo(L, yy);
      g.lineTo(w - R, yy);
      g.stroke();
      g.fillStyle = '#6b7176';
      g.fillText(v.toFixed(this.decimals), L - 4, yy);
    }
    g.textAlign = 'center';
    g.textBaseline = 'alphabetic';
    for (let k = 0; k <= 4; k++) {
      const t = t0 + ((t1 - t0) * k) / 4;
      const xx = Math.round(x(t)) + 0.5;
      g.beginPath();
      g.moveTo(xx, T);
      g.lineTo(xx, h - B);
      g.stroke();
      g.fillText(clock(t).slice(0, 5), Math.min(Math.max(xx, L + 14), w - R - 14), h - 5);
    }

    // The series, and a legend with each one's latest value.
    let lx = w - R;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    this.series.forEach((s, i) => {
      const st = STYLES[i % STYLES.length];
      g.strokeStyle = st.color;
      g.setLineDash(st.dash);
      g.lineWidth = 1.4;
      g.beginPath();
      let first = true;
      for (const [t, v] of s.data) {
        const px = x(t);
        const py = y(v);
        if (first) g.moveTo(px, py);
        else g.lineTo(px, py);
        first = false;
      }
      g.stroke();
      g.setLineDash([]);
      const last = s.data.length ? s.data[s.data.length - 1][1].toFixed(this.decimals) : '—';
      const text = `${s.label} ${last}`;
      g.fillStyle = st.color;
      g.fillText(text, lx, 10);
      const tw = g.measureText(text).width;
      g.fillRect(lx - tw - 14, 9, 10, 2);
      lx -= tw + 22;
    });
  }
}
