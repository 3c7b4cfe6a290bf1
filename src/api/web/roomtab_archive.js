// The room page's archive tab (#/room/<id>/archive, issue 21 item 8): the room's project and
// site data, its equipment with their nameplates (pump curves drawn small), documents and the
// retired history, read from the archive (GET /api/v1/assets/rooms/{id}); editing is on the
// archives page, linked from here.

import * as api from './api.js';
import { esc } from './format.js';
import { t, apiError } from './i18n.js';
import { curves, documentList, equipmentTable, kindLabel, plateRows, retiredTable, siteBlock, warranty, wireDocuments } from './assets.js';

export function renderArchiveTab(root, roomId, { toast = () => {} } = {}) {
  let gone = false;
  root.innerHTML = `<div class="room-archive"><p class="empty">${esc(t('orders.loading'))}</p></div>`;
  wireDocuments(root, toast);
  const show = async () => {
    let res;
    try {
      res = await api.get(`/api/v1/assets/rooms/${encodeURIComponent(roomId)}`);
    } catch (e) {
      if (!gone) root.querySelector('.empty').textContent = apiError(e);
      return;
    }
    if (gone) return;
    const a = res.archive;
    const base = `#/assets/${encodeURIComponent(roomId)}`;
    const pumps = a.equipment.filter((e) => e.kind === 'pump');
    root.innerHTML = `<div class="room-archive assets-room">
      <section class="card"><h3>${esc(t('assets.site'))} <a class="muted" href="${base}">${esc(t('assets.open_archive'))}</a></h3>${siteBlock(a, res.project)}</section>
      <section class="card"><h3>${esc(t('assets.equipment'))} <span class="muted">${esc(String(a.equipment.length))}</span></h3>${equipmentTable(a.equipment, res.today, (e) => `${base}/${encodeURIComponent(e.tag)}`)}</section>
      ${pumps
        .map((p) => `<section class="card"><h3><span translate="no">${esc(p.tag)}</span> · ${esc(kindLabel(p.kind))} <span class="muted" translate="no">${esc(p.vendor)} ${esc(p.model)}</span></h3>
          <table class="kv-table">${plateRows(p.nameplate || {})}<tr><th>${esc(t('assets.warranty'))}</th><td>${warranty(p, res.today)}</td></tr></table>${curves(p.nameplate || {})}</section>`)
        .join('')}
      <section class="card"><h3>${esc(t('assets.documents'))}</h3>${documentList(roomId, (a.documents || []).concat(...a.equipment.map((e) => e.documents || [])))}</section>
      <section class="card"><h3>${esc(t('assets.retired'))}</h3>${retiredTable(a.retired)}</section>
    </div>`;
  };
  show().catch((e) => {
    if (!gone) root.innerHTML = `<p class="empty">${esc(apiError(e))}</p>`;
  });
  return () => {
    gone = true;
  };
}
