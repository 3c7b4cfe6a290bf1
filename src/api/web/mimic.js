// The room as a process mimic (组态): an SVG drawn from the room's inventory (its RoomView: the
// tanks and pumps it has), read top to bottom the way the water flows — municipal inlet, the
// inlet valve of each break tank, the tanks with their live level, the pump set (each pump
// running, stopped, tripped or standby, its speed, flow animated along its pipes while it runs),
// the discharge header with the outlet pressure and its set-point, the outlet to the buildings.
// Analysers, meters, security points and cameras are value boxes beside it.
//
// ISA-101: greys for everything normal, colour only for what is abnormal. The drawing is built
// once per room (and again only if its equipment changes); each live delta updates attributes
// and texts in place. A vertical drawing in a viewBox fits a phone's width at close to 1:1 and
// scales up on a desktop. A click on a value box asks for that point's trend (`onPoint`).

import { esc, num, value, quality } from './format.js';
import { t } from './i18n.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 400;

function el(parent, name, attrs = {}, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

// A device id's short name: `XM-0001/p2` → `p2`.
const short = (id) => String(id).split('/')[1] || String(id);

// The value boxes beside the drawing: [group, [[point, label key, unit, decimals, abnormal?]]].
// Limits: GB 5749-2022 for quality, GB/T 12325 (±7 % of 380 V) for voltage.
const BOXES = [
  ['quality', [
    ['chlorine', 'mimic.chlorine', 'mg/L', 2, (v) => v < 0.05 || v > 2],
    ['turbidity', 'mimic.turbidity', 'NTU', 2, (v) => v > 1],
    ['ph', 'mimic.ph', '', 2, (v) => v < 6.5 || v > 8.5],
  ]],
  ['meters', [
    ['active_power', 'mimic.active_power', 'kW', 1],
    ['energy', 'mimic.energy', 'kWh', 0],
    ['voltage_a', 'mimic.voltage_a', 'V', 0, (v) => Math.abs(v - 380) / 380 > 0.07],
    ['power_factor', 'mimic.power_factor', '', 2],
  ]],
  ['environment', [
    ['temperature', 'mimic.temperature', '°C', 1],
    ['humidity', 'mimic.humidity', '%', 0],
  ]],
];
// Digital points: [point, label key, whether "on" is abnormal].
const FLAGS = [
  ['flooding', 'mimic.flooding', true],
  ['smoke', 'mimic.smoke', true],
  ['door', 'mimic.door', false],
  ['intrusion', 'mimic.intrusion', true],
  ['armed', 'mimic.armed', false],
];

export class Mimic {
  constructor(parent, { onPoint = () => {} } = {}) {
    this.root = document.createElement('div');
    this.root.className = 'mimic';
    parent.appendChild(this.root);
    this.onPoint = onPoint;
    this.shape = '';
    this.refs = new Map(); // key -> element(s) updated live
    this.root.addEventListener('click', (e) => {
      const box = e.target.closest('[data-point]');
      if (box) this.onPoint(box.dataset.point, box.dataset.label, box.dataset.unit || '');
    });
    // The drawing's boxes take the keyboard focus (tabindex): Enter opens the trend too.
    this.root.addEventListener('keydown', (e) => {
      const box = e.key === 'Enter' && e.target.closest && e.target.closest('g[data-point]');
      if (box) this.onPoint(box.dataset.point, box.dataset.label, box.dataset.unit || '');
    });
  }

  // Draws `view` (a RoomView); rebuilds only when the room's equipment changed.
  render(view, spec) {
    const shape = [view.id, ...(view.tanks || []).map((d) => d.id), ...(view.pumps || []).map((d) => d.id), ...(view.cameras || []).map((d) => d.id)].join(',');
    if (shape !== this.shape) {
      this.shape = shape;
      this.build(view, spec);
    }
    this.update(view, spec);
  }

  build(view, spec) {
    this.refs.clear();
    const tanks = view.tanks || [];
    const pumps = view.pumps || [];
    const room = view.id;
    const H = 470;
    const svg = el(null, 'svg', { class: 'mimic-svg', viewBox: `0 0 ${W} ${H}`, role: 'img', preserveAspectRatio: 'xMidYMin meet' });
    svg.setAttribute('aria-label', t('mimic.aria'));
    const cx = W / 2;
    const ref = (key, e) => {
      this.refs.set(key, e);
      return e;
    };
    // A pipe and its flow overlay (dashes that move while water flows).
    const pipe = (d, key) => {
      el(svg, 'path', { class: 'pipe', d });
      return key ? ref(key, el(svg, 'path', { class: 'flow', d })) : null;
    };
    // A clickable value box: label above, value and unit; `anchor` its left edge.
    const vbox = (x, y, w, point, labelKey, unit, key) => {
      const g = el(svg, 'g', { class: 'vbox', 'data-point': point, 'data-label': t(labelKey), 'data-unit': unit, tabindex: 0 });
      el(g, 'rect', { x, y, width: w, height: 34, rx: 2 });
      el(g, 'text', { class: 'vlabel', x: x + 5, y: y + 12 }, t(labelKey));
      ref(key, el(g, 'text', { class: 'vvalue', x: x + w - 5, y: y + 29, 'text-anchor': 'end' }, '—'));
      return g;
    };

    // Municipal inlet.
    el(svg, 'text', { class: 'tag', x: cx - 10, y: 14, 'text-anchor': 'end' }, t('mimic.municipal'));
    vbox(cx + 12, 2, 150, `${room}.inlet_pressure`, 'mimic.inlet_pressure', 'MPa', 'inlet_pressure');
    pipe(`M${cx} 4 V 58`, 'flow_inlet');

    // One branch, valve and tank per tank.
    const n = Math.max(1, tanks.length);
    const slot = (W - 40) / n;
    const tankW = Math.min(130, slot - 30);
    const tx = (i) => 20 + slot * (i + 0.5);
    if (tanks.length > 1) pipe(`M${tx(0)} 58 H ${tx(tanks.length - 1)}`);
    const tankTop = 108;
    const tankH = 118;
    tanks.forEach((tk, i) => {
      const x = tx(i);
      pipe(`M${x} 58 V ${tankTop}`, `flow_valve_${i}`);
      // The inlet valve: a bow-tie, filled when open.
      ref(`valve_${i}`, el(svg, 'path', { class: 'valve', d: `M${x - 10} 72 L${x + 10} 88 L${x + 10} 72 L${x - 10} 88 Z` }));
      el(svg, 'text', { class: 'tag', x: x + 14, y: 84 }, t('mimic.inlet_valve'));
      const g = el(svg, 'g', { class: 'm-tank', 'data-point': `${tk.id}.level`, 'data-label': t('mimic.tank_level', { tank: short(tk.id) }), 'data-unit': 'm', tabindex: 0 });
      ref(`tank_${i}`, el(g, 'rect', { class: 'm-shell', x: x - tankW / 2, y: tankTop, width: tankW, height: tankH }));
      ref(`water_${i}`, el(g, 'rect', { class: 'water', x: x - tankW / 2 + 1, y: tankTop + tankH, width: tankW - 2, height: 0 }));
      el(g, 'text', { class: 'tag', x: x - tankW / 2 + 4, y: tankTop + 13 }, t('mimic.tank', { tank: short(tk.id) }));
      ref(`level_${i}`, el(g, 'text', { class: 'vvalue', x, y: tankTop + tankH / 2 + 2, 'text-anchor': 'middle' }, '—'));
      ref(`pct_${i}`, el(g, 'text', { class: 'vlabel', x, y: tankTop + tankH / 2 + 18, 'text-anchor': 'middle' }, ''));
      pipe(`M${x} ${tankTop + tankH} V 246`, `flow_out_${i}`);
    });

    // The pump set between the suction (y 246) and discharge (y 352) headers.
    const m = Math.max(1, pumps.length);
    const pslot = (W - 20) / m;
    const px = (i) => 10 + pslot * (i + 0.5) - 18;
    const xs = [...tanks.map((_, i) => tx(i)), ...pumps.map((_, i) => px(i))];
    const lo = Math.min(cx, ...xs);
    const hi = Math.max(cx, ...xs);
    pipe(`M${lo} 246 H ${hi}`, 'flow_suction');
    pumps.forEach((p, i) => {
      const x = px(i);
      pipe(`M${x} 246 V 280`, `flow_pump_in_${i}`);
      pipe(`M${x} 316 V 352`, `flow_pump_out_${i}`);
      const g = el(svg, 'g', { class: 'm-pump', 'data-point': `${p.id}.frequency`, 'data-label': t('mimic.pump_speed', { pump: short(p.id) }), 'data-unit': 'Hz', tabindex: 0 });
      ref(`pump_${i}`, g);
      el(g, 'circle', { cx: x, cy: 298, r: 18 });
      el(g, 'path', { class: 'impeller', d: `M${x - 8} ${306} L${x} ${288} L${x + 8} ${306} Z` });
      el(g, 'text', { class: 'tag', x: x + 22, y: 288 }, short(p.id));
      ref(`hz_${i}`, el(g, 'text', { class: 'vvalue small', x: x + 22, y: 303 }, '—'));
      ref(`pst_${i}`, el(g, 'text', { class: 'pstate', x: x + 22, y: 317 }, ''));
    });
    pipe(`M${lo} 352 H ${hi}`, 'flow_header');

    // The header: outlet pressure against its set-point, flow; then the outlet.
    pipe(`M${cx} 352 V 462`, 'flow_outlet');
    vbox(cx + 12, 362, 170, `${room}.outlet_pressure`, 'mimic.outlet_pressure', 'MPa', 'outlet_pressure');
    vbox(cx + 12, 400, 170, `${room}.outlet_setpoint`, 'mimic.setpoint', 'MPa', 'outlet_setpoint');
    vbox(cx - 172, 362, 160, `${room}.outlet_flow`, 'mimic.outlet_flow', 'm³/h', 'outlet_flow');
    el(svg, 'path', { class: 'arrow', d: `M${cx - 7} 452 L${cx} 466 L${cx + 7} 452 Z` });
    el(svg, 'text', { class: 'tag', x: cx - 10, y: 462, 'text-anchor': 'end' }, t('mimic.to_buildings'));

    // The value boxes beside the drawing.
    const side = document.createElement('div');
    side.className = 'mimic-side';
    const groups = BOXES.map(([group, rows]) => `<div class="mgroup"><h3>${esc(t(`mimic.group_${group}`))}</h3>${rows
      .map(([name, key, unit]) => `<button type="button" class="mbox" data-point="${esc(`${room}.${name}`)}" data-label="${esc(t(key))}" data-unit="${esc(unit)}"><span class="k">${esc(t(key))}</span><span class="v" data-v="${name}">—</span><span class="u">${esc(unit)}</span></button>`)
      .join('')}</div>`);
    groups.push(`<div class="mgroup"><h3>${esc(t('mimic.group_security'))}</h3>${FLAGS.map(([name, key]) => `<button type="button" class="mbox" data-point="${esc(`${room}.${name}`)}" data-label="${esc(t(key))}"><span class="k">${esc(t(key))}</span><span class="v" data-v="${name}">—</span><span class="u"></span></button>`).join('')}</div>`);
    groups.push(`<div class="mgroup"><h3>${esc(t('mimic.group_cameras'))}</h3>${(view.cameras || []).length
      ? view.cameras.map((c) => `<div class="mbox cam"><span class="k">${esc(short(c.id))}</span><span class="v" data-cam="${esc(c.id)}">—</span><span class="u"></span></div>`).join('')
      : `<span class="empty">${esc(t('mimic.no_cameras'))}</span>`}</div>`);
    side.innerHTML = groups.join('');
    this.root.replaceChildren(svg, side);
    this.side = side;
    this.svg = svg;
    this.tankGeom = { tankTop, tankH, spec: (spec && spec.tanks) || [] };
  }

  update(view) {
    const r = this.refs;
    const d = view.derived || {};
    const pts = view.points;
    const setText = (key, text, abn = false, q = 'good') => {
      const e = r.get(key);
      if (!e) return;
      if (e.textContent !== text) e.textContent = text;
      e.classList.toggle('abn', abn);
      e.classList.toggle('stale', q === 'stale' || q === 'uncertain' || q === 'bad');
    };
    const pv = (name) => value(pts, name);
    const inlet = pv('inlet_pressure');
    setText('inlet_pressure', `${num(inlet, 3)} MPa`, inlet !== null && inlet < 0.05, quality(pts, 'inlet_pressure'));
    const out = pv('outlet_pressure');
    const sp = pv('outlet_setpoint') ?? d.outlet_setpoint_mpa ?? null;
    setText('outlet_pressure', `${num(out, 3)} MPa`, out !== null && typeof sp === 'number' && Math.abs(out - sp) > 0.1, quality(pts, 'outlet_pressure'));
    setText('outlet_setpoint', `${num(sp, 2)} MPa`);
    setText('outlet_flow', `${num(pv('outlet_flow'), 1)} m³/h`, false, quality(pts, 'outlet_flow'));

    const { tankTop, tankH, spec } = this.tankGeom;
    let anyValve = false;
    (view.tanks || []).forEach((tk, i) => {
      const td = tk.derived || {};
      const height = spec[i] ? spec[i].height_m : null;
      const level = typeof td.level_m === 'number' ? td.level_m : value(tk.points, 'level');
      const frac = typeof td.level_pct === 'number' ? td.level_pct / 100 : height && level !== null ? level / height : null;
      const f = frac === null ? 0 : Math.max(0, Math.min(1, frac));
      const water = r.get(`water_${i}`);
      water.setAttribute('y', String(tankTop + tankH * (1 - f)));
      water.setAttribute('height', String(tankH * f));
      water.classList.toggle('stale', quality(tk.points, 'level') !== 'good');
      const abn = !!(td.overflow || td.low_low);
      r.get(`tank_${i}`).classList.toggle('abn', abn);
      setText(`level_${i}`, `${num(level, 2)} m`, abn, quality(tk.points, 'level'));
      setText(`pct_${i}`, frac === null ? '' : `${num(frac * 100, 0)} %${td.overflow ? ` · ${t('mimic.overflow')}` : td.low_low ? ` · ${t('mimic.low_low')}` : ''}`, abn);
      const open = td.inlet_open === true;
      anyValve = anyValve || open;
      r.get(`valve_${i}`).classList.toggle('open', open);
      r.get(`flow_valve_${i}`).classList.toggle('on', open);
    });
    r.get('flow_inlet')?.classList.toggle('on', anyValve);

    let anyRunning = false;
    (view.pumps || []).forEach((p, i) => {
      const pd = p.derived || {};
      const status = pd.status || 'unknown';
      const running = status === 'running';
      anyRunning = anyRunning || running;
      const g = r.get(`pump_${i}`);
      for (const s of ['running', 'stopped', 'tripped', 'unknown']) g.classList.toggle(s, s === status);
      g.dataset.status = status;
      const hz = typeof pd.frequency_hz === 'number' ? pd.frequency_hz : value(p.points, 'frequency');
      setText(`hz_${i}`, `${num(hz, 1)} Hz`, false, quality(p.points, 'frequency'));
      const standby = pd.role === 'standby' && status !== 'tripped' && status !== 'running';
      setText(`pst_${i}`, standby ? t('mimic.standby') : t(`mimic.pump_${status}`), status === 'tripped');
      r.get(`flow_pump_in_${i}`).classList.toggle('on', running);
      r.get(`flow_pump_out_${i}`).classList.toggle('on', running);
    });
    for (const k of ['flow_suction', 'flow_header', 'flow_outlet']) r.get(k)?.classList.toggle('on', anyRunning);
    (view.tanks || []).forEach((_, i) => r.get(`flow_out_${i}`)?.classList.toggle('on', anyRunning));

    // The boxes beside the drawing.
    for (const [, rows] of BOXES) {
      for (const [name, , , dec, abnormal] of rows) {
        const e = this.side.querySelector(`[data-v="${name}"]`);
        const v = pv(name);
        const q = quality(pts, name);
        e.textContent = q === 'none' ? '—' : num(v, dec);
        e.classList.toggle('abn', v !== null && !!abnormal && abnormal(v));
        e.classList.toggle('stale', q === 'stale' || q === 'uncertain' || q === 'bad');
      }
    }
    for (const [name, , bad] of FLAGS) {
      const e = this.side.querySelector(`[data-v="${name}"]`);
      const v = pv(name);
      e.textContent = v === null ? '—' : v >= 0.5 ? t('mimic.yes') : t('mimic.no');
      e.classList.toggle('abn', bad && v !== null && v >= 0.5);
    }
    for (const c of view.cameras || []) {
      const e = this.side.querySelector(`[data-cam="${CSS.escape(c.id)}"]`);
      if (!e) continue;
      const cd = c.derived || {};
      const text = cd.online === false ? t('mimic.cam_offline') : cd.online === true ? (cd.recording ? t('mimic.cam_recording') : cd.recording === false ? t('mimic.cam_not_recording') : t('mimic.cam_online')) : t('mimic.unknown');
      e.textContent = text;
      e.classList.toggle('abn', cd.online === false || (cd.online === true && cd.recording === false));
    }
  }
}
