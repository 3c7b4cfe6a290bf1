// A team's dispatch board (issue 20 item 7, #/orders/board?team=siming): the team's queue (its
// open orders nobody holds) and each member's open orders, the members on call now marked (the
// roster's), overdue orders highlighted. A dispatcher (operator or above) gives an order not yet
// accepted to a member in one choice (POST /api/v1/workorders/{id}/dispatch); the board is read
// again after each. Columns side by side on a desk, stacked on a phone.

import * as api from './api.js';
import { esc, zoneLabel } from './format.js';
import { t, has, lang, apiError } from './i18n.js';

const RANK = { viewer: 0, operator: 1, 'rule-author': 2, admin: 3 };
const stateText = (s) => (has(`orders.states.${s}`) ? t(`orders.states.${s}`) : s);
const title = (o) => (lang() === 'zh-CN' ? o.title_zh : o.title) || o.title;

export class BoardPage {
  constructor(root, { role = () => 'viewer', toast = () => {} } = {}) {
    this.root = root;
    this.role = role;
    this.toast = toast;
    this.seq = 0;
  }

  close() {
    this.seq += 1;
  }

  async open(params) {
    const seq = ++this.seq;
    let teams;
    try {
      // Read each time: who is on call changes with the hour.
      teams = new Map((await api.get('/api/v1/teams')).teams.map((tm) => [tm.id, tm]));
    } catch (e) {
      if (seq === this.seq) this.root.innerHTML = `<p class="empty">${esc(apiError(e))}</p>`;
      return;
    }
    if (seq !== this.seq) return;
    const team = teams.get(params.get('team')) || [...teams.values()][0];
    if (!team) {
      this.root.innerHTML = `<div class="orders"><a class="back" href="#/orders">${esc(t('orders.back'))}</a><p class="empty">${esc(t('board.no_teams'))}</p></div>`;
      return;
    }
    this.team = team;
    const zh = lang() === 'zh-CN';
    const teamName = (tm) => (zh ? tm.name : tm.name_en || tm.name);
    this.root.innerHTML = `<div class="orders board-page">
      <div class="orders-bar">
        <a class="back" href="#/orders">${esc(t('orders.back'))}</a>
        <h2>${esc(t('board.title'))}</h2>
        <select id="b-team" aria-label="${esc(t('board.team'))}">${[...teams.values()].map((tm) => `<option value="${esc(tm.id)}"${tm.id === team.id ? ' selected' : ''}>${esc(teamName(tm))}</option>`).join('')}</select>
      </div>
      <div class="board" id="b-board"><p class="empty">${esc(t('orders.loading'))}</p></div>
    </div>`;
    this.root.querySelector('#b-team').addEventListener('change', (e) => (location.hash = `#/orders/board?team=${encodeURIComponent(e.target.value)}`));
    this.load(seq);
  }

  async load(seq) {
    const team = this.team;
    let res;
    try {
      res = await api.get(`/api/v1/workorders?team=${encodeURIComponent(team.id)}&open=true&limit=1000`);
    } catch (e) {
      if (seq === this.seq) this.root.querySelector('#b-board').innerHTML = `<p class="empty">${esc(apiError(e))}</p>`;
      return;
    }
    if (seq !== this.seq) return;
    const dispatcher = (RANK[this.role()] ?? 0) >= RANK.operator;
    const members = (team.members || []).map((m) => m.user);
    const onCall = new Set(team.on_call_now || []);
    const orders = res.orders.map((o, i) => ({ ...o, overdue: res.overdue[i] }));
    const card = (o) => {
      const movable = dispatcher && ['created', 'dispatched'].includes(o.state);
      const choices = members
        .filter((m) => m !== o.assignee)
        .map((m) => `<option value="${esc(m)}" translate="no">${esc(m)}${onCall.has(m) ? ` (${esc(t('board.on_call'))})` : ''}</option>`)
        .join('');
      return `<div class="b-card order-card sev-${esc(o.priority)}${o.overdue ? ' overdue' : ''}" data-order="${esc(o.id)}">
        <span class="o-head"><a href="#/orders/${esc(o.id)}" translate="no">${esc(o.id)}</a> <span class="sev">${esc(o.priority)}</span> <span class="o-state st-${esc(o.state)}">${esc(stateText(o.state))}</span>${o.overdue ? ` <span class="o-overdue">${esc(t('orders.overdue'))}</span>` : ''}</span>
        <span class="o-title">${esc(title(o))}</span>
        <span class="o-meta"><span translate="no">${esc(o.room || '')}</span> · ${esc(zoneLabel(o.zone || ''))}</span>
        ${movable && choices ? `<select class="b-assign" data-order="${esc(o.id)}" aria-label="${esc(t('board.assign'))}"><option value="">${esc(t('board.assign'))}</option>${choices}</select>` : ''}
      </div>`;
    };
    const column = (key, heading, list, extra = '') => `<section class="b-col" data-column="${esc(key)}">
        <h3>${heading}${extra} <span class="b-count">${list.length}</span></h3>
        ${list.length ? list.map(card).join('') : `<p class="empty">${esc(t('board.empty'))}</p>`}
      </section>`;
    const queue = orders.filter((o) => !o.assignee);
    const others = orders.filter((o) => o.assignee && !members.includes(o.assignee));
    this.root.querySelector('#b-board').innerHTML = [
      column('', esc(t('board.queue')), queue),
      ...members.map((m) => column(m, `<span translate="no">${esc(m)}</span>`, orders.filter((o) => o.assignee === m), onCall.has(m) ? ` <span class="b-oncall">${esc(t('board.on_call'))}</span>` : '')),
      ...(others.length ? [column('*', esc(t('board.others')), others)] : []),
    ].join('');
    for (const sel of this.root.querySelectorAll('.b-assign')) {
      sel.addEventListener('change', () => this.dispatch(sel.dataset.order, sel.value, seq));
    }
  }

  async dispatch(id, assignee, seq) {
    if (!assignee) return;
    try {
      await api.post(`/api/v1/workorders/${encodeURIComponent(id)}/dispatch`, { team: this.team.id, assignee });
      this.toast(t('board.dispatched', { id }), true);
    } catch (e) {
      this.toast(apiError(e));
    }
    if (seq === this.seq) this.load(seq);
  }
}
