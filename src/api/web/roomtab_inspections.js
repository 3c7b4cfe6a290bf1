// The room page's inspections tab (#/room/<id>/inspections): the room's plans with their due
// dates (and a "start" button for operators) and its inspections, newest first.

import * as api from './api.js';
import { esc } from './format.js';
import { t, apiError, lang } from './i18n.js';
import { inspectionRows, startInspection, templateList } from './inspections.js';

const RANK = { viewer: 0, operator: 1, 'rule-author': 2, admin: 3 };

export const INSPECTIONS_TAB = {
  id: 'inspections',
  label: 'roomtab.inspections',
  render(root, roomId, { role = 'viewer', toast = () => {} } = {}) {
    let gone = false;
    root.innerHTML = `<div class="inspections"><div id="ri-plans"><p class="empty">${esc(t('orders.loading'))}</p></div><div id="ri-rows"></div></div>`;
    (async () => {
      let plans, rows, tpls;
      try {
        [plans, rows, tpls] = await Promise.all([
          api.get(`/api/v1/inspection-plans?room=${encodeURIComponent(roomId)}`),
          api.get(`/api/v1/inspections?room=${encodeURIComponent(roomId)}`),
          templateList(),
        ]);
      } catch (e) {
        if (!gone) root.querySelector('#ri-plans').innerHTML = `<p class="empty">${esc(apiError(e))}</p>`;
        return;
      }
      if (gone) return;
      const byId = new Map(tpls.map((x) => [x.id, x]));
      const may = (RANK[typeof role === 'function' ? role() : role] ?? 0) >= RANK.operator;
      const name = (id) => {
        const x = byId.get(id);
        return x ? (lang() === 'zh-CN' ? x.name_zh : x.name) : id;
      };
      root.querySelector('#ri-plans').innerHTML = `<ul class="ri-plans">${plans.plans.map((p) => `<li>${esc(name(p.template))}:
        ${p.overdue ? `<span class="abn">${esc(t('inspections.overdue'))}</span>` : ''} <span class="muted">${esc(t('inspections.due'))}</span> <span translate="no">${esc(p.due)}</span>
        ${may ? `<button type="button" class="ri-start" data-template="${esc(p.template)}">${esc(t('inspections.start'))}</button>` : ''}</li>`).join('')}</ul>`;
      for (const b of root.querySelectorAll('.ri-start')) b.addEventListener('click', () => startInspection(roomId, b.dataset.template, toast));
      root.querySelector('#ri-rows').innerHTML = inspectionRows(rows.rows, byId);
    })();
    return () => (gone = true);
  },
};
