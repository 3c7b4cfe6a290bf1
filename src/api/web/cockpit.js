// The cockpit (驾驶舱, issue 22 item 6, #/cockpit): the user's board of indicator tiles — the
// fleet's figure over the period (a day or the month to date) with its daily sparkline —, a
// click on a tile drilling down fleet → zones → rooms → devices (worst first; the breadcrumb
// climbs back), the tiles reordered, added (subscribed) and removed, the board kept as the
// user's own (PUT /api/v1/cockpit/board), and the daily and monthly .xlsx reports.
// Data from GET /api/v1/cockpit/{catalogue,board,drill}; sparklines drawn here as SVG.

import * as api from './api.js';
import { esc } from './format.js';
import { t, num, apiError } from './i18n.js';

// An indicator's value as shown: shares as percentages, `—` for no figure (never NaN).
export function fmtValue(ind, v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  if (ind.percent) return `${num(v * 100, ind.decimals)} %`;
  return `${num(v, ind.decimals)}${ind.unit ? ` ${ind.unit}` : ''}`;
}

export const indName = (id) => t(`cockpit.ind.${id}`);

// A sparkline of `points` ([{date, value}]) in a w×h box; days without a figure break it.
export function sparkSvg(points, w = 160, h = 36, cls = 'ck-spark') {
  const vals = points.map((p) => p.value).filter((v) => v !== null && Number.isFinite(v));
  if (vals.length < 2) return '';
  const lo = Math.min(...vals);
  const hi = Math.max(...vals);
  const span = hi - lo || 1;
  const step = points.length > 1 ? w / (points.length - 1) : w;
  const segs = [];
  let cur = [];
  points.forEach((p, i) => {
    if (p.value === null || !Number.isFinite(p.value)) {
      if (cur.length) segs.push(cur);
      cur = [];
      return;
    }
    cur.push(`${(i * step).toFixed(1)},${(h - 2 - ((p.value - lo) / span) * (h - 4)).toFixed(1)}`);
  });
  if (cur.length) segs.push(cur);
  const lines = segs
    .map((s) => (s.length === 1 ? `<circle cx="${s[0].split(',')[0]}" cy="${s[0].split(',')[1]}" r="1.5"/>` : `<polyline points="${s.join(' ')}" fill="none"/>`))
    .join('');
  return `<svg class="${cls}" viewBox="0 0 ${w} ${h}" preserveAspectRatio="none" aria-hidden="true">${lines}</svg>`;
}

export class CockpitPage {
  constructor(root, { toast = () => {} } = {}) {
    this.root = root;
    this.toast = toast;
    this.seq = 0;
    this.period = 'day';
    this.drillAt = null; // { indicator, zone, room }
    this.catalogue = null;
    this.board = null;
  }

  close() {
    this.seq += 1;
  }

  // Starts the catalogue's and the board's requests at once (the console calls this while it
  // is still loading the fleet's inventory, when it starts on #/cockpit).
  prefetch() {
    const p = Promise.all([api.get('/api/v1/cockpit/catalogue'), api.get(`/api/v1/cockpit/board?period=${this.period}`)]);
    p.catch(() => {}); // a failure is `open`'s to show
    this.pending = { period: this.period, p };
  }

  async open() {
    const seq = ++this.seq;
    this.root.innerHTML = `<div class="cockpit">
      <h2>${esc(t('cockpit.title'))}</h2>
      <p class="muted">${esc(t('cockpit.note'))}</p>
      <div class="ck-bar">
        <label>${esc(t('cockpit.period'))}
          <select id="ck-period">
            <option value="day"${this.period === 'day' ? ' selected' : ''}>${esc(t('cockpit.period_day'))}</option>
            <option value="month"${this.period === 'month' ? ' selected' : ''}>${esc(t('cockpit.period_month'))}</option>
          </select></label>
        <span id="ck-range" class="muted"></span>
        <select id="ck-add" aria-label="${esc(t('cockpit.add'))}"></select>
        <button id="ck-reset" class="ghost">${esc(t('cockpit.reset'))}</button>
        <button id="ck-report-day" class="ghost">${esc(t('cockpit.report_day'))}</button>
        <button id="ck-report-month" class="ghost">${esc(t('cockpit.report_month'))}</button>
      </div>
      <div id="ck-tiles" class="ck-tiles"><p class="muted">${esc(t('cockpit.loading'))}</p></div>
      <div id="ck-drill" class="ck-drill" hidden></div>
    </div>`;
    this.root.querySelector('#ck-period').addEventListener('change', (e) => {
      this.period = e.target.value;
      this.load(this.seq);
      if (this.drillAt) this.drill(this.drillAt);
    });
    this.root.querySelector('#ck-reset').addEventListener('click', () => this.save(null));
    this.root.querySelector('#ck-report-day').addEventListener('click', () => this.report('day'));
    this.root.querySelector('#ck-report-month').addEventListener('click', () => this.report('month'));
    this.root.querySelector('#ck-add').addEventListener('change', (e) => {
      const id = e.target.value;
      if (id && this.board) this.save([...this.board.tiles, id]);
    });
    try {
      const pre = this.pending && this.pending.period === this.period ? this.pending.p : null;
      this.pending = null;
      const [catalogue, answer] = await (pre || Promise.all([api.get('/api/v1/cockpit/catalogue'), api.get(`/api/v1/cockpit/board?period=${this.period}`)]));
      if (seq !== this.seq) return;
      this.catalogue = catalogue;
      this.board = answer.board;
      this.render(answer);
      if (this.drillAt) this.drill(this.drillAt);
    } catch (e) {
      if (seq !== this.seq) return;
      this.root.querySelector('#ck-tiles').innerHTML = `<p class="status offline">${esc(apiError(e))}</p>`;
    }
  }

  async load(seq) {
    const answer = await api.get(`/api/v1/cockpit/board?period=${this.period}`);
    if (seq !== this.seq) return;
    this.board = answer.board;
    this.render(answer);
  }

  render(answer) {
    const range = this.root.querySelector('#ck-range');
    range.textContent = `${answer.from === answer.to ? answer.to : t('cockpit.range', { from: answer.from, to: answer.to })} · ${t('cockpit.rooms_n', { n: answer.rooms })} · ${answer.own ? t('cockpit.own') : t('cockpit.default_board', { kind: t(`cockpit.kind_${answer.board.kind}`) })}`;
    const tiles = this.root.querySelector('#ck-tiles');
    const n = answer.tiles.length;
    tiles.innerHTML = answer.tiles
      .map((tile, i) => {
        const ind = tile.indicator;
        const spark = tile.spark.length ? sparkSvg(tile.spark) : '';
        return `<div class="ck-tile" data-ind="${esc(ind.id)}" tabindex="0" role="button">
          <div class="ck-name">${esc(indName(ind.id))}</div>
          <div class="ck-value" translate="no">${esc(fmtValue(ind, tile.value))}</div>
          <div class="ck-sub">${spark || `<span class="muted">${esc(ind.ledger ? t('cockpit.no_value') : t('cockpit.live_only'))}</span>`}</div>
          <div class="ck-dir muted">${esc(ind.higher_better ? t('cockpit.better_up') : t('cockpit.better_down'))}</div>
          <div class="ck-tools">
            <button class="ghost ck-left" data-i="${i}" ${i === 0 ? 'disabled' : ''} title="${esc(t('cockpit.left'))}" aria-label="${esc(t('cockpit.left'))}">◀</button>
            <button class="ghost ck-right" data-i="${i}" ${i === n - 1 ? 'disabled' : ''} title="${esc(t('cockpit.right'))}" aria-label="${esc(t('cockpit.right'))}">▶</button>
            <button class="ghost ck-remove" data-i="${i}" ${n === 1 ? 'disabled' : ''} title="${esc(t('cockpit.remove'))}" aria-label="${esc(t('cockpit.remove'))}">✕</button>
          </div>
        </div>`;
      })
      .join('');
    for (const el of tiles.querySelectorAll('.ck-tile')) {
      const go = () => this.drill({ indicator: el.dataset.ind });
      el.addEventListener('click', (e) => {
        if (!e.target.closest('button')) go();
      });
      el.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' && !e.target.closest('button')) go();
      });
    }
    const move = (i, by) => {
      const list = [...this.board.tiles];
      const [x] = list.splice(i, 1);
      list.splice(i + by, 0, x);
      this.save(list);
    };
    for (const b of tiles.querySelectorAll('.ck-left')) b.addEventListener('click', () => move(Number(b.dataset.i), -1));
    for (const b of tiles.querySelectorAll('.ck-right')) b.addEventListener('click', () => move(Number(b.dataset.i), 1));
    for (const b of tiles.querySelectorAll('.ck-remove')) {
      b.addEventListener('click', () => this.save(this.board.tiles.filter((_, k) => k !== Number(b.dataset.i))));
    }
    // The board's own moment for the performance figures (tests/it/ui_cockpit.rs).
    requestAnimationFrame(() => performance.mark('cistern:cockpit-drawn', { detail: { rooms: answer.rooms, tiles: n } }));
    const add = this.root.querySelector('#ck-add');
    const free = (this.catalogue ? this.catalogue.indicators : []).filter((i) => !this.board.tiles.includes(i.id));
    add.innerHTML = `<option value="">${esc(t('cockpit.add'))}</option>${free.map((i) => `<option value="${esc(i.id)}">${esc(indName(i.id))}</option>`).join('')}`;
    add.disabled = free.length === 0;
  }

  // Keeps `tiles` as the user's board (`null`: the role's default again).
  async save(tiles) {
    const kind = this.board ? this.board.kind : (this.catalogue && this.catalogue.default) || 'director';
    const list = tiles || (this.catalogue.boards.find((b) => b.kind === (this.catalogue.default || kind)) || { tiles: [] }).tiles;
    try {
      await api.put('/api/v1/cockpit/board', { kind: tiles ? kind : this.catalogue.default, tiles: list });
      this.toast(t('cockpit.saved'), true);
      await this.load(this.seq);
    } catch (e) {
      this.toast(apiError(e));
    }
  }

  async report(period) {
    try {
      await api.download(`/api/v1/cockpit/report.xlsx?period=${period}`, `cockpit-${period}.xlsx`);
    } catch (e) {
      this.toast(apiError(e));
    }
  }

  // One level of the drill-down: the fleet's zones, a zone's rooms, a room's devices.
  async drill(at) {
    this.drillAt = at;
    const seq = this.seq;
    const box = this.root.querySelector('#ck-drill');
    if (!box) return;
    box.hidden = false;
    const q = new URLSearchParams({ indicator: at.indicator, period: this.period });
    if (at.room) q.set('room', at.room);
    else if (at.zone) q.set('zone', at.zone);
    let answer;
    try {
      answer = await api.get(`/api/v1/cockpit/drill?${q}`);
    } catch (e) {
      if (seq === this.seq) box.innerHTML = `<p class="status offline">${esc(apiError(e))}</p>`;
      return;
    }
    if (seq !== this.seq) return;
    const ind = answer.indicator;
    const d = answer.drill;
    const crumbs = [`<a href="#/cockpit" class="ck-crumb" data-level="fleet">${esc(t('cockpit.fleet'))}</a>`];
    if (answer.zone) crumbs.push(`<a href="#/cockpit" class="ck-crumb" data-level="zone" data-zone="${esc(answer.zone.id)}">${esc(answer.zone.name || answer.zone.id)}</a>`);
    if (at.room) crumbs.push(`<span translate="no">${esc(answer.room_name || at.room)}</span>`);
    const head = d.scope.level === 'fleet' ? t('cockpit.zone') : d.scope.level === 'zone' ? t('cockpit.room') : t('cockpit.device');
    const rows = d.rows
      .map((r) => `<tr class="${r.drill ? 'ck-go' : ''}" data-level="${esc(r.scope.level)}" data-key="${esc(r.key)}">
          <td translate="no">${esc(r.name)}${r.name !== r.key ? ` <span class="muted">${esc(r.key)}</span>` : ''}</td>
          <td class="n" translate="no">${esc(fmtValue(ind, r.value))}</td>
          <td class="n" translate="no">${esc(num(r.weight, 0))}</td></tr>`)
      .join('');
    box.innerHTML = `<div class="ck-drill-head">
        <h3>${esc(t('cockpit.drill_title', { ind: indName(ind.id) }))}: <span translate="no">${esc(fmtValue(ind, d.value))}</span></h3>
        <button class="ghost" id="ck-drill-close">${esc(t('cockpit.close'))}</button>
      </div>
      <nav class="ck-crumbs">${crumbs.join(' › ')}</nav>
      <p class="muted">${esc(t('cockpit.drill_hint'))}</p>
      ${rows ? `<div class="table-scroll"><table class="grid" id="ck-drill-rows"><thead><tr><th>${esc(head)}</th><th class="n">${esc(t('cockpit.value'))}</th><th class="n">${esc(t('cockpit.weight'))}</th></tr></thead><tbody>${rows}</tbody></table></div>` : `<p class="empty">${esc(t('cockpit.no_rows'))}</p>`}`;
    box.querySelector('#ck-drill-close').addEventListener('click', () => {
      this.drillAt = null;
      box.hidden = true;
    });
    for (const a of box.querySelectorAll('.ck-crumb')) {
      a.addEventListener('click', (e) => {
        e.preventDefault();
        this.drill(a.dataset.level === 'zone' ? { indicator: at.indicator, zone: a.dataset.zone } : { indicator: at.indicator });
      });
    }
    for (const tr of box.querySelectorAll('tr.ck-go')) {
      tr.addEventListener('click', () => {
        if (tr.dataset.level === 'zone') this.drill({ indicator: at.indicator, zone: tr.dataset.key });
        else if (tr.dataset.level === 'room') this.drill({ indicator: at.indicator, zone: at.zone, room: tr.dataset.key });
      });
    }
    box.scrollIntoView({ block: 'nearest' });
  }
}
