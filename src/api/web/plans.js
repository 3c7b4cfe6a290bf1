// Peak-shaving plans (issue 7) on screen: what each tank's controller was told to fill and when,
// and per district the planned against the actual inflow from the main. Read over REST only
// when a screen showing them is open (one room or one district, refreshed once a minute):
// plans change at most every 15 min, and nothing here scales with the fleet.

import { esc, num, stamp } from './format.js';
import { get } from './api.js';

const NS = 'http://www.w3.org/2000/svg';
const HOUR = 3600_000;
const SLOT = 900_000;
export const REFRESH_MS = 60_000;

const pad = (n) => String(n).padStart(2, '0');
// Local wall-clock time, minutes only.
export function hm(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// The controller's `fill_mode` point: 0 float valve, 1 plan, 2 fallback (the last plan's local rule).
export const FILL_MODES = { 0: 'float valve', 1: 'plan', 2: 'fallback' };

export function fillModeLabel(v) {
  return v === null || v === undefined ? '—' : FILL_MODES[Math.round(v)] || `mode ${v}`;
}

function svgEl(parent, name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

// "written 12:03" or "failed 12:03: reason"; what the controller holds of the plan.
export function deliveryText(t) {
  const at = typeof t.delivered_at_ms === 'number' ? ` ${hm(t.delivered_at_ms)}` : '';
  if (t.delivery === 'failed') return `failed${at}: ${t.delivery_error || 'no reason given'}`;
  return `${t.delivery || 'none'}${at}`;
}

// A tank's plan over the next 24 h: its fill windows as bars (height by rate), the hours on a
// local clock, now at the left edge. Titles carry each window's figures.
export function planStrip(plan, now = Date.now()) {
  const W = 300;
  const H = 46;
  const top = 4;
  const base = 32;
  const t0 = now;
  const t1 = now + 24 * HOUR;
  const x = (t) => ((Math.max(t0, Math.min(t1, t)) - t0) / (t1 - t0)) * W;
  const svg = svgEl(null, 'svg', { class: 'plan-strip', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img' });
  svg.setAttribute('aria-label', 'fill windows over the next 24 hours');
  svgEl(svg, 'rect', { class: 'bg', x: 0, y: top, width: W, height: base - top });
  const windows = (plan && plan.windows) || [];
  const maxRate = Math.max(1e-9, ...windows.map((w) => w.rate_m3h));
  for (const w of windows) {
    if (w.end_ms <= t0 || w.start_ms >= t1) continue;
    const h = Math.max(2, ((base - top) * w.rate_m3h) / maxRate);
    const r = svgEl(svg, 'rect', { class: 'win', x: x(w.start_ms), y: base - h, width: Math.max(1, x(w.end_ms) - x(w.start_ms)), height: h });
    svgEl(r, 'title', {}, `${hm(w.start_ms)}–${hm(w.end_ms)} · ${num(w.rate_m3h, 1)} m³/h · to ${num(w.target_level_m, 2)} m`);
  }
  if (plan && plan.expires_at_ms < t1) {
    svgEl(svg, 'line', { class: 'expiry', x1: x(plan.expires_at_ms), x2: x(plan.expires_at_ms), y1: top, y2: base });
  }
  // Ticks on the local hours divisible by 6.
  const first = new Date(t0);
  first.setMinutes(0, 0, 0);
  for (let t = first.getTime() + HOUR; t < t1; t += HOUR) {
    if (new Date(t).getHours() % 6) continue;
    svgEl(svg, 'line', { class: 'tick', x1: x(t), x2: x(t), y1: base, y2: base + 3 });
    // Clear of the "now" label at the left edge.
    if (x(t) > 34) svgEl(svg, 'text', { x: Math.min(W - 14, x(t)), y: H - 2, 'text-anchor': 'middle' }, hm(t));
  }
  svgEl(svg, 'text', { x: 0, y: H - 2 }, 'now');
  return svg;
}

// The windows as rows: start–end (local), rate, target level.
export function windowRows(plan, now = Date.now()) {
  const windows = ((plan && plan.windows) || []).filter((w) => w.end_ms > now);
  if (!windows.length) return '<div class="empty">No fill window ahead.</div>';
  return `<table class="grid windows"><thead><tr><th>Window</th><th class="n">m³/h</th><th class="n">to m</th></tr></thead><tbody>${windows
    .map((w) => `<tr><td>${esc(hm(w.start_ms))}–${esc(hm(w.end_ms))}</td><td class="n">${esc(num(w.rate_m3h, 1))}</td><td class="n">${esc(num(w.target_level_m, 2))}</td></tr>`)
    .join('')}</tbody></table>`;
}

// One tank's plan block for the room page: `entry` its `tank_plans` item (or none), `mode` the
// live fill_mode value.
export function tankPlanBlock(entry, mode, now = Date.now()) {
  const box = document.createElement('div');
  box.className = 'tank-plan';
  const modeCls = mode === null || mode === undefined ? '' : Math.round(mode) === 2 ? ' abn' : '';
  const head = `<div class="fill-mode">fill mode <b class="mode${modeCls}">${esc(fillModeLabel(mode))}</b></div>`;
  if (!entry || !entry.plan) {
    const why = entry ? ` (${esc(entry.state)})` : '';
    box.innerHTML = `${head}<div class="empty no-plan">No plan${why}.</div>`;
    return box;
  }
  const failed = entry.delivery === 'failed';
  box.innerHTML = `${head}
    <div>priority <b>${esc(entry.plan.priority)}</b> · until ${esc(hm(entry.plan.expires_at_ms))} · fallback ${esc(num(entry.plan.fallback_level_m, 2))} m</div>
    <div class="delivery${failed ? ' abn' : ''}">delivery ${esc(deliveryText(entry))}</div>`;
  box.appendChild(planStrip(entry.plan, now));
  const rows = document.createElement('div');
  rows.innerHTML = windowRows(entry.plan, now);
  box.appendChild(rows.firstElementChild);
  return box;
}

// The district timeline: planned and actual inflow per 15-min slot, network peak windows
// shaded, now marked. Drawn like the trend charts (grid, value labels, legend), in SVG.
export function timelineChart(slots, now = Date.now()) {
  const W = 1000;
  const H = 220;
  const L = 46;
  const R = 10;
  const T = 28;
  const B = 20;
  const svg = svgEl(null, 'svg', { class: 'timeline', viewBox: `0 0 ${W} ${H}`, role: 'img' });
  svg.setAttribute('aria-label', 'planned and actual inflow per 15 minutes');
  svgEl(svg, 'text', { class: 'title', x: 6, y: 13 }, 'District inflow [m³/h]');
  if (!slots.length) {
    svgEl(svg, 'text', { class: 'empty', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'No timeline yet.');
    return svg;
  }
  const t0 = slots[0].start_ms;
  const t1 = slots[slots.length - 1].start_ms + SLOT;
  let hi = 0;
  for (const s of slots) hi = Math.max(hi, s.planned_inflow_m3h || 0, s.actual_inflow_m3h || 0);
  hi = hi > 0 ? hi * 1.08 : 1;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / hi) * (H - T - B);
  // Each run of peak slots as one band (adjacent per-slot rects would show seams).
  for (let i = 0; i < slots.length; i++) {
    if (!slots[i].peak) continue;
    let j = i;
    while (j + 1 < slots.length && slots[j + 1].peak && slots[j + 1].start_ms === slots[j].start_ms + SLOT) j++;
    svgEl(svg, 'rect', { class: 'peak', x: x(slots[i].start_ms), y: T, width: x(slots[j].start_ms + SLOT) - x(slots[i].start_ms), height: H - T - B });
    i = j;
  }
  for (let k = 0; k <= 4; k++) {
    const v = (hi * k) / 4;
    svgEl(svg, 'line', { class: 'grid', x1: L, x2: W - R, y1: y(v), y2: y(v) });
    svgEl(svg, 'text', { x: L - 4, y: y(v) + 3, 'text-anchor': 'end' }, v.toFixed(1));
  }
  // A time line at every local midnight and noon.
  const first = new Date(t0);
  first.setMinutes(0, 0, 0);
  for (let t = first.getTime() + HOUR; t < t1; t += HOUR) {
    if (new Date(t).getHours() % 12) continue;
    svgEl(svg, 'line', { class: 'grid', x1: x(t), x2: x(t), y1: T, y2: H - B });
    svgEl(svg, 'text', { x: Math.min(W - R - 30, Math.max(L + 30, x(t))), y: H - 5, 'text-anchor': 'middle' }, stamp(t).slice(0, 11));
  }
  // Step lines; the actual one breaks where a slot has no sample.
  const step = (key) => {
    let d = '';
    let open = false;
    for (const s of slots) {
      const v = s[key];
      if (typeof v !== 'number') {
        open = false;
        continue;
      }
      d += `${open ? 'L' : 'M'}${x(s.start_ms).toFixed(1)} ${y(v).toFixed(1)}L${x(s.start_ms + SLOT).toFixed(1)} ${y(v).toFixed(1)}`;
      open = true;
    }
    return d;
  };
  const planned = step('planned_inflow_m3h');
  const actual = step('actual_inflow_m3h');
  if (planned) svgEl(svg, 'path', { class: 'planned', d: planned });
  if (actual) svgEl(svg, 'path', { class: 'actual', d: actual });
  if (now >= t0 && now <= t1) {
    svgEl(svg, 'line', { class: 'now', x1: x(now), x2: x(now), y1: T, y2: H - B });
    svgEl(svg, 'text', { class: 'now-label', x: x(now) + 3, y: T + 10 }, 'now');
  }
  // The legend, right-aligned like the trend charts'.
  const legend = [['actual', 'actual'], ['planned', 'planned'], ['peak', 'network peak']];
  let lx = W - R;
  for (const [cls, label] of legend) {
    const tx = svgEl(svg, 'text', { class: `legend ${cls}`, x: lx, y: 13, 'text-anchor': 'end' }, label);
    const tw = label.length * 6.2;
    svgEl(svg, 'rect', { class: `key ${cls}`, x: lx - tw - 14, y: cls === 'peak' ? 5 : 9, width: 10, height: cls === 'peak' ? 9 : 2 });
    lx -= tw + 24;
    tx.dataset.key = cls;
  }
  return svg;
}

// The plans screen: the planned districts (#/plans) and one district's timeline and tanks
// (#/plans/{district}).
export class PlansPage {
  constructor(root) {
    this.root = root;
    this.district = undefined;
    this.timer = 0;
    this.seq = 0;
  }

  open(district) {
    if (this.district === district && this.timer) return;
    this.close();
    this.district = district;
    this.root.innerHTML = `<div class="plans-head"><h1>Tank plans</h1><nav class="districts" id="p-districts"><span class="muted">loading…</span></nav></div>
      <div id="p-body"></div>`;
    this.load();
    this.timer = setInterval(() => this.load(), REFRESH_MS);
  }

  close() {
    if (this.timer) clearInterval(this.timer);
    this.timer = 0;
    this.district = undefined;
    this.seq++;
  }

  async load() {
    const seq = ++this.seq;
    const $ = (s) => this.root.querySelector(s);
    try {
      const list = await get('/api/v1/districts');
      if (seq !== this.seq) return;
      const ds = list.districts || [];
      const current = this.district || (ds[0] && ds[0].district);
      $('#p-districts').innerHTML = ds.length
        ? ds.map((d) => `<a href="#/plans/${encodeURIComponent(d.district)}" data-district="${esc(d.district)}" class="${d.district === current ? 'active' : ''}">${esc(d.district)} <span class="muted">${d.planned}/${d.tanks}</span></a>`).join('')
        : '<span class="empty">No district has planned tanks.</span>';
      if (!current) {
        $('#p-body').innerHTML = '';
        return;
      }
      const view = await get(`/api/v1/districts/${encodeURIComponent(current)}/plan`);
      if (seq !== this.seq) return;
      this.render(view);
    } catch (e) {
      if (seq === this.seq) $('#p-body').innerHTML = `<div class="panel"><span class="abn">${esc(e.message)}</span></div>`;
    }
  }

  render(view) {
    const body = this.root.querySelector('#p-body');
    const now = Date.now();
    const r = view.last_round;
    const round = r
      ? `round ${view.rounds} at ${esc(hm(view.last_round_at_ms))} · ${r.bids} bids · ceiling ${esc(num(r.ceiling_m3h, 1))} m³/h · planned peak ${esc(num(r.planned_peak_m3h, 1))} m³/h`
      : 'no planning round yet';
    body.innerHTML = `<div class="panel"><h2>${esc(view.district)} <span class="muted">${round}</span></h2><div id="p-timeline"></div></div>
      <div class="panel"><h2>Tanks</h2><table class="grid plan-tanks"><thead><tr><th>Tank</th><th>State</th><th class="n">Priority</th><th>Windows (next 24 h)</th><th>Until</th><th>Delivery</th><th class="n">Learned</th></tr></thead><tbody>${(view.tanks || [])
        .map((t) => {
          const p = t.plan;
          const room = t.tank.split('/')[0];
          const failed = t.delivery === 'failed';
          return `<tr data-tank="${esc(t.tank)}"><td><a class="roomlink" href="#/room/${encodeURIComponent(room)}">${esc(t.tank)}</a></td><td>${esc(t.state)}</td>
            <td class="n">${p ? esc(p.priority) : '—'}</td><td class="strip"></td><td>${p ? esc(hm(p.expires_at_ms)) : '—'}</td>
            <td class="${failed ? 'abn' : ''}">${esc(deliveryText(t))}</td><td class="n">${esc(t.observations)}</td></tr>`;
        })
        .join('')}</tbody></table></div>`;
    body.querySelector('#p-timeline').appendChild(timelineChart(view.timeline || [], now));
    for (const t of view.tanks || []) {
      const cell = body.querySelector(`tr[data-tank="${CSS.escape(t.tank)}"] td.strip`);
      if (cell) cell.appendChild(t.plan ? planStrip(t.plan, now) : Object.assign(document.createElement('span'), { className: 'empty', textContent: 'no plan' }));
    }
  }
}
