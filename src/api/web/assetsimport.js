// The archive's spreadsheet on the Assets page (issue 21, item 2): download the template or
// the archive (.xlsx, or one sheet as CSV), and — for engineers and administrators — import a
// filled-in file: checked first (a dry run), its problems listed by sheet, row and column in
// the page's language, then imported with its progress shown. Nothing is written while a
// problem stands (the node refuses the whole file).

import * as api from './api.js';
import { esc } from './format.js';
import { t, apiError, lang } from './i18n.js';

const POLL_MS = 400;
const WRITERS = ['rule-author', 'admin'];

// `role`: the user's role, or a function answering it.
export function mountImportTools(el, { role = 'viewer', toast = () => {}, onImported = () => {} } = {}) {
  const canImport = WRITERS.includes(typeof role === 'function' ? role() : role);
  el.innerHTML = `<div class="asset-tools">
      <button type="button" class="a-template">${esc(t('assets.template'))}</button>
      <button type="button" class="a-export">${esc(t('assets.export_xlsx'))}</button>
      <select class="a-csv" aria-label="${esc(t('assets.export_csv'))}">
        <option value="">${esc(t('assets.export_csv'))}</option>
        ${['projects', 'rooms', 'equipment'].map((s) => `<option value="${s}">${esc(t(`assets.sheet_${s}`))}</option>`).join('')}
      </select>
      ${canImport ? `<button type="button" class="a-import">${esc(t('assets.import'))}</button>` : ''}
    </div>`;
  const fail = (e) => toast(apiError(e));
  el.querySelector('.a-template').addEventListener('click', () => api.download(`/api/v1/assets/template?lang=${lang()}`, 'template.xlsx').catch(fail));
  el.querySelector('.a-export').addEventListener('click', () => api.download(`/api/v1/assets/export?format=xlsx&lang=${lang()}`, 'archive.xlsx').catch(fail));
  const csv = el.querySelector('.a-csv');
  csv.addEventListener('change', () => {
    const sheet = csv.value;
    csv.value = '';
    if (sheet) api.download(`/api/v1/assets/export?format=csv&sheet=${sheet}&lang=${lang()}`, `${sheet}.csv`).catch(fail);
  });
  if (canImport) el.querySelector('.a-import').addEventListener('click', () => importDialog({ toast, onImported }));
}

// The import dialog: pick a file, check it, read the report, import.
function importDialog({ toast, onImported }) {
  const dlg = document.createElement('dialog');
  dlg.className = 'dialog asset-import';
  dlg.innerHTML = `<form method="dialog">
      <h3>${esc(t('assets.import_title'))}</h3>
      <p class="muted">${esc(t('assets.import_hint'))}</p>
      <input type="file" class="a-file" accept=".xlsx,.csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet,text/csv">
      <div class="a-progress" hidden><progress max="1" value="0"></progress> <span class="a-phase"></span></div>
      <div class="a-report"></div>
      <div class="buttons">
        <button value="cancel" class="cancel">${esc(t('assets.close'))}</button>
        <button type="button" class="a-check" disabled>${esc(t('assets.check'))}</button>
        <button type="button" class="a-apply" disabled>${esc(t('assets.import_now'))}</button>
      </div></form>`;
  document.body.appendChild(dlg);
  const $ = (s) => dlg.querySelector(s);
  let file = null;
  let busy = false;
  $('.a-file').addEventListener('change', (e) => {
    file = e.target.files[0] || null;
    $('.a-check').disabled = !file;
    $('.a-apply').disabled = true;
    $('.a-report').innerHTML = '';
  });
  const run = async (dryRun) => {
    if (!file || busy) return;
    busy = true;
    $('.a-check').disabled = true;
    $('.a-apply').disabled = true;
    $('.a-report').innerHTML = '';
    $('.a-progress').hidden = false;
    try {
      let { job } = await api.upload(`/api/v1/assets/import?dry_run=${dryRun}&lang=${lang()}&name=${encodeURIComponent(file.name || '')}`, file);
      while (!job.finished) {
        showProgress(dlg, job);
        await new Promise((r) => setTimeout(r, POLL_MS));
        ({ job } = await api.get(`/api/v1/assets/import/${job.id}`));
      }
      showProgress(dlg, job);
      showReport($('.a-report'), job);
      const ok = job.phase === 'done';
      // A clean check opens the way to the import itself.
      $('.a-apply').disabled = !(ok && dryRun);
      if (ok && !dryRun) {
        toast(t('assets.imported', { rooms: (job.applied.created_rooms || 0) + (job.applied.updated_rooms || 0) }), true);
        onImported();
      }
    } catch (e) {
      $('.a-report').innerHTML = `<div class="abn">${esc(apiError(e))}</div>`;
    } finally {
      busy = false;
      $('.a-check').disabled = !file;
    }
  };
  $('.a-check').addEventListener('click', () => run(true));
  $('.a-apply').addEventListener('click', () => run(false));
  dlg.addEventListener('close', () => dlg.remove());
  dlg.showModal();
}

function showProgress(dlg, job) {
  const bar = dlg.querySelector('progress');
  bar.max = Math.max(job.total, 1);
  bar.value = job.phase === 'done' ? bar.max : job.done;
  dlg.querySelector('.a-phase').textContent = t(`assets.phase_${job.phase}`, { done: job.done, total: job.total });
}

function showReport(box, job) {
  const rows = Object.entries(job.rows || {}).map(([s, n]) => `${esc(t(`assets.sheet_${s}`))} ${n}`).join(' · ');
  if (job.refused) {
    box.innerHTML = `<div class="abn a-refused">${esc(job.refused.message)}</div>`;
    return;
  }
  if (job.error) {
    box.innerHTML = `<div class="abn">${esc(t('assets.failed', { error: job.error }))}</div>`;
    return;
  }
  const ignored = job.ignored_columns && job.ignored_columns.length ? `<div class="muted">${esc(t('assets.ignored', { columns: job.ignored_columns.join(', ') }))}</div>` : '';
  if (job.phase === 'refused') {
    const more = job.problem_count > job.problems.length ? `<div class="muted">${esc(t('assets.more_problems', { n: job.problem_count - job.problems.length }))}</div>` : '';
    box.innerHTML = `<div class="abn">${esc(t('assets.problems', { n: job.problem_count }))}</div>
      <div class="muted" translate="no">${rows}</div>${ignored}
      <div class="table-scroll"><table class="grid a-problems"><thead><tr><th>${esc(t('assets.p_sheet'))}</th><th>${esc(t('assets.p_row'))}</th><th>${esc(t('assets.p_column'))}</th><th>${esc(t('assets.p_problem'))}</th></tr></thead>
      <tbody>${job.problems
        .map((p) => `<tr data-code="${esc(p.code)}"><td>${esc(t(`assets.sheet_${p.sheet}`))}</td><td class="n">${p.row}</td><td translate="no">${esc(p.column)}</td><td>${esc(p.message)}</td></tr>`)
        .join('')}</tbody></table></div>${more}`;
    return;
  }
  const a = job.applied || {};
  const key = job.dry_run ? 'assets.would' : 'assets.did';
  box.innerHTML = `<div class="ok a-ok">${esc(t(key, {
    created: a.created_rooms || 0,
    updated: a.updated_rooms || 0,
    unchanged: a.unchanged_rooms || 0,
    projects: (a.created_projects || 0) + (a.updated_projects || 0),
    retired: a.retired_equipment || 0,
  }))}</div><div class="muted" translate="no">${rows}</div>${ignored}`;
}
