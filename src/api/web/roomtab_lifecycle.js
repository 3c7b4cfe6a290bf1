// The room page's lifecycle tab (issue 21 item 8, #/room/<id>/lifecycle): the room's
// components (from its archive's equipment) with their age in running hours (and whether from
// the pump's counter or the calendar), the hazard now, the chance of failing within 30 and 90
// days and the planned replacement date, from GET /api/v1/reliability/components?room=.

import * as api from './api.js';
import { esc } from './format.js';
import { t, num, date, apiError } from './i18n.js';
import { classLabel } from './reliability.js';

const pct = (p) => (Number.isFinite(p) ? `${num(p * 100, 1)} %` : '—');

export function renderLifecycle(root, roomId) {
  let live = true;
  root.innerHTML = `<div class="room-lifecycle"><p class="muted">${esc(t('reliability.loading'))}</p></div>`;
  api
    .get(`/api/v1/reliability/components?room=${encodeURIComponent(roomId)}&limit=1000`)
    .then((r) => {
      if (!live) return;
      const rows = r.components
        .map((c) => `<tr class="${c.overdue ? 'rel-reorder' : ''}"><td translate="no">${esc(c.equipment)}</td><td>${esc(classLabel(c.class))}</td><td translate="no">${esc([c.vendor, c.model].filter(Boolean).join(' ') || '—')}</td>
          <td class="n">${esc(num(c.age_hours, 0))} <span class="muted">${esc(t(`lifecycle.hours_${c.hours_source}`))}</span></td>
          <td class="n">${esc(num(c.hazard, 2))}</td><td class="n">${esc(pct(c.p30))}</td><td class="n">${esc(pct(c.p90))}</td>
          <td>${c.next_replacement ? (c.overdue ? `<b class="rel-warn">${esc(t('lifecycle.overdue'))}</b>` : esc(date(c.next_replacement))) : esc(t('lifecycle.run_to_failure'))}</td>
          <td class="muted">${esc(c.curve_source === 'fit' ? t('lifecycle.curve_fit') : t('lifecycle.curve_literature'))}</td></tr>`)
        .join('');
      root.innerHTML = `<div class="room-lifecycle">
        <p class="muted">${esc(t('lifecycle.note'))} <a href="#/reliability">${esc(t('lifecycle.fleet_link'))}</a></p>
        ${r.components.length ? `<div class="table-scroll"><table class="grid" id="lc-table"><thead><tr>
          <th>${esc(t('lifecycle.equipment'))}</th><th>${esc(t('reliability.class'))}</th><th>${esc(t('reliability.model'))}</th><th class="n">${esc(t('lifecycle.age'))}</th>
          <th class="n">${esc(t('lifecycle.hazard'))}</th><th class="n">${esc(t('lifecycle.p30'))}</th><th class="n">${esc(t('lifecycle.p90'))}</th><th>${esc(t('lifecycle.next'))}</th><th>${esc(t('lifecycle.curve'))}</th></tr></thead><tbody>${rows}</tbody></table></div>` : `<p class="empty">${esc(t('lifecycle.none'))}</p>`}
      </div>`;
    })
    .catch((e) => {
      if (live) root.innerHTML = `<p class="status offline">${esc(apiError(e))}</p>`;
    });
  return () => {
    live = false;
  };
}
