// The archives page (档案, issue 21 items 1 and 9): #/assets lists projects and rooms with
// filters (zone, project, vendor, equipment kind, text); #/assets/<room> a room's equipment,
// documents and retired history; #/assets/<room>/<tag> an equipment's detail — nameplate, H-Q
// and η-Q curves drawn small, dates with the warranty's status, supplier, documents and photos.
// Engineers (rule authors) and admins edit an equipment, replace it by a new unit (the old one
// goes to the retired history and the running room takes the new nameplate at once), remove
// it, and attach documents. The header's #assets-tools holds the spreadsheet import and export
// (assetsimport.js). The rendering helpers are shared with the room page's archive tab.

import * as api from './api.js';
import { esc, num, zoneLabel, setZoneNames } from './format.js';
import { t, apiError } from './i18n.js';
import { mountImportTools } from './assetsimport.js';

const NS = 'http://www.w3.org/2000/svg';
const RANK = { viewer: 0, operator: 1, 'rule-author': 2, admin: 3 };
export const KINDS = ['pump', 'motor', 'vfd', 'cabinet', 'tank', 'analyser', 'meter', 'transducer', 'valve', 'camera', 'access_control'];
const DOC_KINDS = ['manual', 'drawing', 'certificate', 'photo', 'other'];
// Nameplate fields shown and edited: [key, catalogue label, unit, decimals].
const PLATE = [
  ['rated_flow_m3h', 'assets.rated_flow', 'm³/h', 1],
  ['rated_head_m', 'assets.rated_head', 'm', 1],
  ['shutoff_head_m', 'assets.shutoff_head', 'm', 1],
  ['rated_power_kw', 'assets.rated_power', 'kW', 1],
  ['rated_speed_rpm', 'assets.rated_speed', 'r/min', 0],
  ['efficiency', 'assets.efficiency', '', 2],
];
const TEXT_FIELDS = ['vendor', 'model', 'serial', 'part_number', 'name'];
const DATE_FIELDS = ['installed', 'commissioned', 'warranty_end'];

export const mayWrite = (role) => (RANK[role] ?? 0) >= RANK['rule-author'];
export const kindLabel = (k) => t(`assets.kind_${k}`);

// The warranty's status on `today` (YYYY-MM-DD strings compare as dates).
export function warranty(e, today) {
  if (!e.warranty_end) return `<span class="muted">—</span>`;
  const inWarranty = e.warranty_end >= today;
  return `<span class="${inWarranty ? 'w-ok' : 'w-out'}">${esc(t(inWarranty ? 'assets.in_warranty' : 'assets.out_of_warranty'))}</span> <span class="muted" translate="no">${esc(e.warranty_end)}</span>`;
}

// A small chart of curve points [[q, y], …]: `scale` multiplies y (efficiency in %).
export function curveChart(points, { title, yUnit, scale = 1, rated = null }) {
  if (!points || points.length < 2) return '';
  const w = 260, h = 150, l = 36, b = 24, r = 8, top = 18;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1] * scale);
  const xMax = Math.max(...xs) || 1;
  const yMax = Math.max(...ys) * 1.1 || 1;
  const X = (x) => l + (x / xMax) * (w - l - r);
  const Y = (y) => h - b - (y / yMax) * (h - b - top);
  const line = points.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1] * scale).toFixed(1)}`).join(' ');
  const dots = points.map((p) => `<circle cx="${X(p[0]).toFixed(1)}" cy="${Y(p[1] * scale).toFixed(1)}" r="2.5"></circle>`).join('');
  const mark = rated ? `<line class="rated" x1="${X(rated).toFixed(1)}" x2="${X(rated).toFixed(1)}" y1="${top}" y2="${h - b}"></line>` : '';
  return `<figure class="curve"><svg xmlns="${NS}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(title)}">
    <text x="${l}" y="12" class="c-title">${esc(title)}</text>
    <line class="axis" x1="${l}" y1="${h - b}" x2="${w - r}" y2="${h - b}"></line><line class="axis" x1="${l}" y1="${top}" x2="${l}" y2="${h - b}"></line>
    <text x="${l - 4}" y="${Y(yMax / 1.1) + 4}" text-anchor="end">${esc(num(yMax / 1.1, 0))}</text><text x="${l - 4}" y="${h - b}" text-anchor="end">0</text>
    <text x="${w - r}" y="${h - 6}" text-anchor="end">${esc(num(xMax, 0))} ${esc('m³/h')}</text><text x="${l + 2}" y="${top + 10}">${esc(yUnit)}</text>
    ${mark}<polyline points="${line}"></polyline><g class="pts">${dots}</g></svg></figure>`;
}

// The H-Q and η-Q charts of a nameplate.
export function curves(plate) {
  return `<div class="curves">${curveChart(plate.curve_hq, { title: t('assets.curve_hq'), yUnit: 'm', rated: plate.rated_flow_m3h })}${curveChart(plate.curve_eta_q, { title: t('assets.curve_eta'), yUnit: '%', scale: 100, rated: plate.rated_flow_m3h })}</div>`;
}

// The nameplate's ratings as rows.
export function plateRows(plate) {
  const rows = PLATE.filter(([k]) => plate[k] !== undefined && plate[k] !== null).map(
    ([k, label, unit, d]) => `<tr><th>${esc(t(label))}</th><td translate="no">${esc(num(plate[k], d))} ${esc(unit)}</td></tr>`,
  );
  if (plate.tank) {
    const tk = plate.tank;
    rows.push(`<tr><th>${esc(t('assets.tank_size'))}</th><td translate="no">${esc(num(tk.area_m2, 1))} ${esc('m²')} × ${esc(num(tk.height_m, 1))} ${esc('m')}</td></tr>`);
  }
  return rows.join('');
}

// A document list with download links.
export function documentList(roomId, docs) {
  if (!docs || !docs.length) return `<p class="muted">${esc(t('assets.no_documents'))}</p>`;
  return `<ul class="docs">${docs
    .map((d) => `<li><a href="#" data-doc="${esc(d.id)}" data-room="${esc(roomId)}" translate="no">${esc(d.name)}</a> <span class="muted">${esc(t(`assets.doc_${d.kind}`))} · ${esc(num(d.bytes / 1024, 0))} ${esc('KB')} · <span translate="no">${esc(d.added_by)}</span></span></li>`)
    .join('')}</ul>`;
}

// Opens a document (fetched with the session's token) in a new tab.
export function wireDocuments(root, toast) {
  root.addEventListener('click', async (ev) => {
    const a = ev.target.closest('a[data-doc]');
    if (!a) return;
    ev.preventDefault();
    try {
      const s = api.session();
      const res = await fetch(`/api/v1/assets/rooms/${encodeURIComponent(a.dataset.room)}/documents/${encodeURIComponent(a.dataset.doc)}`, { headers: s ? { Authorization: `Bearer ${s.token}` } : {} });
      if (!res.ok) throw new Error(String(res.status));
      const url = URL.createObjectURL(await res.blob());
      window.open(url, '_blank');
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (e) {
      toast(apiError(e), false);
    }
  });
}

// The equipment table of a room; each row links to `href(e)`.
export function equipmentTable(list, today, href) {
  const th = (k) => `<th>${esc(t(k))}</th>`;
  return `<div class="table-scroll"><table class="grid assets-eq"><thead><tr>${th('assets.tag')}${th('assets.kind')}${th('assets.vendor')}${th('assets.model')}${th('assets.serial')}${th('assets.installed')}${th('assets.warranty')}</tr></thead><tbody>${list
    .map((e) => `<tr data-tag="${esc(e.tag)}"><td translate="no"><a href="${href(e)}">${esc(e.tag)}</a>${e.set ? ` <span class="muted" translate="no">${esc(e.set)}</span>` : ''}</td><td>${esc(kindLabel(e.kind))}</td><td translate="no">${esc(e.vendor || '—')}</td><td translate="no">${esc(e.model || '—')}</td><td translate="no">${esc(e.serial || '—')}</td><td translate="no">${esc(e.installed || '—')}</td><td>${warranty(e, today)}</td></tr>`)
    .join('')}</tbody></table></div>`;
}

// The retired history.
export function retiredTable(list) {
  if (!list || !list.length) return `<p class="muted">${esc(t('assets.no_retired'))}</p>`;
  const th = (k) => `<th>${esc(t(k))}</th>`;
  return `<div class="table-scroll"><table class="grid"><thead><tr>${th('assets.tag')}${th('assets.kind')}${th('assets.vendor')}${th('assets.serial')}${th('assets.reason')}${th('assets.retired_at')}${th('assets.by')}</tr></thead><tbody>${list
    .slice()
    .reverse()
    .map((r) => `<tr><td translate="no">${esc(r.equipment.tag)}</td><td>${esc(kindLabel(r.equipment.kind))}</td><td translate="no">${esc(r.equipment.vendor || '—')} ${esc(r.equipment.model || '')}</td><td translate="no">${esc(r.equipment.serial || '—')}</td><td>${esc(t(`assets.reason_${r.reason}`))}</td><td translate="no">${esc(new Date(r.at).toISOString().slice(0, 10))}</td><td translate="no">${esc(r.by)}</td></tr>`)
    .join('')}</tbody></table></div>`;
}

// The site and project block of a room.
export function siteBlock(a, project) {
  const row = (k, v) => `<tr><th>${esc(t(k))}</th><td translate="no">${esc(v ?? '—')}</td></tr>`;
  return `<table class="kv-table">${row('assets.project', project ? `${project.name} (${project.id})` : a.project)}${row('assets.address', a.site.address)}${row('assets.zone', zoneLabel(a.site.zone))}${row('assets.households', a.site.households)}${row('assets.commissioned', a.commissioned)}${project && project.developer ? row('assets.developer', project.developer) : ''}${project && project.property_manager ? row('assets.property_manager', project.property_manager) : ''}</table>`;
}

// The problems of a refused write, in the user's language.
export function problemsText(err) {
  const list = (err && err.body && err.body.error && err.body.error.problems) || [];
  if (!list.length) return apiError(err);
  return list.map((p) => `${p.field}: ${t(`asset.${p.code}`)}${p.value ? ` (${p.value})` : ''}`).join('; ');
}

export class AssetsPage {
  constructor(root, { role = () => 'viewer', toast = () => {} }) {
    this.root = root;
    this.role = role;
    this.toast = toast;
    this.seq = 0;
    this.filters = { zone: '', project: '', vendor: '', kind: '', q: '' };
    wireDocuments(root, (m, ok) => this.toast(m, ok));
  }

  close() {
    this.seq += 1;
  }

  // `#/assets`, `#/assets/<room>`, `#/assets/<room>/<tag>`.
  open() {
    const parts = location.hash.split('?')[0].split('/').slice(2).map(decodeURIComponent);
    const seq = ++this.seq;
    if (parts[0]) this.showRoom(parts[0], parts[1], seq);
    else this.showList(seq);
  }

  header() {
    return `<div class="orders-bar assets-head"><h2>${esc(t('assets.title'))}</h2><div id="assets-tools"></div></div>`;
  }

  async showList(seq) {
    const f = this.filters;
    const opt = (v, label, cur) => `<option value="${esc(v)}"${v === cur ? ' selected' : ''}>${esc(label)}</option>`;
    this.root.innerHTML = `<div class="assets">${this.header()}
      <div class="assets-filters">
        <select id="as-zone" aria-label="${esc(t('assets.zone'))}">${opt('', t('assets.all_zones'), f.zone)}</select>
        <select id="as-project" aria-label="${esc(t('assets.project'))}">${opt('', t('assets.all_projects'), f.project)}</select>
        <select id="as-kind" aria-label="${esc(t('assets.kind'))}">${opt('', t('assets.all_kinds'), f.kind)}${KINDS.map((k) => opt(k, kindLabel(k), f.kind)).join('')}</select>
        <input id="as-vendor" value="${esc(f.vendor)}" placeholder="${esc(t('assets.vendor'))}" aria-label="${esc(t('assets.vendor'))}">
        <input type="search" id="as-q" value="${esc(f.q)}" placeholder="${esc(t('assets.search'))}" aria-label="${esc(t('assets.search'))}">
      </div>
      <div class="assets-body"><aside class="assets-projects" id="as-projects"></aside><div class="orders-list" id="as-rooms"><p class="empty">${esc(t('orders.loading'))}</p></div></div>
    </div>`;
    mountImportTools(this.root.querySelector('#assets-tools'), { role: this.role(), toast: this.toast });
    let timer = 0;
    const changed = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        for (const k of Object.keys(f)) f[k] = this.root.querySelector(`#as-${k}`).value.trim();
        this.fill(++this.seq);
      }, 200);
    };
    for (const k of Object.keys(f)) this.root.querySelector(`#as-${k}`).addEventListener(k === 'vendor' || k === 'q' ? 'input' : 'change', changed);
    this.root.querySelector('#as-projects').addEventListener('click', (ev) => {
      const b = ev.target.closest('[data-project]');
      if (!b) return;
      f.project = f.project === b.dataset.project ? '' : b.dataset.project;
      this.root.querySelector('#as-project').value = f.project;
      this.fill(++this.seq);
    });
    let projects, rooms;
    try {
      [projects, rooms] = await Promise.all([api.get('/api/v1/assets/projects'), api.get('/api/v1/rooms')]);
    } catch (e) {
      if (seq === this.seq) this.root.querySelector('#as-rooms').innerHTML = `<p class="empty">${esc(apiError(e))}</p>`;
      return;
    }
    if (seq !== this.seq) return;
    this.projects = projects.projects;
    setZoneNames(rooms.zones || []);
    this.root.querySelector('#as-zone').innerHTML = opt('', t('assets.all_zones'), f.zone) + (rooms.zones || []).map((z) => opt(z.id, zoneLabel(z.id), f.zone)).join('');
    this.root.querySelector('#as-project').innerHTML = opt('', t('assets.all_projects'), f.project) + this.projects.map((p) => opt(p.id, `${p.name}`, f.project)).join('');
    this.fill(seq);
  }

  async fill(seq) {
    const f = this.filters;
    const q = new URLSearchParams(Object.entries(f).filter(([, v]) => v));
    let res;
    try {
      res = await api.get(`/api/v1/assets/rooms?${q}`);
    } catch (e) {
      if (seq === this.seq) this.root.querySelector('#as-rooms').innerHTML = `<p class="empty">${esc(apiError(e))}</p>`;
      return;
    }
    if (seq !== this.seq) return;
    const inView = new Map();
    for (const r of res.rooms) if (r.project) inView.set(r.project, (inView.get(r.project) || 0) + 1);
    const projects = (this.projects || []).filter((p) => inView.has(p.id) || p.id === f.project).slice(0, 300);
    this.root.querySelector('#as-projects').innerHTML = `<h3>${esc(t('assets.projects'))} <span class="muted">${esc(String(inView.size))}</span></h3>${projects
      .map((p) => `<button class="ghost as-project${p.id === f.project ? ' active' : ''}" data-project="${esc(p.id)}"><span translate="no">${esc(p.name)}</span> <span class="muted">${esc(t('assets.n_rooms', { n: inView.get(p.id) || 0 }))}</span></button>`)
      .join('')}`;
    const shown = res.rooms.slice(0, 500);
    this.root.querySelector('#as-rooms').innerHTML = `<p class="muted">${esc(t('assets.n_rooms', { n: res.count }))}</p>${
      shown.length
        ? shown
            .map((r) => `<a class="order-card as-room" href="#/assets/${encodeURIComponent(r.id)}" data-room="${esc(r.id)}">
          <span class="o-head"><b translate="no">${esc(r.id)}</b> <span translate="no">${esc(r.name)}</span></span>
          <span class="o-title" translate="no">${esc(r.project_name || '—')}</span>
          <span class="o-meta">${esc(t('assets.room_counts', { equipment: r.equipment, pumps: r.pumps, warranty: r.in_warranty }))}</span>
        </a>`)
            .join('')
        : `<p class="empty">${esc(t('assets.none_match'))}</p>`
    }`;
  }

  async showRoom(roomId, tag, seq) {
    this.root.innerHTML = `<div class="assets">${this.header()}<p class="empty">${esc(t('orders.loading'))}</p></div>`;
    mountImportTools(this.root.querySelector('#assets-tools'), { role: this.role(), toast: this.toast });
    let res;
    try {
      res = await api.get(`/api/v1/assets/rooms/${encodeURIComponent(roomId)}`);
    } catch (e) {
      if (seq === this.seq) this.root.querySelector('.empty').textContent = apiError(e);
      return;
    }
    if (seq !== this.seq) return;
    this.render(res, tag);
  }

  render(res, tag) {
    const a = res.archive;
    const room = a.site.id;
    const eq = tag ? a.equipment.find((e) => e.tag === tag) : null;
    const base = `#/assets/${encodeURIComponent(room)}`;
    const box = this.root.querySelector('.assets');
    box.innerHTML = `${this.header()}
      <p class="crumbs"><a href="#/assets">${esc(t('assets.title'))}</a> › <a href="${base}" translate="no">${esc(a.site.name)}</a>${eq ? ` › <span translate="no">${esc(eq.tag)}</span>` : ''} · <a href="#/room/${encodeURIComponent(room)}">${esc(t('assets.live_room'))}</a></p>
      ${eq ? this.equipmentDetail(res, eq) : this.roomDetail(res)}`;
    mountImportTools(box.querySelector('#assets-tools'), { role: this.role(), toast: this.toast });
    if (eq) this.wireEquipment(res, eq);
    else this.wireUpload(room, null);
  }

  roomDetail(res) {
    const a = res.archive;
    const base = `#/assets/${encodeURIComponent(a.site.id)}`;
    return `<div class="assets-room">
      <section class="card"><h3 translate="no">${esc(a.site.name)} <span class="muted">${esc(a.site.id)}</span></h3>${siteBlock(a, res.project)}</section>
      <section class="card"><h3>${esc(t('assets.equipment'))} <span class="muted">${esc(String(a.equipment.length))}</span></h3>${equipmentTable(a.equipment, res.today, (e) => `${base}/${encodeURIComponent(e.tag)}`)}</section>
      <section class="card"><h3>${esc(t('assets.documents'))}</h3>${documentList(a.site.id, a.documents)}${this.uploadForm()}</section>
      <section class="card"><h3>${esc(t('assets.retired'))}</h3>${retiredTable(a.retired)}</section>
    </div>`;
  }

  equipmentDetail(res, e) {
    const a = res.archive;
    const s = e.supplier;
    const row = (k, v) => `<tr><th>${esc(t(k))}</th><td translate="no">${esc(v || '—')}</td></tr>`;
    const write = mayWrite(this.role());
    return `<div class="assets-room">
      <section class="card"><h3><span translate="no">${esc(e.tag)}</span> · ${esc(kindLabel(e.kind))}${e.device ? ` <span class="muted" translate="no">${esc(e.device)}</span>` : ''}</h3>
        <table class="kv-table">${row('assets.vendor', e.vendor)}${row('assets.model', e.model)}${row('assets.serial', e.serial)}${row('assets.part_number', e.part_number)}${e.set ? row('assets.set', e.set) : ''}${plateRows(e.nameplate || {})}
        ${row('assets.installed', e.installed)}${row('assets.commissioned', e.commissioned)}<tr><th>${esc(t('assets.warranty'))}</th><td>${warranty(e, res.today)}</td></tr></table>
        ${curves(e.nameplate || {})}
      </section>
      <section class="card"><h3>${esc(t('assets.supplier'))}</h3>${s ? `<table class="kv-table">${row('assets.contact', s.name)}${row('assets.company', s.company)}${row('assets.phone', s.phone)}${s.email ? row('assets.email', s.email) : ''}</table>` : `<p class="muted">—</p>`}</section>
      <section class="card"><h3>${esc(t('assets.documents'))}</h3>${documentList(a.site.id, e.documents)}${this.uploadForm()}</section>
      ${write ? `<section class="card"><h3>${esc(t('assets.change'))}</h3>
        <div class="as-actions"><button id="as-edit">${esc(t('assets.edit'))}</button><button id="as-replace">${esc(t('assets.replace'))}</button><button class="danger" id="as-remove">${esc(t('assets.remove'))}</button></div>
        <form id="as-form" class="as-form" hidden></form></section>` : ''}
    </div>`;
  }

  uploadForm() {
    if (!mayWrite(this.role())) return '';
    return `<form class="as-upload" id="as-upload"><select id="as-doc-kind" aria-label="${esc(t('assets.doc_kind'))}">${DOC_KINDS.map((k) => `<option value="${k}">${esc(t(`assets.doc_${k}`))}</option>`).join('')}</select><input type="file" id="as-file" accept="application/pdf,image/jpeg,image/png,image/webp" aria-label="${esc(t('assets.upload'))}"><button type="submit">${esc(t('assets.upload'))}</button></form>`;
  }

  wireUpload(room, tag) {
    const form = this.root.querySelector('#as-upload');
    if (!form) return;
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const file = form.querySelector('#as-file').files[0];
      if (!file) return;
      const q = new URLSearchParams({ kind: form.querySelector('#as-doc-kind').value, name: file.name });
      if (tag) q.set('tag', tag);
      const s = api.session();
      const res = await fetch(`/api/v1/assets/rooms/${encodeURIComponent(room)}/documents?${q}`, { method: 'POST', body: file, headers: s ? { Authorization: `Bearer ${s.token}` } : {} });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        this.toast(t(`errors.${(body.error && body.error.code) || 'internal'}`), false);
        return;
      }
      this.toast(t('assets.uploaded'), true);
      this.open();
    });
  }

  wireEquipment(res, e) {
    const room = res.archive.site.id;
    this.wireUpload(room, e.tag);
    const form = this.root.querySelector('#as-form');
    if (!form) return;
    const show = (mode) => {
      form.hidden = false;
      form.dataset.mode = mode;
      form.innerHTML = this.formFields(e, mode) + `<p class="as-problems" id="as-problems" role="alert"></p><div class="as-actions"><button type="submit">${esc(t(mode === 'replace' ? 'assets.replace' : 'assets.save'))}</button><button type="button" class="ghost" id="as-cancel">${esc(t('assets.cancel'))}</button></div>`;
      form.querySelector('#as-cancel').addEventListener('click', () => (form.hidden = true));
    };
    this.root.querySelector('#as-edit').addEventListener('click', () => show('edit'));
    this.root.querySelector('#as-replace').addEventListener('click', () => show('replace'));
    this.root.querySelector('#as-remove').addEventListener('click', async () => {
      if (!confirm(t('assets.remove_confirm', { tag: e.tag }))) return;
      try {
        const out = await api.del(`/api/v1/assets/rooms/${encodeURIComponent(room)}/equipment/${encodeURIComponent(e.tag)}`);
        this.done(out);
        location.hash = `#/assets/${encodeURIComponent(room)}`;
      } catch (err) {
        this.toast(problemsText(err), false);
      }
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const mode = form.dataset.mode;
      const body = this.readForm(form, e, mode);
      const path = `/api/v1/assets/rooms/${encodeURIComponent(room)}/equipment/${encodeURIComponent(e.tag)}`;
      try {
        const out = mode === 'replace' ? await api.post(`${path}/replace`, body) : await api.put(path, body);
        this.done(out);
        this.open();
      } catch (err) {
        form.querySelector('#as-problems').textContent = problemsText(err);
      }
    });
  }

  done(out) {
    this.toast(out.live ? t('assets.saved_restart') : t('assets.saved'), true);
  }

  formFields(e, mode) {
    const fresh = mode === 'replace';
    const field = (key, label, value, type = 'text') => `<label><span>${esc(t(label))}</span><input name="${key}" type="${type}" value="${esc(value ?? '')}"${type === 'number' ? ' step="any"' : ''}></label>`;
    const p = e.nameplate || {};
    return `<div class="as-grid">${TEXT_FIELDS.map((k) => field(k, `assets.${k}`, fresh && (k === 'serial' || k === 'name') ? '' : e[k])).join('')}
      ${DATE_FIELDS.map((k) => field(k, `assets.${k}`, fresh ? '' : e[k], 'date')).join('')}
      ${PLATE.map(([k, label]) => field(`np_${k}`, label, p[k], 'number')).join('')}
      ${field('sup_name', 'assets.contact', e.supplier && e.supplier.name)}${field('sup_company', 'assets.company', e.supplier && e.supplier.company)}${field('sup_phone', 'assets.phone', e.supplier && e.supplier.phone)}
      <label class="wide"><span>${esc(t('assets.notes'))}</span><input name="notes" value="${esc(fresh ? '' : e.notes || '')}"></label></div>`;
  }

  readForm(form, e, mode) {
    const v = (k) => form.elements[k].value.trim();
    const out = { ...e, nameplate: { ...(e.nameplate || {}) } };
    if (mode === 'replace') out.documents = [];
    for (const k of TEXT_FIELDS) out[k] = v(k);
    for (const k of DATE_FIELDS) {
      if (v(k)) out[k] = v(k);
      else delete out[k];
    }
    for (const [k] of PLATE) {
      const n = v(`np_${k}`);
      if (n === '') delete out.nameplate[k];
      else out.nameplate[k] = Number(n);
    }
    const sup = { name: v('sup_name'), company: v('sup_company'), phone: v('sup_phone') };
    if (sup.name || sup.company || sup.phone) out.supplier = { ...(e.supplier || {}), ...sup };
    else delete out.supplier;
    out.notes = v('notes');
    return out;
  }
}
