// The parts reliability page (issue 21 items 3–5, #/reliability): per component class its
// failure curves as SVG — reliability R(t) and hazard h(t), the fleet's fit beside the
// literature default (dashed) and which one is used and why —, the replacement plan by month,
// the spare parts against stock with reorder warnings (stock editable by rule authors and
// admins), and the suppliers' comparison (failures, run hours, MTBF by vendor and model).
// Everything comes from GET /api/v1/reliability/*; failures of the demo's generated history are
// marked as simulated. Tables scroll inside themselves on a phone.

import * as api from './api.js';
import { esc } from './format.js';
import { t, num, apiError } from './i18n.js';

const mayWrite = (role) => role === 'rule-author' || role === 'admin';

export const classLabel = (c) => t(`reliability.class_${c}`);

// A polyline of `pts` ([x, y]) scaled into a w×h box with the given maxima.
function line(pts, xmax, ymax, w, h, cls) {
  const d = pts
    .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
    .map(([x, y]) => `${((x / xmax) * w).toFixed(1)},${(h - (Math.min(y, ymax) / ymax) * h).toFixed(1)}`)
    .join(' ');
  return `<polyline class="${cls}" points="${d}" fill="none"/>`;
}

// One chart: `which` 1 = R(t), 2 = h(t); the used curve solid, the literature dashed; `age`
// (running hours), when given, marked by a vertical line.
export function curveSvg(entry, which, age = null) {
  const pts = entry.points || [];
  const lit = entry.literature_points || [];
  const xmax = Math.max(...pts.map((p) => p[0]), ...lit.map((p) => p[0]), 1);
  const values = [...pts, ...lit].map((p) => p[which]).filter(Number.isFinite);
  const ymax = which === 1 ? 1 : Math.max(...values, 1e-9) * 1.05;
  const W = 240;
  const H = 110;
  const title = which === 1 ? t('reliability.r_title') : t('reliability.h_title');
  return `<svg class="rel-chart" viewBox="-2 -2 ${W + 4} ${H + 18}" role="img" aria-label="${esc(title)}">
    <rect x="0" y="0" width="${W}" height="${H}" class="rel-frame"/>
    ${line(lit.map((p) => [p[0], p[which]]), xmax, ymax, W, H, 'rel-lit')}
    ${line(pts.map((p) => [p[0], p[which]]), xmax, ymax, W, H, 'rel-fit')}
    ${Number.isFinite(age) && age <= xmax ? `<line class="rel-age" x1="${((age / xmax) * W).toFixed(1)}" x2="${((age / xmax) * W).toFixed(1)}" y1="0" y2="${H}"/>` : ''}
    <text x="2" y="${H + 14}" class="rel-axis">0</text>
    <text x="${W}" y="${H + 14}" class="rel-axis" text-anchor="end" translate="no">${esc(num(xmax, 0))} h</text>
    <text x="4" y="12" class="rel-axis">${esc(title)}</text>
  </svg>`;
}

function sourceText(c) {
  if (c.source === 'fit') return t('reliability.source_fit');
  const why = (c.reason || '').startsWith('thin_data') ? t('reliability.why_thin') : t('reliability.why_refused');
  return t('reliability.source_literature', { why });
}

const bounds = (b, d) => (b ? ` [${num(b.lower, d)}, ${num(b.upper, d)}]` : '');

export function classCard(entry) {
  const c = entry.curve;
  const sim = c.simulated_failures > 0 ? `<span class="rel-sim">${esc(t('reliability.simulated', { n: c.simulated_failures }))}</span>` : '';
  return `<div class="rel-card" data-class="${esc(c.class)}">
    <h3>${esc(classLabel(c.class))}${c.vendor ? ` <span translate="no">${esc(c.vendor)} ${esc(c.model)}</span>` : ''}</h3>
    <p class="rel-source ${c.source === 'fit' ? 'fit' : 'lit'}">${esc(sourceText(c))}</p>
    <p translate="no">β ${esc(num(c.beta, 2))}${esc(bounds(c.beta_bounds, 2))} · η ${esc(num(c.eta, 0))} h${esc(bounds(c.eta_bounds, 0))}</p>
    <p class="muted">${esc(t('reliability.counts', { f: c.failures, c: c.censored }))} ${sim}</p>
    <div class="rel-charts">${curveSvg(entry, 1)}${curveSvg(entry, 2)}</div>
  </div>`;
}

export class ReliabilityPage {
  constructor(root, { role = () => 'viewer', toast = () => {} } = {}) {
    this.root = root;
    this.role = role;
    this.toast = toast;
    this.seq = 0;
  }

  close() {
    this.seq += 1;
  }

  async open() {
    const seq = ++this.seq;
    this.root.innerHTML = `<div class="reliability">
      <h2>${esc(t('reliability.title'))}</h2>
      <p class="muted">${esc(t('reliability.note'))}</p>
      <div id="rel-body"><p class="muted">${esc(t('reliability.loading'))}</p></div>
    </div>`;
    try {
      const [classes, plan, spares, suppliers] = await Promise.all([
        api.get('/api/v1/reliability/classes'),
        api.get('/api/v1/reliability/plan?limit=50'),
        api.get('/api/v1/reliability/spares'),
        api.get('/api/v1/reliability/suppliers'),
      ]);
      if (seq !== this.seq) return;
      this.render(classes, plan, spares, suppliers);
    } catch (e) {
      if (seq !== this.seq) return;
      this.root.querySelector('#rel-body').innerHTML = `<p class="status offline">${esc(apiError(e))}</p>`;
    }
  }

  render(classes, plan, spares, suppliers) {
    const body = this.root.querySelector('#rel-body');
    const simulated = classes.classes.some((e) => e.curve.simulated_failures > 0);
    const months = plan.months
      .map((m) => `<tr><td translate="no">${esc(m.month)}</td><td class="n">${m.count}</td><td>${esc(Object.entries(m.by_class).map(([c, n]) => `${classLabel(c)} ${n}`).join(' · '))}</td><td class="n">${esc(num(m.cost, 0))}</td></tr>`)
      .join('');
    const write = mayWrite(this.role());
    const spareRows = spares.spares
      .slice(0, 200)
      .map((s) => `<tr class="${s.reorder ? 'rel-reorder' : ''}"><td translate="no">${esc(s.part_number)}</td><td>${esc(classLabel(s.class))}</td><td class="n">${s.installed}</td><td class="n">${esc(num(s.expected_failures, 1))}</td><td class="n">${s.planned}</td><td class="n">${s.demand}</td>
        <td class="n">${write ? `<input type="number" min="0" max="1000000" class="rel-stock" data-part="${esc(s.part_number)}" value="${s.stock}" aria-label="${esc(t('reliability.stock'))}">` : s.stock}</td>
        <td>${s.reorder ? `<b class="rel-warn">${esc(t('reliability.reorder'))}</b>` : esc(t('reliability.enough'))}</td></tr>`)
      .join('');
    const supplierRows = suppliers.suppliers
      .map((s) => `<tr><td>${esc(classLabel(s.class))}</td><td translate="no">${esc(s.vendor)}</td><td translate="no">${esc(s.model)}</td><td class="n">${s.components}</td><td class="n">${s.failures}${s.simulated_failures ? ` <span class="rel-sim">${esc(t('reliability.sim_short'))}</span>` : ''}</td><td class="n">${esc(num(s.run_hours, 0))}</td><td class="n">${s.mtbf_hours ? esc(num(s.mtbf_hours, 0)) : '—'}</td><td class="n">${esc(num(s.failure_rate, 2))}</td></tr>`)
      .join('');
    const orderRows = (suppliers.orders || [])
      .map((o) => `<tr><td>${esc(classLabel(o.equipment))}</td><td translate="no">${esc(o.vendor)}</td><td translate="no">${esc(o.model)}</td><td class="n">${o.orders}</td><td class="n">${o.corrective}</td><td class="n">${o.alarms}</td></tr>`)
      .join('');
    body.innerHTML = `
      ${simulated ? `<p class="rel-sim-banner">${esc(t('reliability.simulated_banner'))}</p>` : ''}
      <h3>${esc(t('reliability.curves'))}</h3>
      <p class="muted">${esc(t('reliability.legend'))}</p>
      <div class="rel-cards" id="rel-classes">${classes.classes.map(classCard).join('')}</div>
      ${classes.models.length ? `<h3>${esc(t('reliability.models'))}</h3><div class="rel-cards">${classes.models.map(classCard).join('')}</div>` : ''}
      <h3>${esc(t('reliability.plan'))}</h3>
      <p class="muted">${esc(t('reliability.plan_note', { overdue: plan.overdue, lead: plan.lead_days }))}</p>
      <div class="table-scroll"><table class="grid" id="rel-plan"><thead><tr><th>${esc(t('reliability.month'))}</th><th class="n">${esc(t('reliability.count'))}</th><th>${esc(t('reliability.by_class'))}</th><th class="n">${esc(t('reliability.cost'))}</th></tr></thead><tbody>${months}</tbody></table></div>
      <h3>${esc(t('reliability.spares'))}</h3>
      <p class="muted">${esc(t('reliability.spares_note', { days: spares.horizon_days, n: spares.reorder }))}</p>
      <div class="table-scroll"><table class="grid" id="rel-spares"><thead><tr><th>${esc(t('reliability.part'))}</th><th>${esc(t('reliability.class'))}</th><th class="n">${esc(t('reliability.installed'))}</th><th class="n">${esc(t('reliability.expected'))}</th><th class="n">${esc(t('reliability.planned'))}</th><th class="n">${esc(t('reliability.demand'))}</th><th class="n">${esc(t('reliability.stock'))}</th><th></th></tr></thead><tbody>${spareRows}</tbody></table></div>
      <h3>${esc(t('reliability.suppliers'))}</h3>
      <div class="table-scroll"><table class="grid" id="rel-suppliers"><thead><tr><th>${esc(t('reliability.class'))}</th><th>${esc(t('reliability.vendor'))}</th><th>${esc(t('reliability.model'))}</th><th class="n">${esc(t('reliability.components'))}</th><th class="n">${esc(t('reliability.failures'))}</th><th class="n">${esc(t('reliability.run_hours'))}</th><th class="n">${esc(t('reliability.mtbf'))}</th><th class="n">${esc(t('reliability.rate'))}</th></tr></thead><tbody>${supplierRows}</tbody></table></div>
      <h3>${esc(t('reliability.orders_title'))}</h3>
      ${orderRows ? `<div class="table-scroll"><table class="grid" id="rel-orders"><thead><tr><th>${esc(t('reliability.class'))}</th><th>${esc(t('reliability.vendor'))}</th><th>${esc(t('reliability.model'))}</th><th class="n">${esc(t('reliability.orders'))}</th><th class="n">${esc(t('reliability.corrective'))}</th><th class="n">${esc(t('reliability.alarms'))}</th></tr></thead><tbody>${orderRows}</tbody></table></div>` : `<p class="empty">${esc(t('reliability.orders_none'))}</p>`}`;
    for (const input of body.querySelectorAll('.rel-stock')) {
      input.addEventListener('change', async () => {
        const quantity = Number(input.value);
        if (!Number.isInteger(quantity) || quantity < 0) {
          this.toast(t('reliability.bad_stock'));
          return;
        }
        try {
          await api.put(`/api/v1/reliability/stock/${encodeURIComponent(input.dataset.part)}`, { quantity });
          this.toast(t('reliability.stock_saved'), true);
          this.open();
        } catch (e) {
          this.toast(apiError(e));
        }
      });
    }
  }
}
