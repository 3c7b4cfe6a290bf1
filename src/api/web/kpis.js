// Work-order KPIs on screen (issue 20 item 8, #/orders/kpis): per team, zone, person or
// priority over today, the last 7 or 30 days or a chosen span — mean time to acknowledge,
// respond and resolve, SLA compliance, first-time fix, close rate, backlog age and repeat
// failures within 30 days, as the node computes them (GET /api/v1/workorder-kpis). The choice
// lives in the URL, so a view can be linked. A table on a desk; on a phone it scrolls inside
// itself.

import * as api from './api.js';
import { esc, zoneLabel } from './format.js';
import { t, lang, apiError, num } from './i18n.js';

const PERIODS = ['today', '7d', '30d', 'custom'];
const GROUPS = ['team', 'zone', 'assignee', 'priority', 'all'];
const DAY = 86_400_000;

// `YYYY-MM-DD` of `ms` in the browser's time zone, and back (the day's start).
const dayText = (ms) => {
  const d = new Date(ms);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
};
const dayStart = (text) => {
  const [y, m, d] = text.split('-').map(Number);
  return new Date(y, m - 1, d).getTime();
};

// The period's bounds in ms for a choice made at `now`.
export function periodBounds(period, from, to, now = Date.now()) {
  if (period === 'today') return [dayStart(dayText(now)), now];
  if (period === '7d') return [now - 7 * DAY, now];
  if (period === 'custom' && from && to) return [dayStart(from), Math.min(now, dayStart(to) + DAY - 1)];
  return [now - 30 * DAY, now];
}

// A span of seconds as the biggest whole units that matter (2 h 5 min, 40 min, 3 d 4 h).
export function span(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return '—';
  const m = Math.round(seconds / 60);
  if (m < 60) return t('kpis.minutes', { m });
  const h = Math.floor(m / 60);
  if (h < 48) return t('kpis.hours', { h, m: m % 60 });
  return t('kpis.days', { d: Math.floor(h / 24), h: h % 24 });
}

const percent = (share) => (typeof share === 'number' ? `${num(share * 100, 1)} %` : '—');

export class KpisPage {
  constructor(root, { teams = async () => new Map() } = {}) {
    this.root = root;
    this.teams = teams;
    this.seq = 0;
  }

  close() {
    this.seq += 1;
  }

  async open(params) {
    const seq = ++this.seq;
    const period = PERIODS.includes(params.get('period')) ? params.get('period') : '7d';
    const by = GROUPS.includes(params.get('by')) ? params.get('by') : 'team';
    const now = Date.now();
    const fromText = params.get('from') || dayText(now - 7 * DAY);
    const toText = params.get('to') || dayText(now);
    const option = (v, label, sel) => `<option value="${esc(v)}"${v === sel ? ' selected' : ''}>${esc(label)}</option>`;
    this.root.innerHTML = `<div class="orders kpis-page">
      <div class="orders-bar">
        <a class="back" href="#/orders">${esc(t('orders.back'))}</a>
        <h2>${esc(t('kpis.title'))}</h2>
      </div>
      <div class="orders-bar">
        <label>${esc(t('kpis.period'))} <select id="k-period">${PERIODS.map((p) => option(p, t(`kpis.period_${p}`), period)).join('')}</select></label>
        <span class="k-custom"${period === 'custom' ? '' : ' hidden'}>
          <input type="date" id="k-from" value="${esc(fromText)}" aria-label="${esc(t('kpis.from'))}">
          <input type="date" id="k-to" value="${esc(toText)}" aria-label="${esc(t('kpis.to'))}">
        </span>
        <label>${esc(t('kpis.by'))} <select id="k-by">${GROUPS.map((g) => option(g, t(`kpis.by_${g}`), by)).join('')}</select></label>
      </div>
      <div class="table-scroll"><table class="grid kpi-table" id="k-table"><tbody><tr><td class="empty">${esc(t('orders.loading'))}</td></tr></tbody></table></div>
      <p class="muted k-note">${esc(t('kpis.note'))}</p>
    </div>`;
    const go = (change) => {
      const next = new URLSearchParams({ period, by, ...(period === 'custom' ? { from: fromText, to: toText } : {}), ...change });
      if (next.get('period') !== 'custom') {
        next.delete('from');
        next.delete('to');
      } else {
        if (!next.get('from')) next.set('from', fromText);
        if (!next.get('to')) next.set('to', toText);
      }
      location.hash = `#/orders/kpis?${next}`;
    };
    this.root.querySelector('#k-period').addEventListener('change', (e) => go({ period: e.target.value }));
    this.root.querySelector('#k-by').addEventListener('change', (e) => go({ by: e.target.value }));
    this.root.querySelector('#k-from').addEventListener('change', (e) => go({ from: e.target.value }));
    this.root.querySelector('#k-to').addEventListener('change', (e) => go({ to: e.target.value }));
    const [from, to] = periodBounds(period, fromText, toText, now);
    let res;
    let teams;
    try {
      [res, teams] = await Promise.all([api.get(`/api/v1/workorder-kpis?from=${from}&to=${to}&by=${by}`), this.teams()]);
    } catch (e) {
      if (seq === this.seq) this.root.querySelector('#k-table').innerHTML = `<tbody><tr><td class="empty">${esc(apiError(e))}</td></tr></tbody>`;
      return;
    }
    if (seq !== this.seq) return;
    const zh = lang() === 'zh-CN';
    const groupName = (g) => {
      if (by === 'all') return esc(t('kpis.everything'));
      if (g === '') return esc(t('kpis.none'));
      if (by === 'team') {
        const tm = teams && teams.get(g);
        return tm ? esc(zh ? tm.name : tm.name_en || tm.name) : `<span translate="no">${esc(g)}</span>`;
      }
      if (by === 'zone') return esc(zoneLabel(g));
      return `<span translate="no">${esc(g)}</span>`;
    };
    const cols = ['group', 'created', 'closed', 'open', 'acknowledge', 'response', 'resolution', 'sla', 'first_time_fix', 'close_rate', 'backlog_age', 'oldest_open', 'repeats'];
    const rows = res.kpis || [];
    const body = rows.length
      ? rows
          .map((k) => `<tr data-group="${esc(k.group)}">
            <th scope="row">${groupName(k.group)}</th>
            <td>${k.created}</td><td>${k.closed}</td><td>${k.open}</td>
            <td>${esc(span(k.mean_acknowledge_s))}</td><td>${esc(span(k.mean_response_s))}</td><td>${esc(span(k.mean_resolution_s))}</td>
            <td class="${typeof k.sla_compliance === 'number' && k.sla_compliance < 0.95 ? 'k-low' : ''}">${esc(percent(k.sla_compliance))}</td>
            <td>${esc(percent(k.first_time_fix))}</td><td>${esc(percent(k.close_rate))}</td>
            <td>${esc(span(k.backlog_age_s))}</td><td>${esc(span(k.oldest_open_s))}</td><td>${k.repeat_failures}</td>
          </tr>`)
          .join('')
      : `<tr><td class="empty" colspan="${cols.length}">${esc(t('kpis.no_orders'))}</td></tr>`;
    this.root.querySelector('#k-table').innerHTML = `<thead><tr>${cols.map((c) => `<th>${esc(t(`kpis.col_${c}`))}</th>`).join('')}</tr></thead><tbody>${body}</tbody>`;
  }
}
