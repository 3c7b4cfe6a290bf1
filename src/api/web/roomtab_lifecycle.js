// The room page's lifecycle tab (issue 21 item 8, #/room/<id>/lifecycle): the room's
// components (from its archive's equipment) with their age in running hours (and whether from
// the pump's counter or the calendar), the hazard now, the chance of failing within 30 and 90
// days and the planned replacement date, from GET /api/v1/reliability/components?room=. A row
// opens the component: its curves (R(t) and h(t), its age marked), its events (simulated ones
// said), and for rule authors and admins a form recording an event by hand.

import * as api from './api.js';
import { esc } from './format.js';
import { t, num, date, apiError } from './i18n.js';
import { classLabel, curveSvg } from './reliability.js';

const pct = (p) => (Number.isFinite(p) ? `${num(p * 100, 1)} %` : '—');
const KINDS = ['failure', 'replacement', 'install'];

function detail(r, role) {
  const c = r.component;
  const events = c.events
    .slice()
    .reverse()
    .map((e) => `<li><span translate="no">${esc(date(e.at))}</span> ${esc(t(`lifecycle.event_${e.kind}`))} · ${esc(t(`lifecycle.source_${e.source}`))}${e.serial ? ` <span translate="no">${esc(e.serial)}</span>` : ''}${e.note ? ` — <span translate="no">${esc(e.note)}</span>` : ''}</li>`)
    .join('');
  const age = r.risk ? r.risk.age_hours : null;
  const curves = r.curve ? `<div class="rel-charts">${curveSvg(r.curve, 1, age)}${curveSvg(r.curve, 2, age)}</div>` : '';
  const write = role === 'rule-author' || role === 'admin';
  const form = write
    ? `<form class="lc-event"><label>${esc(t('lifecycle.event_kind'))} <select name="kind">${KINDS.map((k) => `<option value="${k}">${esc(t(`lifecycle.event_${k}`))}</option>`).join('')}</select></label>
        <label>${esc(t('lifecycle.serial'))} <input name="serial" maxlength="100"></label>
        <button type="submit">${esc(t('lifecycle.record'))}</button></form>`
    : '';
  return `<div class="lc-detail">${curves}<h4>${esc(t('lifecycle.events'))}</h4><ul class="lc-events">${events}</ul>${form}</div>`;
}

export function renderLifecycle(root, roomId, { role = () => 'viewer', toast = () => {} } = {}) {
  let live = true;
  const load = () => api
    .get(`/api/v1/reliability/components?room=${encodeURIComponent(roomId)}&limit=1000`)
    .then((r) => {
      if (!live) return;
      const rows = r.components
        .map((c) => `<tr class="lc-row${c.overdue ? ' rel-reorder' : ''}" tabindex="0" data-tag="${esc(c.equipment)}" data-class="${esc(c.class)}"><td translate="no">${esc(c.equipment)}</td><td>${esc(classLabel(c.class))}</td><td translate="no">${esc([c.vendor, c.model].filter(Boolean).join(' ') || '—')}</td>
          <td class="n">${esc(num(c.age_hours, 0))} <span class="muted">${esc(t(`lifecycle.hours_${c.hours_source}`))}</span></td>
          <td class="n">${esc(num(c.hazard, 2))}</td><td class="n">${esc(pct(c.p30))}</td><td class="n">${esc(pct(c.p90))}</td>
          <td>${c.next_replacement ? (c.overdue ? `<b class="rel-warn">${esc(t('lifecycle.overdue'))}</b>` : esc(date(c.next_replacement))) : esc(t('lifecycle.run_to_failure'))}</td>
          <td class="muted">${esc(c.curve_source === 'fit' ? t('lifecycle.curve_fit') : t('lifecycle.curve_literature'))}</td></tr>`)
        .join('');
      root.innerHTML = `<div class="room-lifecycle">
        <p class="muted">${esc(t('lifecycle.note'))} <a href="#/reliability">${esc(t('lifecycle.fleet_link'))}</a></p>
        ${r.components.length ? `<div class="table-scroll"><table class="grid" id="lc-table"><thead><tr>
          <th>${esc(t('lifecycle.equipment'))}</th><th>${esc(t('reliability.class'))}</th><th>${esc(t('reliability.model'))}</th><th class="n">${esc(t('lifecycle.age'))}</th>
          <th class="n">${esc(t('lifecycle.hazard'))}</th><th class="n">${esc(t('lifecycle.p30'))}</th><th class="n">${esc(t('lifecycle.p90'))}</th><th>${esc(t('lifecycle.next'))}</th><th>${esc(t('lifecycle.curve'))}</th></tr></thead><tbody>${rows}</tbody></table></div>
          <p class="muted">${esc(t('lifecycle.open_hint'))}</p><div id="lc-detail"></div>` : `<p class="empty">${esc(t('lifecycle.none'))}</p>`}
      </div>`;
      for (const tr of root.querySelectorAll('tr.lc-row')) {
        const open = () => show(tr.dataset.tag, tr.dataset.class);
        tr.addEventListener('click', open);
        tr.addEventListener('keydown', (e) => e.key === 'Enter' && open());
      }
    })
    .catch((e) => {
      if (live) root.innerHTML = `<p class="status offline">${esc(apiError(e))}</p>`;
    });
  const path = (tag, cls) => `/api/v1/reliability/components/${encodeURIComponent(roomId)}/${encodeURIComponent(tag)}/${encodeURIComponent(cls)}`;
  const show = (tag, cls) => api
    .get(path(tag, cls))
    .then((r) => {
      const box = live && root.querySelector('#lc-detail');
      if (!box) return;
      box.innerHTML = `<h3 translate="no">${esc(tag)} · <span translate="yes">${esc(classLabel(cls))}</span></h3>${detail(r, role())}`;
      box.dataset.component = `${tag}/${cls}`;
      const form = box.querySelector('form.lc-event');
      if (form) {
        form.addEventListener('submit', async (e) => {
          e.preventDefault();
          const body = { kind: form.kind.value, serial: form.serial.value.trim() };
          try {
            await api.post(`${path(tag, cls)}/events`, body);
            toast(t('lifecycle.recorded'), true);
            await load();
            show(tag, cls);
          } catch (err) {
            toast(apiError(err));
          }
        });
      }
    })
    .catch((e) => toast(apiError(e)));
  root.innerHTML = `<div class="room-lifecycle"><p class="muted">${esc(t('reliability.loading'))}</p></div>`;
  load();
  return () => {
    live = false;
  };
}
