// The room page's cleaning tab (#/room/<id>/cleaning): the room's tanks' schedule and each
// tank's cleaning log, with the form to record a cleaning (operators).

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
      root.innerHTML = `<div class="cleaning"><div id="rc-form"></div><div id="rc-list"><p class="empty">${esc(t('orders.loading'))}</p></div><div id="rc-logs"></div></div>`;
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
      root.querySelector('#rc-logs').innerHTML = res.tanks.map((x, i) => `<h3 translate="no">${esc(x.tank)}</h3>${logs[i] ? logTable(logs[i].log) : ''}`).join('');
    };
    fill();
    return () => (gone = true);
  },
};
