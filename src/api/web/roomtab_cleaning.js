// The room page's cleaning tab (#/room/<id>/cleaning): the room's tanks' schedule and each
// tank's cleaning log, with the form to record a cleaning (operators) and a tank's own
// interval (rule authors and admins; empty: the city's).

import * as api from './api.js';
import { esc } from './format.js';
import { t, apiError } from './i18n.js';
import { logTable, mayRecord, recordForm, scheduleTable } from './cleaning.js';

export const CLEANING_TAB = {
  id: 'cleaning',
  label: 'roomtab.cleaning',
  render(root, roomId, { role = 'viewer', toast = () => {} } = {}) {
    let gone = false;
    const fill = async () => {
      root.innerHTML = `<div class="cleaning"><div id="rc-form"></div><div id="rc-list"><p class="empty">${esc(t('orders.loading'))}</p></div><div id="rc-interval"></div><div id="rc-logs"></div></div>`;
      let res;
      try {
        res = await api.get(`/api/v1/cleaning?room=${encodeURIComponent(roomId)}`);
      } catch (e) {
        if (!gone) root.querySelector('#rc-list').innerHTML = `<p class="empty">${esc(apiError(e))}</p>`;
        return;
      }
      if (gone) return;
      const list = root.querySelector('#rc-list');
      list.innerHTML = scheduleTable(res.tanks, { record: mayRecord(typeof role === 'function' ? role() : role) });
      for (const b of list.querySelectorAll('.cl-record')) {
        b.addEventListener('click', () => recordForm(root.querySelector('#rc-form'), b.dataset.room, b.dataset.t, res.limits, { toast, done: fill }));
      }
      const logs = await Promise.all(res.tanks.map((x) => api.get(`/api/v1/cleaning/${x.tank.split('/').map(encodeURIComponent).join('/')}`).catch(() => null)));
      if (gone) return;
      const r = typeof role === 'function' ? role() : role;
      if (r === 'rule-author' || r === 'admin') {
        const box = root.querySelector('#rc-interval');
        box.innerHTML = `<form class="rc-interval"><label>${esc(t('cleaning.tank'))} <select name="tank">${res.tanks.map((x) => `<option value="${esc(x.tank)}" translate="no">${esc(x.tank)}</option>`).join('')}</select></label>
          <label>${esc(t('cleaning.interval_days'))} <input name="days" type="number" min="1" max="730" step="1" inputmode="numeric" placeholder="${esc(t('cleaning.interval_city', { n: res.interval_days }))}"></label>
          <button type="submit">${esc(t('cleaning.set_interval'))}</button></form>`;
        box.querySelector('form').addEventListener('submit', async (ev) => {
          ev.preventDefault();
          const f = ev.target;
          const days = f.elements.days.value === '' ? null : Number(f.elements.days.value);
          try {
            await api.put(`/api/v1/cleaning/${f.elements.tank.value.split('/').map(encodeURIComponent).join('/')}/interval`, { days });
            toast(t('cleaning.interval_saved'), true);
            fill();
          } catch (e) {
            toast(apiError(e), false);
          }
        });
      }
      root.querySelector('#rc-logs').innerHTML = res.tanks.map((x, i) => `<h3 translate="no">${esc(x.tank)}</h3>${logs[i] ? logTable(logs[i].log) : ''}`).join('');
    };
    fill();
    return () => (gone = true);
  },
};
