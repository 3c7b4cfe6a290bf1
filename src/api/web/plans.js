// Peak-shaving plans (issue 7) on screen: what each tank's controller was told to fill and when,
// and per district the planned against the actual inflow from the main. Read over REST only
// when a screen showing them is open (one room or one district, refreshed once a minute):
// plans change at most every 15 min, and nothing here scales with the fleet.

import { esc, num, stamp, zoneLabel } from './format.js';
import { t, has, apiError } from './i18n.js';
import { get, BACKGROUND } from './api.js';

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
export const FILL_MODES = { 0: 'float_valve', 1: 'plan', 2: 'fallback' };

export function fillModeLabel(v) {
  if (v === null || v === undefined) return '—';
  const mode = FILL_MODES[Math.round(v)];
  return mode ? t(`plans.mode_${mode}`) : t('plans.mode_other', { v });
}

function svgEl(parent, name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

// A tank's planning state in words (`planned`, `unplanned`, …; an unknown one reads as itself).
function stateText(state) {
  return has(`plans.state_${state}`) ? t(`plans.state_${state}`) : String(state);
}

// "written 12:03" or "failed 12:03: reason"; what the controller holds of the plan.
export function deliveryText(tk) {
  const at = typeof tk.delivered_at_ms === 'number' ? hm(tk.delivered_at_ms) : '';
  if (tk.delivery === 'failed') return t('plans.delivery_failed', { at, reason: tk.delivery_error || t('plans.no_reason') });
  return t('plans.delivery_state', { state: t(`plans.delivery_${tk.delivery || 'none'}`), at });
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
  const x = (tk) => ((Math.max(t0, Math.min(t1, tk)) - t0) / (t1 - t0)) * W;
  const svg = svgEl(null, 'svg', { class: 'plan-strip', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img' });
  svg.setAttribute('aria-label', t('plans.strip_aria'));
  svgEl(svg, 'rect', { class: 'bg', x: 0, y: top, width: W, height: base - top });
  const windows = (plan && plan.windows) || [];
  const maxRate = Math.max(1e-9, ...windows.map((w) => w.rate_m3h));
  for (const w of windows) {
    if (w.end_ms <= t0 || w.start_ms >= t1) continue;
    const h = Math.max(2, ((base - top) * w.rate_m3h) / maxRate);
    const r = svgEl(svg, 'rect', { class: 'win', x: x(w.start_ms), y: base - h, width: Math.max(1, x(w.end_ms) - x(w.start_ms)), height: h });
    svgEl(r, 'title', {}, t('plans.window_title', { from: hm(w.start_ms), to: hm(w.end_ms), rate: num(w.rate_m3h, 1), level: num(w.target_level_m, 2) }));
  }
  if (plan && plan.expires_at_ms < t1) {
    svgEl(svg, 'line', { class: 'expiry', x1: x(plan.expires_at_ms), x2: x(plan.expires_at_ms), y1: top, y2: base });
  }
  // Ticks on the local hours divisible by 6.
  const first = new Date(t0);
  first.setMinutes(0, 0, 0);
  for (let tk = first.getTime() + HOUR; tk < t1; tk += HOUR) {
    if (new Date(tk).getHours() % 6) continue;
    svgEl(svg, 'line', { class: 'tick', x1: x(tk), x2: x(tk), y1: base, y2: base + 3 });
    // Clear of the "now" label at the left edge.
    if (x(tk) > 34) svgEl(svg, 'text', { x: Math.min(W - 14, x(tk)), y: H - 2, 'text-anchor': 'middle' }, hm(tk));
  }
  svgEl(svg, 'text', { x: 0, y: H - 2 }, t('plans.now'));
  return svg;
}

// The windows as rows: start–end (local), rate, target level.
export function windowRows(plan, now = Date.now()) {
  const windows = ((plan && plan.windows) || []).filter((w) => w.end_ms > now);
  if (!windows.length) return `<div class="empty">${esc(t('plans.no_window'))}</div>`;
  return `<table class="grid windows"><thead><tr><th>${esc(t('plans.window'))}</th><th class="n">m³/h</th><th class="n">${esc(t('plans.to_m'))}</th></tr></thead><tbody>${windows
    .map((w) => `<tr><td>${esc(hm(w.start_ms))}–${esc(hm(w.end_ms))}</td><td class="n">${esc(num(w.rate_m3h, 1))}</td><td class="n">${esc(num(w.target_level_m, 2))}</td></tr>`)
    .join('')}</tbody></table>`;
}

// One tank's plan block for the room page: `entry` its `tank_plans` item (or none), `mode` the
// live fill_mode value.
export function tankPlanBlock(entry, mode, now = Date.now()) {
  const box = document.createElement('div');
  box.className = 'tank-plan';
  const modeCls = mode === null || mode === undefined ? '' : Math.round(mode) === 2 ? ' abn' : '';
  const head = `<div class="fill-mode">${esc(t('plans.fill_mode'))} <b class="mode${modeCls}">${esc(fillModeLabel(mode))}</b></div>`;
  if (!entry || !entry.plan) {
    const text = entry ? t('plans.no_plan_state', { state: stateText(entry.state) }) : t('plans.no_plan');
    box.innerHTML = `${head}<div class="empty no-plan">${esc(text)}</div>`;
    return box;
  }
  const failed = entry.delivery === 'failed';
  box.innerHTML = `${head}
    <div>${esc(t('plans.priority'))} <b>${esc(entry.plan.priority)}</b> · ${esc(t('plans.until', { at: hm(entry.plan.expires_at_ms) }))} · ${esc(t('plans.fallback', { m: num(entry.plan.fallback_level_m, 2) }))}</div>
    <div class="delivery${failed ? ' abn' : ''}" data-delivery="${esc(entry.delivery || 'none')}">${esc(t('plans.delivery'))} ${esc(deliveryText(entry))}</div>`;
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
  svg.setAttribute('aria-label', t('plans.timeline_aria'));
  svgEl(svg, 'text', { class: 'title', x: 6, y: 13 }, t('plans.inflow_title'));
  if (!slots.length) {
    svgEl(svg, 'text', { class: 'empty', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, t('plans.no_timeline'));
    return svg;
  }
  const t0 = slots[0].start_ms;
  const t1 = slots[slots.length - 1].start_ms + SLOT;
  let hi = 0;
  for (const s of slots) hi = Math.max(hi, s.planned_inflow_m3h || 0, s.actual_inflow_m3h || 0);
  hi = hi > 0 ? hi * 1.08 : 1;
  const x = (tk) => L + ((tk - t0) / (t1 - t0)) * (W - L - R);
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
  for (let tk = first.getTime() + HOUR; tk < t1; tk += HOUR) {
    if (new Date(tk).getHours() % 12) continue;
    svgEl(svg, 'line', { class: 'grid', x1: x(tk), x2: x(tk), y1: T, y2: H - B });
    svgEl(svg, 'text', { x: Math.min(W - R - 30, Math.max(L + 30, x(tk))), y: H - 5, 'text-anchor': 'middle' }, stamp(tk).slice(0, 11));
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
    svgEl(svg, 'text', { class: 'now-label', x: x(now) + 3, y: T + 10 }, t('plans.now'));
  }
  // The legend, right-aligned like the trend charts'.
  const legend = [['actual', t('plans.actual')], ['planned', t('plans.planned')], ['peak', t('plans.peak')]];
  let lx = W - R;
  for (const [cls, label] of legend) {
    const tx = svgEl(svg, 'text', { class: `legend ${cls}`, x: lx, y: 13, 'text-anchor': 'end' }, label);
    const tw = [...label].reduce((n, c) => n + (c.charCodeAt(0) > 0x2e80 ? 11 : 6.2), 0);
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
    this.root.innerHTML = `<div class="plans-head"><h1>${esc(t('plans.title'))}</h1><nav class="districts" id="p-districts"><span class="muted">${esc(t('plans.loading'))}</span></nav></div>
      <div id="p-body"></div>`;
    this.load();
    this.timer = setInterval(() => this.load(BACKGROUND), REFRESH_MS);
  }

  close() {
    if (this.timer) clearInterval(this.timer);
    this.timer = 0;
    this.district = undefined;
    this.seq++;
  }

  // `BACKGROUND` when a timer asks (no use of the session).
  async load(options) {
    const seq = ++this.seq;
    const $ = (s) => this.root.querySelector(s);
    try {
      const list = await get('/api/v1/districts', options);
      if (seq !== this.seq) return;
      const ds = list.districts || [];
      const current = this.district || (ds[0] && ds[0].district);
      $('#p-districts').innerHTML = ds.length
        ? ds.map((d) => `<a href="#/plans/${encodeURIComponent(d.district)}" data-district="${esc(d.district)}" class="${d.district === current ? 'active' : ''}">${esc(zoneLabel(d.district))} <span class="muted">${d.planned}/${d.tanks}</span></a>`).join('')
        : `<span class="empty">${esc(t('plans.no_districts'))}</span>`;
      if (!current) {
        $('#p-body').innerHTML = '';
        return;
      }
      const view = await get(`/api/v1/districts/${encodeURIComponent(current)}/plan`, options);
      if (seq !== this.seq) return;
      this.render(view);
    } catch (e) {
      if (seq === this.seq) $('#p-body').innerHTML = `<div class="panel"><span class="abn">${esc(apiError(e))}</span></div>`;
    }
  }

  render(view) {
    const body = this.root.querySelector('#p-body');
    const now = Date.now();
    const r = view.last_round;
    const th = (k) => `<th>${esc(t(k))}</th>`;
    const round = r
      ? esc(t('plans.round', { n: view.rounds, at: hm(view.last_round_at_ms), bids: r.bids, ceiling: num(r.ceiling_m3h, 1), peak: num(r.planned_peak_m3h, 1) }))
      : esc(t('plans.no_round'));
    body.innerHTML = `<div class="panel"><h2>${esc(zoneLabel(view.district))} <span class="muted">${round}</span></h2><div id="p-timeline"></div></div>
      <div class="panel"><h2>${esc(t('plans.tanks'))}</h2><div class="table-scroll"><table class="grid plan-tanks"><thead><tr>${th('plans.col_tank')}${th('plans.col_state')}<th class="n">${esc(t('plans.col_priority'))}</th>${th('plans.col_windows')}${th('plans.col_until')}${th('plans.col_delivery')}<th class="n">${esc(t('plans.col_learned'))}</th></tr></thead><tbody>${(view.tanks || [])
        .map((tk) => {
          const p = tk.plan;
          const room = tk.tank.split('/')[0];
          const failed = tk.delivery === 'failed';
          return `<tr data-tank="${esc(tk.tank)}"><td><a class="roomlink" href="#/room/${encodeURIComponent(room)}">${esc(tk.tank)}</a></td><td>${esc(stateText(tk.state))}</td>
            <td class="n">${p ? esc(p.priority) : '—'}</td><td class="strip"></td><td>${p ? esc(hm(p.expires_at_ms)) : '—'}</td>
            <td class="${failed ? 'abn' : ''}">${esc(deliveryText(tk))}</td><td class="n">${esc(tk.observations)}</td></tr>`;
        })
        .join('')}</tbody></table></div></div>`;
    body.querySelector('#p-timeline').appendChild(timelineChart(view.timeline || [], now));
    for (const tk of view.tanks || []) {
      const cell = body.querySelector(`tr[data-tank="${CSS.escape(tk.tank)}"] td.strip`);
      if (cell) cell.appendChild(tk.plan ? planStrip(tk.plan, now) : Object.assign(document.createElement('span'), { className: 'empty', textContent: t('plans.no_plan') }));
    }
  }
}
