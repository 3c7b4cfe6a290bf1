// The alarm board as the UI holds it (fed by the `alarms` topic: snapshot, then upserts and
// removals), and the tables that show it: the alarm list, the room page's alarms and the map's
// short list. Tables are keyed by alarm id; a frame re-renders only the rows whose alarm
// changed and moves rows only when the order changed.

import { esc, stamp, stateLabel, unacked, zoneLabel } from './format.js';

const RANK = { P1: 1, P2: 2, P3: 3, P4: 4 };

// Most severe first, then newest (the server's order).
export function byPriority(a, b) {
  return (RANK[a.severity] || 9) - (RANK[b.severity] || 9) || (b.raised_at || 0) - (a.raised_at || 0) || (a.id < b.id ? -1 : 1);
}

export class AlarmBoard {
  constructor() {
    this.alarms = new Map();
    this.listeners = new Set();
    this.version = 0;
  }

  // A `snapshot` or `delta` of the `alarms` topic.
  apply(msg) {
    if (msg.type === 'snapshot') {
      this.alarms = new Map((msg.data.alarms || []).map((a) => [a.id, a]));
    } else if (msg.type === 'delta') {
      const d = msg.data;
      if (d.kind === 'upsert') this.alarms.set(d.alarm.id, d.alarm);
      else if (d.kind === 'remove') this.alarms.delete(d.alarm_id);
    } else {
      return;
    }
    this.version += 1;
    for (const f of this.listeners) f();
  }

  onChange(f) {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  get(id) {
    return this.alarms.get(id);
  }

  list(filter = () => true) {
    return [...this.alarms.values()].filter(filter).sort(byPriority);
  }
}

function actions(a) {
  const id = esc(a.id);
  const out = [];
  if (unacked(a.state)) out.push(`<button class="ack" data-action="ack" data-alarm="${id}">Ack</button>`);
  if (a.state === 'shelved') out.push(`<button data-action="unshelve" data-alarm="${id}">Unshelve</button>`);
  else if (!a.id.startsWith('zone:') && a.state !== 'out_of_service') out.push(`<button data-action="shelve" data-alarm="${id}">Shelve…</button>`);
  if (a.awaiting_reset && !a.active) out.push(`<button data-action="reset" data-alarm="${id}">Reset</button>`);
  return out.join('');
}

function rowHtml(a, { room = true } = {}) {
  const un = unacked(a.state) ? ' unack' : '';
  return `<td>${esc(stamp(a.raised_at))}</td>` +
    `<td><span class="sev ${esc(a.severity)}${un}">${esc(a.severity)}</span></td>` +
    `<td class="state ${esc(a.state)}">${esc(stateLabel(a.state))}${a.active ? '' : ' · clear'}${a.escalation_step ? ` · esc ${a.escalation_step}` : ''}</td>` +
    (room ? `<td><a class="roomlink" href="#/room/${esc(a.room)}">${esc(a.room)}</a></td><td>${esc(zoneLabel(a.zone))}</td>` : '') +
    `<td>${esc(a.rule)}</td>` +
    `<td class="msg">${esc(a.message)}</td>` +
    `<td class="actions">${actions(a)}</td>`;
}

// A keyed table body of alarms.
export class AlarmTable {
  constructor(tbody, { room = true, empty = 'No alarms.' } = {}) {
    this.tbody = tbody;
    this.room = room;
    this.empty = empty;
    this.rows = new Map(); // id -> {tr, sig}
  }

  render(alarms) {
    const seen = new Set();
    const order = [];
    for (const a of alarms) {
      seen.add(a.id);
      const sig = `${a.state}|${a.active}|${a.updated}|${a.escalation_step}|${a.awaiting_reset}`;
      let row = this.rows.get(a.id);
      if (!row) {
        const tr = document.createElement('tr');
        tr.dataset.alarm = a.id;
        row = { tr, sig: null };
        this.rows.set(a.id, row);
      }
      if (row.sig !== sig) {
        row.tr.innerHTML = rowHtml(a, { room: this.room });
        row.tr.className = `${a.active ? '' : 'inactive'} ${unacked(a.state) ? 'unacked' : ''}`.trim();
        row.sig = sig;
      }
      order.push(row.tr);
    }
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        this.rows.delete(id);
      }
    }
    const kids = this.tbody.children;
    let same = kids.length === order.length;
    for (let i = 0; same && i < order.length; i++) same = kids[i] === order[i];
    if (!same) {
      if (order.length) this.tbody.replaceChildren(...order);
      else this.tbody.innerHTML = `<tr class="placeholder"><td colspan="8" class="empty">${esc(this.empty)}</td></tr>`;
    }
  }
}

// Clicks on Ack / Shelve / Unshelve / Reset anywhere in `root`.
export function wireActions(root, live, { onError } = {}) {
  const dialog = document.getElementById('shelve-dialog');
  const reason = document.getElementById('shelve-reason');
  const duration = document.getElementById('shelve-for');
  const label = document.getElementById('shelve-alarm');
  const error = document.getElementById('shelve-error');
  let shelving = null;

  root.addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-action]');
    if (!b) return;
    const alarm = b.dataset.alarm;
    const action = b.dataset.action;
    if (action === 'shelve') {
      shelving = alarm;
      label.textContent = alarm;
      reason.value = '';
      error.textContent = '';
      dialog.showModal();
      reason.focus();
      return;
    }
    b.disabled = true;
    try {
      await live.command(action, alarm, { comment: '' });
    } catch (err) {
      b.disabled = false;
      (onError || alert)(`${action} ${alarm}: ${err.message}`);
    }
  });

  dialog.addEventListener('close', async () => {
    if (dialog.returnValue !== 'ok' || !shelving) return;
    const alarm = shelving;
    shelving = null;
    try {
      await live.command('shelve', alarm, { comment: reason.value, reason: reason.value, duration: duration.value });
    } catch (err) {
      (onError || alert)(`shelve ${alarm}: ${err.message}`);
    }
  });
}
