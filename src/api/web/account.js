// My account (issue 24): every signed-in user sees their own sessions — where and when they
// signed in, when each was last used and when it ends — and ends any of them (this one signs
// them out here), and changes their own password: the current one first, the new one twice;
// their other sessions end, this one stays. Routed as #/account; read over REST when opened.

import * as api from './api.js';
import { esc } from './format.js';
import { t, apiError, stamp } from './i18n.js';

// When a session ends: the earlier of its idle end and its absolute end.
export const endsAt = (s) => Math.min(s.idle_expires_at_ms, s.expires_at_ms);

// A session's browser, as its user agent names it (data: shown as written).
export const client = (s) => (s.user_agent ? `<span class="ua" translate="no" title="${esc(s.user_agent)}">${esc(s.user_agent)}</span>` : '—');

export class AccountPage {
  constructor(root, { toast = () => {} }) {
    this.root = root;
    this.toast = toast;
    this.seq = 0;
  }

  open() {
    this.seq += 1;
    const seq = this.seq;
    const s = api.session() || {};
    this.root.innerHTML = `<div class="account">
      <h1>${esc(t('account.title'))} <span class="muted" translate="no">${esc(s.user || '')}</span></h1>
      <section class="panel">
        <h2>${esc(t('account.sessions'))}</h2>
        <p class="muted account-hint">${esc(t('account.sessions_hint', { min: Math.max(1, Math.round((s.idle_timeout_ms || 0) / 60000)) }))}</p>
        <div class="table-scroll"><table class="grid my-sessions"><thead><tr>
          <th>${esc(t('account.signed_in'))}</th><th>${esc(t('account.last_used'))}</th><th>${esc(t('account.address'))}</th><th>${esc(t('account.client'))}</th><th>${esc(t('account.ends'))}</th><th></th>
        </tr></thead><tbody></tbody></table></div>
      </section>
      <section class="panel">
        <h2>${esc(t('account.password'))}</h2>
        <form class="admin-form" id="password-form">
          <label><span>${esc(t('account.current_password'))}</span><input name="current" type="password" required autocomplete="current-password"></label>
          <label><span>${esc(t('account.new_password'))}</span><input name="next" type="password" required autocomplete="new-password"></label>
          <label><span>${esc(t('account.confirm_password'))}</span><input name="again" type="password" required autocomplete="new-password"></label>
          <button type="submit">${esc(t('account.change'))}</button>
        </form>
        <p class="muted password-rules"></p>
        <div class="password-error login-error" role="alert"></div>
      </section>
      <dialog class="dialog account-ask"><form method="dialog"><div class="ask-text"></div><div class="buttons"><button value="cancel" class="ghost">${esc(t('admin.cancel'))}</button><button value="ok" class="ask-ok">${esc(t('admin.ok'))}</button></div></form></dialog>
    </div>`;
    this.root.querySelector('tbody').addEventListener('click', async (e) => {
      const b = e.target.closest('button[data-session]');
      if (!b) return;
      if (!(await this.ask(t(b.dataset.current ? 'account.confirm_end_this' : 'account.confirm_end')))) return;
      try {
        await api.del(`/api/v1/auth/sessions/${encodeURIComponent(b.dataset.session)}`);
        // Ending this session signs this browser out (the next request says so).
        this.toast(t('account.ended'), true);
        this.list(seq);
      } catch (err) {
        this.toast(apiError(err));
      }
    });
    this.root.querySelector('#password-form').addEventListener('submit', (e) => this.changePassword(e, seq));
    this.list(seq);
    this.rules(seq);
  }

  // The node's password policy (its minimum length) for the form.
  async rules(seq) {
    try {
      const me = await api.get('/api/v1/auth/me');
      if (seq !== this.seq) return;
      const min = me.password_min_chars;
      for (const name of ['next', 'again']) this.root.querySelector(`#password-form [name=${name}]`).minLength = min;
      this.root.querySelector('.password-rules').textContent = t('account.rules', { min });
    } catch {
      // A 401 has already signed this browser out.
    }
  }

  close() {
    this.seq += 1;
    this.root.innerHTML = '';
  }

  ask(text) {
    const dlg = this.root.querySelector('.account-ask');
    dlg.querySelector('.ask-text').textContent = text;
    return new Promise((resolve) => {
      dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
      dlg.returnValue = '';
      dlg.showModal();
    });
  }

  async list(seq) {
    try {
      const { sessions = [] } = await api.get('/api/v1/auth/sessions');
      if (seq !== this.seq) return;
      this.root.querySelector('tbody').innerHTML = sessions.length
        ? sessions
            .map(
              (s) => `<tr data-session="${esc(s.id)}"${s.current ? ' class="current"' : ''}><td>${esc(stamp(s.created_at_ms))}</td><td>${esc(stamp(s.last_used_ms))}</td>
                <td translate="no">${esc(s.address || '—')}</td><td>${client(s)}</td><td>${esc(stamp(endsAt(s)))}</td>
                <td class="actions">${s.current ? `<span class="badge">${esc(t('account.this_session'))}</span>` : ''}<button type="button" data-session="${esc(s.id)}"${s.current ? ' data-current="1"' : ''}>${esc(t('account.end'))}</button></td></tr>`,
            )
            .join('')
        : `<tr><td colspan="6" class="empty">${esc(t('account.no_sessions'))}</td></tr>`;
    } catch (err) {
      this.toast(apiError(err));
    }
  }

  async changePassword(e, seq) {
    e.preventDefault();
    const f = e.target;
    const out = this.root.querySelector('.password-error');
    out.textContent = '';
    if (f.next.value !== f.again.value) {
      out.textContent = t('account.mismatch');
      return;
    }
    const s = api.session() || {};
    try {
      const r = await api.put('/api/v1/auth/me/password', { current_password: f.current.value, new_password: f.next.value, device: api.device(s.user) });
      f.reset();
      this.toast(t('account.changed', { n: r.sessions_ended }), true);
      this.list(seq);
    } catch (err) {
      out.textContent = err.status === 429 ? t('login.throttled', { s: err.retryAfter }) : apiError(err);
    }
  }
}
