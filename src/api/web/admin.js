// Administration (issue 19, item 9): what existed only in the API, on screen. Six tabs, each
// shown to the roles the node lets use it: users and roles, API tokens with their scope and
// expiry, every user's sessions and the login throttling (admin; issue 24), the enrolled
// gateways — enrol, change rooms, revoke, remove (admin; issue 24 item 2), the audit log
// with filters and a CSV export (operator and above), and the alarm rules (rule author): view a
// rule, edit it with syntax checking, run the golden cases that exercise it against the draft,
// backtest the draft against the rules in force over the stored history, and only then deploy
// it (deploy is offered once this very draft checked clean, passed its cases — or has none —
// and was backtested; an edit starts the three over). Routed as #/admin/TAB[/RULE].
// Everything here is read over REST when a tab opens; nothing is live.

import * as api from './api.js';
import { csvText, esc } from './format.js';
import { download } from './trend.js';
import { t, has, apiError, num, stamp } from './i18n.js';
import { client, endsAt } from './account.js';

const RANK = { viewer: 0, operator: 1, 'rule-author': 2, admin: 3 };
const ROLES = ['viewer', 'operator', 'rule-author', 'admin'];
// An API token's scopes (src/auth/mod.rs `Scope`) and the lifetimes offered (days).
const SCOPES = ['read', 'operate', 'admin'];
const LIFETIMES = [30, 90, 180, 365];
// The least role of each tab (the node's policy, src/auth/policy.rs).
const TABS = [
  ['users', 'admin'],
  ['tokens', 'admin'],
  ['sessions', 'admin'],
  ['gateways', 'admin'],
  ['audit', 'operator'],
  ['rules', 'rule-author'],
];
const ACTIONS = ['login', 'login_failed', 'login_throttled', 'login_unlock', 'logout', 'session_end', 'password_change', 'alarm_ack', 'alarm_shelve', 'alarm_unshelve', 'alarm_reset', 'alarm_remove_from_service', 'alarm_return_to_service', 'rule_put', 'rule_reload', 'setpoint_write', 'plan_write', 'user_create', 'user_update', 'user_delete', 'token_create', 'token_revoke', 'gateway_put', 'gateway_delete', 'language_set', 'workorder_create', 'workorder_dispatch', 'workorder_accept', 'workorder_en_route', 'workorder_on_site', 'workorder_check', 'workorder_complete', 'workorder_verify', 'workorder_reject', 'workorder_hold', 'workorder_resume', 'workorder_cancel', 'workorder_comment', 'workorder_escalate', 'workorder_attach', 'knowledge_edit', 'component_event', 'spare_stock_set', 'workorder_unknown', 'asset_project_create', 'asset_project_update', 'asset_project_delete', 'asset_room_put', 'asset_equipment_add', 'asset_equipment_edit', 'asset_equipment_replace', 'asset_equipment_remove', 'asset_document_attach', 'asset_import', 'cleaning_record', 'cleaning_interval', 'inspection_start', 'inspection_item', 'inspection_order', 'inspection_finish', 'analysis_recompute', 'cockpit_board', 'backup', 'restore', 'data_export', 'audit_export', 'audit_verify', 'audit_pruned'];
const PERIODS = ['1h', '6h', '24h', '3d', '7d'];
// What a draft must pass, in order, before it may be deployed.
const GATES = ['checked', 'cases', 'tested'];

export function mayAdminister(role) {
  return (RANK[role] ?? 0) >= RANK.operator;
}

const roleText = (r) => (has(`roles.${r}`) ? t(`roles.${r}`) : r);
const actionText = (a) => (has(`admin.actions.${a}`) ? t(`admin.actions.${a}`) : a);
const categoryText = (c) => (c && has(`admin.categories.${c}`) ? t(`admin.categories.${c}`) : c || '');
// An entry's result (ok, refused, failed); entries from before it was recorded have only `ok`.
const resultText = (a) => t({ ok: 'admin.ok_done', refused: 'admin.refused', failed: 'admin.failed' }[a.result || (a.ok ? 'ok' : 'refused')]);
const roleOptions = (selected) => ROLES.map((r) => `<option value="${r}"${r === selected ? ' selected' : ''}>${esc(roleText(r))}</option>`).join('');
const scopeOptions = (selected) => SCOPES.map((s) => `<option value="${s}"${s === selected ? ' selected' : ''}>${esc(t(`admin.scope_${s}`))}</option>`).join('');
const lifetimeOptions = () => LIFETIMES.map((d) => `<option value="${d}"${d === 90 ? ' selected' : ''}>${esc(t('admin.days', { n: d }))}</option>`).join('');
const th = (key, cls = '') => `<th${cls ? ` class="${cls}"` : ''}>${esc(t(key))}</th>`;

// `ms` as the value of a datetime-local input (local time), and back.
function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}


export class AdminPage {
  constructor(root, { role = () => 'viewer', toast = () => {} }) {
    this.root = root;
    this.role = role;
    this.toast = toast;
    this.seq = 0;
    this.audit = [];
    this.rule = null;
    this.gates = {};
  }

  tabs() {
    return TABS.filter(([, least]) => (RANK[this.role()] ?? 0) >= RANK[least]).map(([name]) => name);
  }

  open(tab, arg) {
    const tabs = this.tabs();
    const current = tabs.includes(tab) ? tab : tabs[0];
    this.seq += 1;
    this.root.innerHTML = `<div class="admin">
      <nav class="admin-tabs">${tabs.map((name) => `<a href="#/admin/${name}" class="${name === current ? 'active' : ''}">${esc(t(`admin.tab_${name}`))}</a>`).join('')}</nav>
      <div class="admin-body"></div>
      <dialog class="dialog admin-ask"><form method="dialog"><div class="ask-text"></div><label class="ask-input" hidden><span></span><input type="password" autocomplete="new-password"></label><div class="buttons"><button value="cancel" formnovalidate class="ghost">${esc(t('admin.cancel'))}</button><button value="ok" class="ask-ok">${esc(t('admin.ok'))}</button></div></form></dialog>
    </div>`;
    if (!current) {
      this.body().innerHTML = `<div class="empty">${esc(t('admin.no_access'))}</div>`;
      return;
    }
    const seq = this.seq;
    const show = { users: () => this.users(seq), tokens: () => this.tokens(seq), sessions: () => this.sessions(seq), gateways: () => this.gateways(seq), audit: () => this.auditTab(seq), rules: () => (arg ? this.ruleView(seq, arg) : this.rules(seq)) };
    show[current]();
  }

  close() {
    this.seq += 1;
    this.root.innerHTML = '';
  }

  body() {
    return this.root.querySelector('.admin-body');
  }

  fail(err) {
    this.toast(apiError(err));
  }

  // An in-page confirmation (a browser's confirm() blocks the page and cannot be styled):
  // resolves true, or the typed value when `input` names a field; false when cancelled. `data`
  // is what the text quotes as-is (a user's name, a token's, a rule's id): marked translate="no".
  ask(text, input, data = null) {
    const dlg = this.root.querySelector('.admin-ask');
    const quoted = data === null || data === '' ? esc(text) : esc(text).split(esc(data)).join(`<b translate="no">${esc(data)}</b>`);
    dlg.querySelector('.ask-text').innerHTML = quoted;
    const field = dlg.querySelector('.ask-input');
    field.hidden = !input;
    const box = field.querySelector('input');
    box.value = '';
    box.required = Boolean(input);
    if (input) field.querySelector('span').textContent = input;
    return new Promise((resolve) => {
      dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok' && (input ? box.value : true)), { once: true });
      dlg.returnValue = '';
      dlg.showModal();
    });
  }

  // --- users ---

  async users(seq) {
    const body = this.body();
    body.innerHTML = `<form class="admin-form" id="user-form">
        <label><span>${esc(t('admin.user_name'))}</span><input name="name" required autocomplete="off" translate="no"></label>
        <label><span>${esc(t('admin.role'))}</span><select name="role">${roleOptions('viewer')}</select></label>
        <label><span>${esc(t('admin.password'))}</span><input name="password" type="password" required autocomplete="new-password"></label>
        <button type="submit">${esc(t('admin.create_user'))}</button>
      </form>
      <div class="table-scroll"><table class="grid admin-users"><thead><tr>${th('admin.user_name')}${th('admin.role')}${th('admin.created')}${th('admin.updated')}<th></th></tr></thead><tbody></tbody></table></div>`;
    body.querySelector('#user-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = e.target;
      try {
        await api.post('/api/v1/users', { name: f.name.value.trim(), role: f.role.value, password: f.password.value });
        this.toast(t('admin.user_created', { name: f.name.value.trim() }), true);
        f.reset();
        this.listUsers(seq);
      } catch (err) {
        this.fail(err);
      }
    });
    const rows = body.querySelector('tbody');
    rows.addEventListener('change', async (e) => {
      const sel = e.target.closest('select[data-user]');
      if (!sel) return;
      try {
        const r = await api.patch(`/api/v1/users/${encodeURIComponent(sel.dataset.user)}`, { role: sel.value });
        this.toast(t('admin.role_changed', { name: sel.dataset.user, role: roleText(sel.value), n: r.sessions_ended }), true);
      } catch (err) {
        this.fail(err);
      }
      this.listUsers(seq);
    });
    rows.addEventListener('click', async (e) => {
      const b = e.target.closest('button[data-act]');
      if (!b) return;
      const name = b.dataset.user;
      const path = `/api/v1/users/${encodeURIComponent(name)}`;
      try {
        if (b.dataset.act === 'password') {
          const password = await this.ask(t('admin.reset_password_for', { name }), t('admin.new_password'), name);
          if (!password) return;
          await api.patch(path, { password });
          this.toast(t('admin.password_reset', { name }), true);
        } else if (await this.ask(t('admin.confirm_delete_user', { name }), null, name)) {
          await api.del(path);
          this.toast(t('admin.user_deleted', { name }), true);
          this.listUsers(seq);
        }
      } catch (err) {
        this.fail(err);
      }
    });
    this.listUsers(seq);
  }

  async listUsers(seq) {
    try {
      const { users = [] } = await api.get('/api/v1/users');
      if (seq !== this.seq) return;
      this.body().querySelector('tbody').innerHTML = users
        .map(
          (u) => `<tr data-user="${esc(u.name)}"><td translate="no">${esc(u.name)}</td>
            <td><select data-user="${esc(u.name)}" aria-label="${esc(t('admin.role'))}">${roleOptions(u.role)}</select></td>
            <td>${esc(stamp(u.created_at_ms))}</td><td>${esc(stamp(u.updated_at_ms))}</td>
            <td class="actions"><button type="button" data-act="password" data-user="${esc(u.name)}">${esc(t('admin.reset_password'))}</button><button type="button" data-act="delete" data-user="${esc(u.name)}">${esc(t('admin.delete'))}</button></td></tr>`,
        )
        .join('');
    } catch (err) {
      this.fail(err);
    }
  }

  // --- API tokens ---

  async tokens(seq) {
    const body = this.body();
    body.innerHTML = `<form class="admin-form" id="token-form">
        <label><span>${esc(t('admin.token_name'))}</span><input name="name" required autocomplete="off" translate="no"></label>
        <label><span>${esc(t('admin.role'))}</span><select name="role">${roleOptions('viewer')}</select></label>
        <label><span>${esc(t('admin.scope'))}</span><select name="scope">${scopeOptions('read')}</select></label>
        <label><span>${esc(t('admin.expires_in'))}</span><select name="days">${lifetimeOptions()}</select></label>
        <button type="submit">${esc(t('admin.create_token'))}</button>
      </form>
      <p class="muted">${esc(t('admin.scope_hint'))}</p>
      <div class="token-secret" hidden><div>${esc(t('admin.secret_once'))}</div><code translate="no"></code><button type="button" class="copy">${esc(t('admin.copy'))}</button></div>
      <div class="table-scroll"><table class="grid admin-tokens"><thead><tr>${th('admin.token_id')}${th('admin.token_name')}${th('admin.role')}${th('admin.scope')}${th('admin.expires')}${th('admin.created_by')}${th('admin.created')}<th></th></tr></thead><tbody></tbody></table></div>`;
    const secret = body.querySelector('.token-secret');
    body.querySelector('#token-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = e.target;
      try {
        const expires = Date.now() + Number(f.days.value) * 86_400_000;
        const made = await api.post('/api/v1/tokens', { name: f.name.value.trim(), role: f.role.value, scope: f.scope.value, expires_at_ms: expires });
        secret.querySelector('code').textContent = made.token;
        secret.hidden = false;
        f.reset();
        this.listTokens(seq);
      } catch (err) {
        this.fail(err);
      }
    });
    secret.querySelector('.copy').addEventListener('click', async () => {
      const text = secret.querySelector('code').textContent;
      try {
        await navigator.clipboard.writeText(text);
      } catch {
        // Without the clipboard API (plain HTTP): select the text for the user's own copy.
        getSelection().selectAllChildren(secret.querySelector('code'));
        document.execCommand('copy');
      }
      this.toast(t('admin.copied'), true);
    });
    body.querySelector('tbody').addEventListener('click', async (e) => {
      const b = e.target.closest('button[data-token]');
      if (!b) return;
      const { token, label } = b.dataset;
      if (!(await this.ask(t('admin.confirm_revoke', { name: label }), null, label))) return;
      try {
        await api.del(`/api/v1/tokens/${encodeURIComponent(token)}`);
        this.toast(t('admin.token_revoked', { name: label }), true);
        this.listTokens(seq);
      } catch (err) {
        this.fail(err);
      }
    });
    this.listTokens(seq);
  }

  async listTokens(seq) {
    try {
      const { tokens = [] } = await api.get('/api/v1/tokens');
      if (seq !== this.seq) return;
      this.body().querySelector('tbody').innerHTML = tokens.length
        ? tokens
            .map(
              (k) => `<tr data-token="${esc(k.id)}" data-scope="${esc(k.scope)}"${k.expired ? ' class="expired"' : ''}><td translate="no">${esc(k.id)}</td><td translate="no">${esc(k.name)}</td><td>${esc(roleText(k.role))}</td>
                <td>${esc(t(`admin.scope_${k.scope}`))}</td><td>${k.expires_at_ms === null ? esc(t('admin.never')) : esc(stamp(k.expires_at_ms))}${k.expired ? ` <span class="badge bad">${esc(t('admin.expired'))}</span>` : ''}</td>
                <td translate="no">${esc(k.created_by)}</td><td>${esc(stamp(k.created_at_ms))}</td>
                <td class="actions"><button type="button" data-token="${esc(k.id)}" data-label="${esc(k.name)}">${esc(t('admin.revoke'))}</button></td></tr>`,
            )
            .join('')
        : `<tr><td colspan="8" class="empty">${esc(t('admin.no_tokens'))}</td></tr>`;
    } catch (err) {
      this.fail(err);
    }
  }

  // --- gateways (device identity) ---

  gateways(seq) {
    const body = this.body();
    body.innerHTML = `<form class="admin-form" id="gateway-form">
        <label><span>${esc(t('admin.gateway_id'))}</span><input name="id" required autocomplete="off" translate="no" pattern="[A-Za-z0-9._@\\-]{1,64}"></label>
        <label class="wide"><span>${esc(t('admin.gateway_rooms'))}</span><input name="rooms" required autocomplete="off" translate="no" placeholder="${esc(t('admin.gateway_rooms_hint'))}"></label>
        <label class="wide"><span>${esc(t('admin.gateway_fingerprint'))}</span><input name="fingerprint" autocomplete="off" translate="no" pattern="[0-9a-fA-F:]{64,95}"></label>
        <label><span>${esc(t('admin.gateway_note'))}</span><input name="note" autocomplete="off"></label>
        <label class="check"><input type="checkbox" name="enabled" checked><span>${esc(t('admin.gateway_enabled'))}</span></label>
        <button type="submit">${esc(t('admin.gateway_save'))}</button>
      </form>
      <p class="muted">${esc(t('admin.gateway_hint'))}<br><code translate="no">cistern/v1/gw/&lt;gateway&gt;/telemetry/&lt;room&gt;</code> · <code translate="no">cistern pki issue --ca pki --name &lt;gateway&gt;</code></p>
      <div class="table-scroll"><table class="grid admin-gateways"><thead><tr>${th('admin.gateway_id')}${th('admin.gateway_rooms')}${th('admin.gateway_fingerprint')}${th('admin.gateway_state')}${th('admin.gateway_note')}${th('admin.updated')}<th></th></tr></thead><tbody></tbody></table></div>`;
    const form = body.querySelector('#gateway-form');
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const id = form.id.value.trim();
      const rooms = form.rooms.value.split(/[\s,，、;]+/).filter(Boolean);
      const fingerprint = form.fingerprint.value.trim();
      try {
        await api.put(`/api/v1/gateways/${encodeURIComponent(id)}`, { rooms, fingerprint: fingerprint || null, enabled: form.enabled.checked, note: form.note.value.trim() });
        this.toast(t('admin.gateway_saved', { name: id }), true);
        form.reset();
        form.id.readOnly = false;
        this.listGateways(seq);
      } catch (err) {
        this.fail(err);
      }
    });
    body.querySelector('tbody').addEventListener('click', async (e) => {
      const b = e.target.closest('button[data-gateway]');
      if (!b) return;
      const g = (this.gatewayList || []).find((x) => x.id === b.dataset.gateway);
      if (!g) return;
      const path = `/api/v1/gateways/${encodeURIComponent(g.id)}`;
      try {
        if (b.dataset.act === 'edit') {
          form.id.value = g.id;
          form.id.readOnly = true;
          form.rooms.value = g.rooms.join(' ');
          form.fingerprint.value = g.fingerprint || '';
          form.note.value = g.note || '';
          form.enabled.checked = g.enabled;
          form.rooms.focus();
        } else if (b.dataset.act === 'toggle') {
          const enabled = !g.enabled;
          if (!enabled && !(await this.ask(t('admin.confirm_revoke_gateway', { name: g.id }), null, g.id))) return;
          await api.put(path, { rooms: g.rooms, fingerprint: g.fingerprint || null, enabled, note: g.note || '' });
          this.toast(t(enabled ? 'admin.gateway_enabled_now' : 'admin.gateway_revoked', { name: g.id }), true);
          this.listGateways(seq);
        } else if (await this.ask(t('admin.confirm_delete_gateway', { name: g.id }), null, g.id)) {
          await api.del(path);
          this.toast(t('admin.gateway_deleted', { name: g.id }), true);
          this.listGateways(seq);
        }
      } catch (err) {
        this.fail(err);
      }
    });
    this.listGateways(seq);
  }

  async listGateways(seq) {
    try {
      const { gateways = [] } = await api.get('/api/v1/gateways');
      if (seq !== this.seq) return;
      this.gatewayList = gateways;
      const short = (f) => (f ? `${f.slice(0, 16)}…` : '—');
      this.body().querySelector('tbody').innerHTML = gateways.length
        ? gateways
            .map(
              (g) => `<tr data-gateway="${esc(g.id)}"${g.enabled ? '' : ' class="revoked"'}><td translate="no">${esc(g.id)}</td>
                <td translate="no">${esc(g.rooms.join(' '))}</td>
                <td translate="no" title="${esc(g.fingerprint || '')}"><code>${esc(short(g.fingerprint))}</code></td>
                <td><span class="badge ${g.enabled ? 'good' : 'bad'}">${esc(t(g.enabled ? 'admin.gateway_on' : 'admin.gateway_off'))}</span></td>
                <td>${esc(g.note || '')}</td><td>${esc(stamp(g.updated_at_ms))} <span class="muted" translate="no">${esc(g.updated_by)}</span></td>
                <td class="actions"><button type="button" data-act="edit" data-gateway="${esc(g.id)}">${esc(t('admin.gateway_edit'))}</button><button type="button" data-act="toggle" data-gateway="${esc(g.id)}">${esc(t(g.enabled ? 'admin.gateway_revoke' : 'admin.gateway_enable'))}</button><button type="button" data-act="delete" data-gateway="${esc(g.id)}">${esc(t('admin.delete'))}</button></td></tr>`,
            )
            .join('')
        : `<tr><td colspan="7" class="empty">${esc(t('admin.no_gateways'))}</td></tr>`;
    } catch (err) {
      this.fail(err);
    }
  }

  // --- sessions and login throttling ---

  sessions(seq) {
    const body = this.body();
    body.innerHTML = `<section class="panel admin-sessions-panel">
        <h2>${esc(t('admin.sessions_title'))} <span class="muted sessions-count"></span></h2>
        <div class="table-scroll"><table class="grid admin-sessions"><thead><tr>${th('admin.user_name')}${th('account.signed_in')}${th('account.last_used')}${th('account.address')}${th('account.client')}${th('account.ends')}<th></th></tr></thead><tbody></tbody></table></div>
      </section>
      <section class="panel admin-throttles-panel">
        <h2>${esc(t('admin.throttles_title'))}</h2>
        <p class="muted">${esc(t('admin.throttles_hint'))}</p>
        <form class="admin-form" id="unlock-form">
          <label><span>${esc(t('admin.user_name'))}</span><input name="user" autocomplete="off" translate="no"></label>
          <label><span>${esc(t('account.address'))}</span><input name="address" autocomplete="off" translate="no"></label>
          <button type="submit">${esc(t('admin.unlock'))}</button>
        </form>
        <div class="table-scroll"><table class="grid admin-throttles"><thead><tr>${th('admin.key')}${th('admin.user_name')}${th('account.address')}${th('admin.failures')}${th('admin.wait')}<th></th></tr></thead><tbody></tbody></table></div>
      </section>`;
    body.querySelector('.admin-sessions tbody').addEventListener('click', async (e) => {
      const b = e.target.closest('button[data-session]');
      if (!b) return;
      const name = b.dataset.user;
      if (!(await this.ask(t('admin.confirm_end_session', { name }), null, name))) return;
      try {
        await api.del(`/api/v1/sessions/${encodeURIComponent(b.dataset.session)}`);
        this.toast(t('admin.session_ended', { name }), true);
        this.listSessions(seq);
      } catch (err) {
        this.fail(err);
      }
    });
    const unlock = async (what) => {
      try {
        const r = await api.post('/api/v1/auth/throttles/unlock', what);
        this.toast(t('admin.unlocked', { n: r.cleared }), true);
        this.listThrottles(seq);
      } catch (err) {
        this.fail(err);
      }
    };
    body.querySelector('.admin-throttles tbody').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-unlock]');
      if (!b) return;
      const what = {};
      if (b.dataset.user) what.user = b.dataset.user;
      if (b.dataset.address) what.address = b.dataset.address;
      unlock(what);
    });
    body.querySelector('#unlock-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const f = e.target;
      const what = {};
      if (f.user.value.trim()) what.user = f.user.value.trim();
      if (f.address.value.trim()) what.address = f.address.value.trim();
      f.reset();
      unlock(what);
    });
    this.listSessions(seq);
    this.listThrottles(seq);
  }

  async listSessions(seq) {
    try {
      const { sessions = [] } = await api.get('/api/v1/sessions');
      if (seq !== this.seq) return;
      this.body().querySelector('.sessions-count').textContent = t('admin.sessions_count', { n: sessions.length });
      this.body().querySelector('.admin-sessions tbody').innerHTML = sessions
        .map(
          (s) => `<tr data-session="${esc(s.id)}" data-user="${esc(s.user)}"${s.current ? ' class="current"' : ''}><td translate="no">${esc(s.user)}</td><td>${esc(stamp(s.created_at_ms))}</td><td>${esc(stamp(s.last_used_ms))}</td>
            <td translate="no">${esc(s.address || '—')}</td><td>${client(s)}</td><td>${esc(stamp(endsAt(s)))}</td>
            <td class="actions">${s.current ? `<span class="badge">${esc(t('account.this_session'))}</span>` : ''}<button type="button" data-session="${esc(s.id)}" data-user="${esc(s.user)}">${esc(t('account.end'))}</button></td></tr>`,
        )
        .join('');
    } catch (err) {
      this.fail(err);
    }
  }

  async listThrottles(seq) {
    try {
      const { throttles = [] } = await api.get('/api/v1/auth/throttles');
      if (seq !== this.seq) return;
      const key = (k) => t(k.key === 'pair' && k.known_browser ? 'admin.key_browser' : `admin.key_${k.key}`);
      this.body().querySelector('.admin-throttles tbody').innerHTML = throttles.length
        ? throttles
            .map(
              (k) => `<tr data-key="${esc(k.key)}" data-user="${esc(k.user || '')}" data-address="${esc(k.address || '')}"${k.retry_after_ms ? ' class="waiting"' : ''}><td>${esc(key(k))}</td>${k.unknown_user ? `<td class="muted">${esc(t('admin.unknown_user'))}</td>` : `<td translate="no">${esc(k.user || '—')}</td>`}<td translate="no">${esc(k.address || '—')}</td>
                <td class="n">${k.failures}</td><td class="n">${k.retry_after_ms ? esc(t('admin.wait_s', { s: Math.ceil(k.retry_after_ms / 1000) })) : '—'}</td>
                <td class="actions"><button type="button" data-unlock="1"${k.user ? ` data-user="${esc(k.user)}"` : ''}${k.address ? ` data-address="${esc(k.address)}"` : ''}>${esc(t('admin.unlock'))}</button></td></tr>`,
            )
            .join('')
        : `<tr><td colspan="6" class="empty">${esc(t('admin.no_throttles'))}</td></tr>`;
    } catch (err) {
      this.fail(err);
    }
  }

  // --- the audit log ---

  auditTab(seq) {
    const body = this.body();
    const now = Date.now();
    body.innerHTML = `<form class="admin-form" id="audit-form">
        <label><span>${esc(t('admin.user_name'))}</span><input name="user" autocomplete="off" translate="no"></label>
        <label><span>${esc(t('admin.action'))}</span><select name="action"><option value="">${esc(t('admin.all'))}</option>${ACTIONS.map((a) => `<option value="${a}">${esc(actionText(a))}</option>`).join('')}</select></label>
        <label><span>${esc(t('admin.since'))}</span><input name="since" type="datetime-local" value="${localInput(now - 24 * 3600_000)}"></label>
        <label><span>${esc(t('admin.until'))}</span><input name="until" type="datetime-local"></label>
        <label><span>${esc(t('admin.limit'))}</span><select name="limit"><option>100</option><option selected>1000</option><option>10000</option></select></label>
        <button type="submit">${esc(t('admin.search'))}</button>
        <button type="button" class="export">${esc(t('admin.export_csv'))}</button>
        ${this.role() === 'admin' ? `<button type="button" class="verify-chain ghost">${esc(t('admin.verify_chain'))}</button>` : ''}
      </form>
      <div class="chain-verdict" role="status" hidden></div>
      <div class="muted audit-count"></div>
      <div class="table-scroll"><table class="grid admin-audit"><thead><tr>${th('admin.at')}${th('admin.address')}${th('admin.user_name')}${th('admin.category')}${th('admin.action')}${th('admin.target')}${th('admin.detail')}${th('admin.outcome')}</tr></thead><tbody></tbody></table></div>`;
    const form = body.querySelector('#audit-form');
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.searchAudit(seq);
    });
    body.querySelector('.export').addEventListener('click', () => this.exportAudit());
    body.querySelector('.verify-chain')?.addEventListener('click', () => this.verifyChain(seq));
    this.searchAudit(seq);
  }

  async searchAudit(seq) {
    const f = this.body().querySelector('#audit-form');
    const q = new URLSearchParams();
    if (f.user.value.trim()) q.set('user', f.user.value.trim());
    if (f.action.value) q.set('action', f.action.value);
    if (f.since.value) q.set('since', String(new Date(f.since.value).getTime()));
    if (f.until.value) q.set('until', String(new Date(f.until.value).getTime() + 59_999));
    q.set('limit', f.limit.value);
    try {
      const { entries = [] } = await api.get(`/api/v1/audit?${q}`);
      if (seq !== this.seq) return;
      // Newest first on screen and in the export.
      this.audit = [...entries].reverse();
      this.body().querySelector('.audit-count').textContent = t('admin.entries', { n: this.audit.length });
      this.body().querySelector('tbody').innerHTML = this.audit.length
        ? this.audit
            .map(
              (a) => `<tr class="${a.ok ? '' : 'refused'}" data-action="${esc(a.action)}"><td>${esc(stamp(a.at_ms))}</td><td translate="no" class="source">${esc(a.source || '')}</td><td translate="no">${esc(a.user)}</td><td class="category">${esc(categoryText(a.category))}</td><td>${esc(actionText(a.action))}</td>
                <td translate="no">${esc(a.target)}</td><td translate="no" class="detail">${esc(a.detail)}</td><td class="result">${esc(resultText(a))}</td></tr>`,
            )
            .join('')
        : `<tr><td colspan="8" class="empty">${esc(t('admin.no_entries'))}</td></tr>`;
    } catch (err) {
      this.fail(err);
    }
  }

  exportAudit() {
    const head = ['admin.at', 'admin.address', 'admin.user_name', 'admin.category', 'admin.action', 'admin.target', 'admin.detail', 'admin.outcome'].map((k) => t(k));
    const rows = this.audit.map((a) => [new Date(a.at_ms).toISOString(), a.source || '', a.user, categoryText(a.category), actionText(a.action), a.target, a.detail, resultText(a)]);
    download(`cistern-audit-${new Date().toISOString().slice(0, 10)}.csv`, csvText([head, ...rows]));
  }

  // The node walks the whole hash chain (admin): intact, or where it first breaks.
  async verifyChain(seq) {
    const box = this.body().querySelector('.chain-verdict');
    box.hidden = false;
    box.className = 'chain-verdict';
    box.textContent = t('admin.chain_checking');
    try {
      const { report } = await api.get('/api/v1/audit/verify');
      if (seq !== this.seq) return;
      const b = report.first_break;
      box.classList.add(report.intact ? 'intact' : 'broken');
      box.textContent = report.intact
        ? t('admin.chain_intact', { n: report.checked })
        : t('admin.chain_broken', { n: report.breaks, seq: b?.seq ?? '?', kind: t(`admin.break_kinds.${b?.kind}`) });
    } catch (err) {
      box.hidden = true;
      this.fail(err);
    }
  }

  // --- the rules ---

  async rules(seq) {
    const body = this.body();
    body.innerHTML = `<div class="muted rules-source"></div><div class="table-scroll"><table class="grid admin-rules"><thead><tr>${th('admin.rule_id')}${th('admin.severity')}${th('admin.description')}${th('admin.status')}</tr></thead><tbody></tbody></table></div>`;
    try {
      const list = await api.get('/api/v1/rules');
      if (seq !== this.seq) return;
      body.querySelector('.rules-source').textContent = list.hot_reload ? t('admin.rules_from_dir', { n: list.count }) : t('admin.rules_builtin', { n: list.count });
      body.querySelector('tbody').innerHTML = (list.rules || [])
        .map((r) => {
          const m = r.meta || {};
          const status = r.rejected ? 'rejected' : r.disabled ? 'disabled' : 'in_force';
          return `<tr data-rule="${esc(r.id)}"><td><a href="#/admin/rules/${encodeURIComponent(r.id)}" translate="no">${esc(r.id)}</a></td><td>${esc(m.severity || '')}</td>
            <td${m.description_zh ? '' : ' translate="no"'}>${esc(describe(m))}</td><td class="${status === 'in_force' ? '' : 'abn'}">${esc(t(`admin.status_${status}`))}</td></tr>`;
        })
        .join('');
    } catch (err) {
      this.fail(err);
    }
  }

  async ruleView(seq, id) {
    const body = this.body();
    body.innerHTML = `<div class="rule-head"><a href="#/admin/rules">${esc(t('admin.back_to_rules'))}</a> <b translate="no">${esc(id)}</b> <span class="muted rule-version" translate="no"></span></div>
      <div class="muted rule-desc"></div>
      <textarea class="rule-source" spellcheck="false" translate="no" aria-label="${esc(t('admin.source'))}"></textarea>
      <div class="rule-actions">
        <button type="button" class="check">${esc(t('admin.check_syntax'))}</button>
        <label><span>${esc(t('admin.period'))}</span><select class="period">${PERIODS.map((p) => `<option value="${p}"${p === '24h' ? ' selected' : ''}>${esc(t(`admin.period_${p}`))}</option>`).join('')}</select></label>
        <button type="button" class="run-cases">${esc(t('admin.run_cases'))}</button>
        <button type="button" class="backtest">${esc(t('admin.run_backtest'))}</button>
        <button type="button" class="deploy" disabled>${esc(t('admin.deploy'))}</button>
      </div>
      <div class="rule-gates muted"><span>${esc(t('admin.gates'))}</span>${GATES.map((g) => `<span class="gate" data-gate="${g}">${esc(t(`admin.gate_${g}`))}</span>`).join('')}</div>
      <ol class="diagnostics"></ol>
      <div class="cases-result"></div>
      <div class="backtest-result"></div>`;
    const source = body.querySelector('.rule-source');
    try {
      const rule = await api.get(`/api/v1/rules/${encodeURIComponent(id)}`);
      if (seq !== this.seq) return;
      this.rule = rule;
      this.pass(null);
      source.value = rule.source;
      body.querySelector('.rule-version').textContent = rule.version;
      const desc = body.querySelector('.rule-desc');
      desc.textContent = describe(rule.meta || {});
      if (!(rule.meta || {}).description_zh) desc.setAttribute('translate', 'no');
    } catch (err) {
      this.fail(err);
      return;
    }
    // An edit needs a new check, new cases and a new backtest before it can be deployed.
    source.addEventListener('input', () => this.pass(null));
    body.querySelector('.check').addEventListener('click', () => this.check(seq, id, source.value));
    body.querySelector('.run-cases').addEventListener('click', () => this.cases(seq, id, source.value));
    body.querySelector('.backtest').addEventListener('click', () => this.backtest(seq, id, source.value, body.querySelector('.period').value));
    body.querySelector('.deploy').addEventListener('click', () => this.deploy(seq, id, source.value));
  }

  // Records that `text` passed `gate` (null: the draft changed, every gate is open again) and
  // offers deploy only when this very draft passed all three.
  pass(gate, text) {
    if (gate) this.gates[gate] = text;
    else this.gates = {};
    const body = this.body();
    const current = body.querySelector('.rule-source');
    if (!current) return;
    const done = (g) => this.gates[g] !== undefined && this.gates[g] === current.value;
    for (const e of body.querySelectorAll('.rule-gates .gate')) e.classList.toggle('done', done(e.dataset.gate));
    body.querySelector('.deploy').disabled = !GATES.every(done);
    if (!gate) {
      for (const sel of ['.cases-result', '.backtest-result']) body.querySelector(sel).innerHTML = '';
    }
  }

  showDiagnostics(list) {
    const out = this.body().querySelector('.diagnostics');
    out.innerHTML = list.length
      ? list
          .map(
            (d) => `<li class="diag ${esc(d.level)}"><span class="where">${esc(t('admin.diag_at', { line: d.line, column: d.column }))}</span> <span class="level">${esc(t(`admin.level_${d.level === 'error' ? 'error' : 'warning'}`))}</span> <span translate="no">${esc(d.message)}</span></li>`,
          )
          .join('')
      : `<li class="diag ok">${esc(t('admin.syntax_ok'))}</li>`;
    return !list.some((d) => d.level === 'error');
  }

  async check(seq, id, text) {
    try {
      const r = await api.requestText('POST', `/api/v1/rules/validate?file=${encodeURIComponent(id)}.rhai`, text);
      if (seq !== this.seq) return;
      if (this.showDiagnostics(r.diagnostics || [])) this.pass('checked', text);
    } catch (err) {
      this.fail(err);
    }
  }

  async cases(seq, id, text) {
    const out = this.body().querySelector('.cases-result');
    const button = this.body().querySelector('.run-cases');
    out.innerHTML = `<div class="muted">${esc(t('admin.cases_running'))}</div>`;
    button.disabled = true;
    try {
      const r = await api.post(`/api/v1/rules/${encodeURIComponent(id)}/cases`, { source: text });
      if (seq !== this.seq) return;
      out.innerHTML = caseList(r);
      if (r.failed === 0) this.pass('cases', text);
    } catch (err) {
      if (seq !== this.seq) return;
      out.innerHTML = '';
      if (err.code === 'rule_rejected' && err.body && err.body.diagnostics) this.showDiagnostics(err.body.diagnostics);
      this.fail(err);
    } finally {
      button.disabled = false;
    }
  }

  async backtest(seq, id, text, last) {
    const out = this.body().querySelector('.backtest-result');
    const button = this.body().querySelector('.backtest');
    out.innerHTML = `<div class="muted">${esc(t('admin.backtest_running'))}</div>`;
    button.disabled = true;
    try {
      const r = await api.post(`/api/v1/rules/${encodeURIComponent(id)}/backtest`, { source: text, last });
      if (seq !== this.seq) return;
      this.showDiagnostics(r.diagnostics || []);
      out.innerHTML = comparison(r, id);
      this.pass('tested', text);
    } catch (err) {
      if (seq !== this.seq) return;
      out.innerHTML = '';
      if (err.code === 'rule_rejected' && err.body && err.body.diagnostics) this.showDiagnostics(err.body.diagnostics);
      this.fail(err);
    } finally {
      button.disabled = false;
    }
  }

  async deploy(seq, id, text) {
    if (!(await this.ask(t('admin.confirm_deploy', { id }), null, id))) return;
    try {
      const r = await api.requestText('PUT', `/api/v1/rules/${encodeURIComponent(id)}`, text);
      if (seq !== this.seq) return;
      this.toast(t('admin.deployed', { id }), true);
      this.body().querySelector('.deploy').disabled = true;
      this.showDiagnostics(r.diagnostics || []);
      const fresh = await api.get(`/api/v1/rules/${encodeURIComponent(id)}`);
      if (seq === this.seq) this.body().querySelector('.rule-version').textContent = fresh.version;
    } catch (err) {
      if (err.body && err.body.diagnostics) this.showDiagnostics(err.body.diagnostics);
      this.fail(err);
    }
  }
}

// The golden cases of a draft: the totals, then each case — passed, or the first transition
// that differs (what the case expects there and what the draft did). The transitions are the
// case tool's own words (`1m tank_high@T2 raised P3`): data, shown as written.
function caseList(r) {
  if (!r.total) return `<div class="panel golden-cases none">${esc(t('admin.cases_none'))}</div>`;
  const rows = (r.cases || [])
    .map((c) => {
      const d = c.difference;
      const what = c.passed
        ? ''
        : c.error
          ? `<div class="case-error">${esc(t('admin.case_error'))} <span translate="no">${esc(c.error)}</span></div>`
          : d
            ? `<div class="case-diff"><span>${esc(t('admin.case_transition', { n: d.transition }))}</span>
                 <span class="expected">${esc(t('admin.case_expected'))} <code translate="no">${esc(d.expected ?? '')}</code>${d.expected == null ? esc(t('admin.case_nothing')) : ''}</span>
                 <span class="got">${esc(t('admin.case_got'))} <code translate="no">${esc(d.got ?? '')}</code>${d.got == null ? esc(t('admin.case_nothing')) : ''}</span></div>`
            : '';
      return `<li class="golden-case ${c.passed ? 'passed' : 'failed'}" data-case="${esc(c.name)}"><span class="verdict">${esc(t(c.passed ? 'admin.case_passed' : 'admin.case_failed'))}</span> <b translate="no">${esc(c.name)}</b> <span class="muted" translate="no">${esc(c.description || '')}</span>${what}</li>`;
    })
    .join('');
  return `<div class="panel golden-cases">
    <h2>${esc(t('admin.cases_title'))}</h2>
    <div class="cases-summary ${r.failed ? 'failed' : 'passed'}">${esc(t('admin.cases_summary', { passed: r.passed, failed: r.failed, total: r.total }))}</div>
    <ol class="case-list">${rows}</ol></div>`;
}

// A rule's description in the user's language (`description_zh` where the header has one).
function describe(meta) {
  const zh = document.documentElement.lang === 'zh-CN';
  return (zh && meta.description_zh) || meta.description || '';
}

// The two backtests side by side: the running rule set and the draft, with the change.
export function comparison(r, id) {
  const a = r.running.result.kpis;
  const b = r.draft.result.kpis;
  const row = (key, x, y, fmt = (v) => String(v)) => {
    const d = typeof x === 'number' && typeof y === 'number' ? y - x : null;
    const cls = d > 0 ? 'up' : d < 0 ? 'down' : '';
    return `<tr><th scope="row">${esc(t(key))}</th><td class="n">${esc(fmt(x))}</td><td class="n">${esc(fmt(y))}</td><td class="n ${cls}">${d === null || d === 0 ? '·' : esc((d > 0 ? '+' : '') + fmt(d))}</td></tr>`;
  };
  const rules = [...new Set([...Object.keys(a.per_rule || {}), ...Object.keys(b.per_rule || {})])].sort((p, q) => (p === id ? -1 : q === id ? 1 : p.localeCompare(q)));
  const perRule = rules
    .map((k) => {
      const x = (a.per_rule || {})[k] || 0;
      const y = (b.per_rule || {})[k] || 0;
      const d = y - x;
      return `<tr class="${k === id ? 'this-rule' : ''}"><th scope="row" translate="no">${esc(k)}</th><td class="n">${x}</td><td class="n">${y}</td><td class="n ${d > 0 ? 'up' : d < 0 ? 'down' : ''}">${d ? (d > 0 ? '+' : '') + d : '·'}</td></tr>`;
    })
    .join('');
  const head = `<thead><tr><th></th>${th('admin.running')}${th('admin.draft')}${th('admin.change')}</tr></thead>`;
  const f1 = (v) => num(v, 1);
  const f2 = (v) => num(v, 2);
  return `<div class="panel backtest">
    <h2>${esc(t('admin.backtest_title'))}</h2>
    <div class="muted">${esc(t('admin.backtest_period', { from: stamp(r.from), to: stamp(r.to), rooms: r.rooms, readings: r.readings }))}</div>
    <div class="table-scroll"><table class="grid compare">${head}<tbody>
      ${row('admin.kpi_annunciated', a.annunciated, b.annunciated)}
      ${row('admin.kpi_suppressed', a.suppressed, b.suppressed)}
      ${row('admin.kpi_per_10_min', a.alarms_per_10_min, b.alarms_per_10_min, f2)}
      ${row('admin.kpi_max_10_min', a.max_per_10_min, b.max_per_10_min)}
      ${row('admin.kpi_chattering', a.chattering, b.chattering)}
      ${row('admin.kpi_standing', a.stale, b.stale)}
      ${row('admin.kpi_flood', a.flood_pct, b.flood_pct, f1)}
      ${row('admin.kpi_events', r.running.result.events, r.draft.result.events)}
    </tbody></table></div>
    <h2>${esc(t('admin.per_rule'))}</h2>
    <div class="table-scroll"><table class="grid compare per-rule">${head}<tbody>${perRule || `<tr><td colspan="4" class="empty">${esc(t('admin.no_alarms'))}</td></tr>`}</tbody></table></div>
  </div>`;
}
