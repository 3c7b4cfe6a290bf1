// Who was told about a work order or an alarm, on which channel, and whether it arrived: the
// notification deliveries of GET /api/v1/notifications as a small table — under an order's
// timeline (orders.js) and in an alarm's history dialog (alarms.js). A node without a
// notification outbox (404) shows nothing.

import * as api from './api.js';
import { esc } from './format.js';
import { t, has, stamp, apiError } from './i18n.js';

const label = (key, raw) => (has(key) ? esc(t(key)) : `<span translate="no">${esc(raw)}</span>`);

function row(d) {
  const status = label(`notify.status_${d.status}`, d.status);
  const reason = d.reason ? ` (${label(`notify.reason_${d.reason}`, d.reason)})` : '';
  const limited = d.rate_limited ? ` <small>${esc(t('notify.rate_limited'))}</small>` : '';
  const error = d.last_error ? `<br><small class="muted" translate="no">${esc(d.last_error)}</small>` : '';
  return `<tr class="nt-${esc(d.status)}">
    <td><time>${esc(stamp(d.created_at))}</time></td>
    <td translate="no">${esc(d.recipient)}</td>
    <td><span translate="no">${esc(d.channel)}</span> · ${label(`notify.kind_${d.channel_kind}`, d.channel_kind)}</td>
    <td>${label(`notify.event_${d.event}`, d.event)}</td>
    <td>${status}${reason}${limited}${error}</td>
    <td>${esc(String(d.attempts))}</td>
  </tr>`;
}

// Fills `el` with the deliveries matching `query` ({order: id} or {alarm: id}).
export async function showNotifications(el, query) {
  if (!el) return;
  const q = Object.entries(query).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  let list;
  try {
    list = (await api.get(`/api/v1/notifications?${q}`)).notifications || [];
  } catch (e) {
    el.innerHTML = e.status === 404 ? '' : `<p class="empty">${esc(apiError(e))}</p>`;
    return;
  }
  const head = ['time', 'recipient', 'channel', 'event', 'status', 'attempts'].map((c) => `<th>${esc(t(`notify.col_${c}`))}</th>`).join('');
  el.innerHTML = `<h3>${esc(t('notify.title'))}</h3>${list.length
    ? `<div class="notify-wrap"><table class="grid notify"><thead><tr>${head}</tr></thead><tbody>${list.map(row).join('')}</tbody></table></div>`
    : `<p class="empty">${esc(t('notify.none'))}</p>`}`;
}
