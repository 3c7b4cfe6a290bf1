// A work order by hand (issue 20 item 2): the same small form from an alarm's detail, a room's
// page and the orders list's "report" — a room (fixed, or chosen), a template (the alarm's own
// when there is one), a priority (the template's by default) and a note. The node refuses a
// second open order for the same room and cause (409 order_exists): the form then links to the
// order that is open, so that the operator adds to it instead.

import * as api from './api.js';
import { esc } from './format.js';
import { t, lang, apiError } from './i18n.js';

let templates = null;

async function templateList() {
  if (!templates) templates = (await api.get('/api/v1/workorder-templates')).templates || [];
  return templates;
}

// A template's name in the page's language, without its room placeholder.
export function templateName(tpl) {
  const text = (lang() === 'zh-CN' ? tpl.title_zh : tpl.title) || tpl.title || tpl.id;
  return text.replace('{room}', '').replace(/^[\s·:：-]+|[\s·:：-]+$/g, '') || tpl.id;
}

// The order id a refusal names (`WO-000123 is open for this room and cause…`).
export function openOrderOf(err) {
  const m = err && err.code === 'order_exists' && /WO-\d{6,12}/.exec(err.message || '');
  return m ? m[0] : null;
}

// Draws the form into `box`. `room`: a fixed room id, or `rooms` ([{id, name}]) to choose
// from; `template`, `priority`, `comment`: what it starts with. `onCreated(order)` after a
// creation.
export async function newOrderForm(box, { room = '', rooms = null, template = '', priority = '', comment = '', onCreated = () => {} } = {}) {
  box.hidden = false;
  box.innerHTML = `<p class="muted">${esc(t('neworder.loading'))}</p>`;
  let list;
  try {
    list = await templateList();
  } catch (e) {
    box.innerHTML = `<p class="no-msg">${esc(apiError(e))}</p>`;
    return;
  }
  const first = list.find((x) => x.id === template) || list[0];
  const roomField = rooms
    ? `<select name="room">${rooms.map((r) => `<option value="${esc(r.id)}" translate="no"${r.id === room ? ' selected' : ''}>${esc(r.id)} ${esc(r.name || '')}</option>`).join('')}</select>`
    : `<b translate="no">${esc(room)}</b>`;
  box.innerHTML = `<div class="new-order">
    <h4>${esc(t('neworder.title'))}</h4>
    <label>${esc(t('neworder.room'))} ${roomField}</label>
    <label>${esc(t('neworder.template'))} <select name="template">${list.map((x) => `<option value="${esc(x.id)}"${first && x.id === first.id ? ' selected' : ''}>${esc(templateName(x))}</option>`).join('')}</select></label>
    <label>${esc(t('neworder.priority'))} <select name="priority">${['P1', 'P2', 'P3', 'P4'].map((p) => `<option value="${p}">${p}</option>`).join('')}</select></label>
    <label>${esc(t('neworder.comment'))} <input name="comment" value="${esc(comment)}"></label>
    <div class="buttons"><button type="button" class="primary no-create">${esc(t('neworder.create'))}</button> <button type="button" class="ghost no-cancel">${esc(t('neworder.cancel'))}</button></div>
    <p class="no-msg" aria-live="polite"></p>
  </div>`;
  const field = (n) => box.querySelector(`[name="${n}"]`);
  const byId = new Map(list.map((x) => [x.id, x]));
  const setPriority = () => {
    const tpl = byId.get(field('template').value);
    field('priority').value = tpl ? tpl.priority : 'P3';
  };
  setPriority();
  if (priority) field('priority').value = priority;
  field('template').addEventListener('change', setPriority);
  box.querySelector('.no-cancel').addEventListener('click', () => {
    box.hidden = true;
    box.innerHTML = '';
  });
  const msg = box.querySelector('.no-msg');
  const create = box.querySelector('.no-create');
  create.addEventListener('click', async () => {
    const body = {
      template: field('template').value,
      room: rooms ? field('room').value : room,
      priority: field('priority').value,
    };
    const note = field('comment').value.trim();
    if (note) body.comment = note;
    create.disabled = true;
    try {
      const res = await api.post('/api/v1/workorders', body);
      const id = res.order.id;
      box.innerHTML = `<p class="no-done">${esc(t('neworder.created'))} <a href="#/orders/${esc(id)}" translate="no">${esc(id)}</a></p>`;
      onCreated(res.order);
    } catch (e) {
      create.disabled = false;
      const open = openOrderOf(e);
      msg.innerHTML = open
        ? `${esc(t('neworder.exists'))} <a class="no-open" href="#/orders/${esc(open)}" translate="no">${esc(open)}</a>`
        : esc(apiError(e));
    }
  });
}
