// Room scores and ranking (泵房评分, issue 22 item 5, #/ranking): every room's score ranked in
// the fleet and its zone with its weakest dimension, each zone's weakest dimension, and a
// room's score opened down to its facts — each dimension's share and score, each fact's value,
// points and contribution — whose contributions add up to the score (the server rounds them
// so that the shown tenths add up too), what is missing, and the 30-day trend.
// Data from GET /api/v1/analysis/scores and /api/v1/analysis/score.

import * as api from './api.js';
import { esc } from './format.js';
import { t, num, apiError } from './i18n.js';
import { sparkSvg } from './cockpit.js';

const dimName = (k) => t(`ranking.dim.${k}`);
const factName = (k) => t(`ranking.fact_name.${k}`);
const score1 = (v) => (v === null || v === undefined || !Number.isFinite(v) ? '—' : num(v, 1));

// A fact's value as read: shares as percentages, counts and days as whole numbers.
const SHARES = ['pump_efficiency', 'por_share', 'availability', 'quality_compliance', 'set_efficiency', 'inspections_done', 'order_sla', 'completeness', 'lifecycle_risk'];
function factValue(fact, v) {
  if (!Number.isFinite(v)) return '—';
  if (SHARES.includes(fact)) return `${num(v * 100, 1)} %`;
  if (fact === 'leak_index') return `${num(v * 100, 2)} %`;
  return num(v, 0);
}

export class RankingPage {
  constructor(root, { toast = () => {} } = {}) {
    this.root = root;
    this.toast = toast;
    this.seq = 0;
    this.zone = '';
    this.data = null;
  }

  close() {
    this.seq += 1;
  }

  async open(room) {
    const seq = ++this.seq;
    this.root.innerHTML = `<div class="ranking">
      <h2>${esc(t('ranking.title'))}</h2>
      <p class="muted">${esc(t('ranking.note'))}</p>
      <div id="rk-explain" class="rk-explain" hidden></div>
      <div id="rk-body"><p class="muted">${esc(t('ranking.loading'))}</p></div>
    </div>`;
    try {
      this.data = await api.get('/api/v1/analysis/scores');
      if (seq !== this.seq) return;
      this.render();
      if (room) this.explain(room);
    } catch (e) {
      if (seq !== this.seq) return;
      this.root.querySelector('#rk-body').innerHTML = `<p class="status offline">${esc(apiError(e))}</p>`;
    }
  }

  render() {
    const d = this.data;
    const body = this.root.querySelector('#rk-body');
    if (!d.rooms.length) {
      body.innerHTML = `<p class="empty">${esc(t('ranking.no_rooms'))}</p>`;
      return;
    }
    const zoneIds = [...new Set(d.rooms.map((r) => r.zone))].sort();
    const zoneName = Object.fromEntries(d.zones.map((z) => [z.zone, z.name || z.zone]));
    const rooms = d.rooms.filter((r) => !this.zone || r.zone === this.zone);
    const rows = rooms
      .map((r) => `<tr class="rk-room" data-room="${esc(r.room)}" tabindex="0">
        <td class="n">${r.fleet_rank ? `${r.fleet_rank}/${r.fleet_of}` : '—'}</td>
        <td translate="no">${esc(r.name || r.room)} <span class="muted">${esc(r.room)}</span></td>
        <td translate="no">${esc(zoneName[r.zone] || r.zone)}</td>
        <td class="n rk-score"><b>${r.score === null ? `<span class="muted">${esc(t('ranking.unscored'))}</span>` : esc(score1(r.score))}</b></td>
        <td class="n">${r.zone_rank ? `${r.zone_rank}/${r.zone_of}` : '—'}</td>
        <td>${r.weakest ? esc(dimName(r.weakest)) : '—'}</td></tr>`)
      .join('');
    const zones = d.zones
      .map((z) => `<tr><td translate="no">${esc(z.name || z.zone)}</td><td class="n">${esc(score1(z.score))}</td><td><b>${esc(dimName(z.weakest))}</b></td><td class="n">${esc(score1(z.mean))}</td><td class="n">${z.rooms}</td></tr>`)
      .join('');
    body.innerHTML = `
      <p class="muted" translate="no">${esc(t('ranking.window', { from: d.window.from, to: d.window.to }))}</p>
      <h3>${esc(t('ranking.zones_title'))}</h3>
      <div class="table-scroll"><table class="grid" id="rk-zones"><thead><tr><th>${esc(t('ranking.zone'))}</th><th class="n">${esc(t('ranking.zone_score'))}</th><th>${esc(t('ranking.weakest'))}</th><th class="n">${esc(t('ranking.dim_mean'))}</th><th class="n">${esc(t('ranking.rooms_n'))}</th></tr></thead><tbody>${zones}</tbody></table></div>
      <div class="rk-filter"><label>${esc(t('ranking.filter_zone'))}
        <select id="rk-zone"><option value="">${esc(t('ranking.all_zones'))}</option>${zoneIds.map((z) => `<option value="${esc(z)}"${z === this.zone ? ' selected' : ''}>${esc(zoneName[z] || z)}</option>`).join('')}</select></label></div>
      <div class="table-scroll"><table class="grid" id="rk-rooms"><thead><tr><th class="n">${esc(t('ranking.fleet_rank'))}</th><th>${esc(t('ranking.room'))}</th><th>${esc(t('ranking.zone'))}</th><th class="n">${esc(t('ranking.score'))}</th><th class="n">${esc(t('ranking.zone_rank'))}</th><th>${esc(t('ranking.weakest'))}</th></tr></thead><tbody>${rows}</tbody></table></div>`;
    body.querySelector('#rk-zone').addEventListener('change', (e) => {
      this.zone = e.target.value;
      this.render();
    });
    for (const tr of body.querySelectorAll('.rk-room')) {
      tr.addEventListener('click', () => this.explain(tr.dataset.room));
      tr.addEventListener('keydown', (e) => e.key === 'Enter' && this.explain(tr.dataset.room));
    }
  }

  async explain(room) {
    const seq = this.seq;
    const box = this.root.querySelector('#rk-explain');
    let s;
    try {
      s = await api.get(`/api/v1/analysis/score?room=${encodeURIComponent(room)}`);
    } catch (e) {
      this.toast(apiError(e));
      return;
    }
    if (seq !== this.seq) return;
    const sc = s.score;
    const shown = s.shown.dimensions;
    const dims = sc.dimensions
      .map((d, i) => {
        const head = `<tr class="rk-dim"><th>${esc(dimName(d.key))}</th><td></td><td class="n">${esc(score1(d.score))}</td>
          <td class="n">${d.score === null ? '' : `${esc(num(d.share * 100, 1))} %`}</td>
          <td class="n rk-contrib" data-dim="${esc(d.key)}">${d.score === null ? `<span class="muted">${esc(t('ranking.left_out'))}</span>` : esc(num(shown[i].contribution, 1))}</td></tr>`;
        const facts = d.facts
          .map((f, j) => `<tr class="rk-fact"><td>${esc(factName(f.fact))}</td><td class="n" translate="no">${esc(factValue(f.fact, f.value))}</td>
            <td class="n">${esc(num(f.points, 1))}</td><td class="n">${esc(num(f.share * d.share * 100, 1))} %</td>
            <td class="n rk-fact-contrib">${esc(num(shown[i].facts[j], 1))}</td></tr>`)
          .join('');
        const missing = d.missing.map((m) => `<tr class="rk-missing"><td>${esc(factName(m))}</td><td colspan="4" class="muted">${esc(t('ranking.left_out'))}</td></tr>`).join('');
        return head + facts + missing;
      })
      .join('');
    const missingText = sc.missing.length ? t('ranking.missing', { list: sc.missing.map(factName).join('、') }) : t('ranking.no_missing');
    const trend = s.trend.map((p) => ({ date: p.date, value: p.score ?? null }));
    box.hidden = false;
    box.innerHTML = `<div class="rk-explain-head"><h3>${esc(t('ranking.explain_title', { room: s.name || s.room }))}</h3>
        <button class="ghost" id="rk-close">${esc(t('ranking.close'))}</button></div>
      <div class="table-scroll"><table class="grid" id="rk-explain-rows"><thead><tr><th>${esc(t('ranking.fact'))}</th><th class="n">${esc(t('ranking.value'))}</th><th class="n">${esc(t('ranking.points'))}</th><th class="n">${esc(t('ranking.share'))}</th><th class="n">${esc(t('ranking.contribution'))}</th></tr></thead>
      <tbody>${dims}</tbody>
      <tfoot><tr><th colspan="4">${esc(t('ranking.total'))}</th><td class="n"><b id="rk-total">${esc(score1(s.shown.score))}</b></td></tr></tfoot></table></div>
      <p class="muted">${esc(missingText)}</p>
      <h3>${esc(t('ranking.trend'))}</h3>
      <div class="rk-trend">${sparkSvg(trend, 300, 48, 'ck-spark rk-spark')}</div>`;
    box.querySelector('#rk-close').addEventListener('click', () => (box.hidden = true));
    box.scrollIntoView({ block: 'nearest' });
  }
}
