// The knowledge base (解决方案库, issue 20 item 4) on screen (#/knowledge, #/knowledge/pump_fault):
// search every problem, cause and remedy in either language; a problem's causes and remedies
// ranked by how often each closed an order in this fleet. Engineers (rule authors and above)
// edit a problem — its texts in both languages, its causes and remedies — or add one; the node
// validates and keeps the edit (PUT /api/v1/knowledge/{problem}).

import * as api from './api.js';
import { esc } from './format.js';
import { t, apiError, lang } from './i18n.js';

const RANK = { viewer: 0, operator: 1, 'rule-author': 2, admin: 3 };
const zh = () => lang() === 'zh-CN';
// The text in the page's language, the other one second (both are data).
const both = (x) => {
  const [a, b] = zh() ? [x.text_zh, x.text] : [x.text, x.text_zh];
  return `<span translate="no">${esc(a)}</span>${b && b !== a ? ` <span class="muted" translate="no">${esc(b)}</span>` : ''}`;
};

export class KnowledgePage {
  constructor(root, { role = () => 'viewer', toast = () => {} }) {
    this.root = root;
    this.role = role;
    this.toast = toast;
    this.seq = 0;
    this.query = '';
  }

  mayEdit() {
    return (RANK[this.role()] ?? 0) >= RANK['rule-author'];
  }

  close() {
    this.seq += 1;
  }

  open(id) {
    this.seq += 1;
    if (id === 'new') this.edit(null);
    else if (id) this.showProblem(id, this.seq);
    else this.showList(this.seq);
  }

  async showList(seq) {
    this.root.innerHTML = `<div class="kb">
      <div class="orders-bar">
        <h2>${esc(t('kb.title'))}</h2>
        <input type="search" id="kb-q" value="${esc(this.query)}" placeholder="${esc(t('kb.search'))}" aria-label="${esc(t('kb.search'))}">
        ${this.mayEdit() ? `<a class="button" id="kb-new" href="#/knowledge/new">${esc(t('kb.new'))}</a>` : ''}
      </div>
      <div class="orders-list" id="kb-list"><p class="empty">${esc(t('orders.loading'))}</p></div>
    </div>`;
    const q = this.root.querySelector('#kb-q');
    let timer = 0;
    q.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        this.query = q.value;
        this.fill(++this.seq);
      }, 250);
    });
    this.fill(seq);
  }

  async fill(seq) {
    let res;
    try {
      res = await api.get(`/api/v1/knowledge?${new URLSearchParams({ q: this.query })}`);
    } catch (e) {
      if (seq === this.seq) this.root.querySelector('#kb-list').innerHTML = `<p class="empty">${esc(apiError(e))}</p>`;
      return;
    }
    if (seq !== this.seq) return;
    const list = this.root.querySelector('#kb-list');
    list.innerHTML = res.problems.length
      ? res.problems
          .map((p) => `<a class="order-card kb-problem" href="#/knowledge/${encodeURIComponent(p.id)}" data-problem="${esc(p.id)}">
            <span class="o-head"><b translate="no">${esc(p.id)}</b> <span class="o-state" translate="no">${esc(p.class)}</span></span>
            <span class="o-title">${both(p)}</span>
            <span class="o-meta">${esc(t('kb.counts', { causes: p.cause.length, remedies: p.cause.reduce((n, c) => n + c.remedies.length, 0) }))}</span>
          </a>`)
          .join('')
      : `<p class="empty">${esc(t('kb.none'))}</p>`;
  }

  async showProblem(id, seq) {
    this.root.innerHTML = `<div class="kb"><p class="empty">${esc(t('orders.loading'))}</p></div>`;
    let res;
    try {
      res = await api.get(`/api/v1/knowledge?${new URLSearchParams({ problem: id })}`);
    } catch (e) {
      if (seq === this.seq) this.root.innerHTML = `<div class="kb"><p class="empty">${esc(apiError(e))}</p></div>`;
      return;
    }
    if (seq !== this.seq) return;
    const p = res.problems[0];
    const ranked = res.suggestions || [];
    const closed = (c, r) => (ranked.find((s) => s.cause === c && s.remedy === r) || {}).closed || 0;
    const learned = ranked.filter((s) => !s.library);
    this.root.innerHTML = `<div class="kb">
      <div class="orders-bar">
        <a class="button" href="#/knowledge">${esc(t('kb.back'))}</a>
        <h2 translate="no">${esc(id)}</h2>
        ${p && this.mayEdit() ? `<button type="button" id="kb-edit">${esc(t('kb.edit'))}</button>` : ''}
      </div>
      ${p ? `<p class="kb-head">${both(p)} <span class="o-state" translate="no">${esc(p.class)}</span></p>
      ${p.cause
        .map((c) => `<section class="kb-cause" data-cause="${esc(c.id)}">
          <h3>${both(c)} <span class="muted" translate="no">${esc(c.id)}</span></h3>
          <ul>${c.remedies.map((r) => `<li data-remedy="${esc(r.id)}">${both(r)} <span class="kb-closed">${esc(t('kb.closed', { n: closed(c.id, r.id) }))}</span></li>`).join('')}</ul>
        </section>`)
        .join('')}` : `<p class="empty">${esc(t('kb.unknown'))}</p>`}
      ${learned.length ? `<section class="kb-cause"><h3>${esc(t('kb.learned'))}</h3><ul>${learned.map((s) => `<li><span translate="no">${esc(s.cause_text)} → ${esc(s.remedy_text)}</span> <span class="kb-closed">${esc(t('kb.closed', { n: s.closed }))}</span></li>`).join('')}</ul></section>` : ''}
    </div>`;
    const edit = this.root.querySelector('#kb-edit');
    if (edit) edit.addEventListener('click', () => this.edit(p));
  }

  // Leaves the editor for the problem (or the list): the editor has no address of its own
  // when it edits, so the page is shown again even where the address does not change.
  after(id) {
    const hash = id ? `#/knowledge/${encodeURIComponent(id)}` : '#/knowledge';
    if (location.hash === hash) this.open(id || undefined);
    else location.hash = hash;
  }

  // The editor: the problem's fields, then each cause with its remedies; rows are added and
  // removed in place, and the whole problem is sent at once.
  edit(problem) {
    const p = problem
      ? JSON.parse(JSON.stringify(problem))
      : { id: '', class: '', text: '', text_zh: '', cause: [{ id: '', text: '', text_zh: '', remedies: [{ id: '', text: '', text_zh: '' }] }] };
    const isNew = !problem;
    const field = (name, value, label, extra = '') => `<label class="kb-field"><span>${esc(t(label))}</span><input name="${name}" value="${esc(value)}" ${extra}></label>`;
    const texts = (prefix, x) => field(`${prefix}.text`, x.text, 'kb.text_en', 'required maxlength="500"') + field(`${prefix}.text_zh`, x.text_zh, 'kb.text_zh', 'required maxlength="500"');
    const idField = (prefix, x) => field(`${prefix}.id`, x.id, 'kb.id', 'required pattern="[A-Za-z0-9_\\-]{1,64}" translate="no"');
    const render = () => {
      this.root.innerHTML = `<form class="kb kb-editor" novalidate>
        <div class="orders-bar">
          <h2>${esc(t(isNew ? 'kb.new' : 'kb.edit'))}</h2>
        </div>
        <fieldset class="kb-problem-fields">
          ${field('id', p.id, 'kb.id', `required pattern="[A-Za-z0-9_\\-]{1,64}" translate="no"${isNew ? '' : ' readonly'}`)}
          ${field('class', p.class, 'kb.class', 'required pattern="[A-Za-z0-9_\\-]{1,64}" translate="no"')}
          ${texts('p', p)}
        </fieldset>
        ${p.cause
          .map((c, ci) => `<fieldset class="kb-cause-fields" data-ci="${ci}">
            <legend>${esc(t('kb.cause', { n: ci + 1 }))}</legend>
            ${idField(`c${ci}`, c)}${texts(`c${ci}`, c)}
            ${c.remedies
              .map((r, ri) => `<div class="kb-remedy-fields" data-ri="${ri}">
                <b>${esc(t('kb.remedy', { n: ri + 1 }))}</b>
                ${idField(`c${ci}r${ri}`, r)}${texts(`c${ci}r${ri}`, r)}
                <button type="button" data-drop-remedy="${ci}/${ri}">${esc(t('kb.remove_remedy'))}</button>
              </div>`)
              .join('')}
            <div class="o-commands">
              <button type="button" data-add-remedy="${ci}">${esc(t('kb.add_remedy'))}</button>
              <button type="button" data-drop-cause="${ci}">${esc(t('kb.remove_cause'))}</button>
            </div>
          </fieldset>`)
          .join('')}
        <div class="o-commands">
          <button type="button" id="kb-add-cause">${esc(t('kb.add_cause'))}</button>
          <button type="submit" class="primary" id="kb-save">${esc(t('kb.save'))}</button>
          <button type="button" id="kb-cancel">${esc(t('kb.cancel'))}</button>
        </div>
        <p class="kb-error" id="kb-error" role="alert" hidden></p>
      </form>`;
      const form = this.root.querySelector('form');
      // Keep what was typed before re-rendering for an added or removed row.
      const read = () => {
        const v = (name) => (form.elements[name] ? form.elements[name].value.trim() : '');
        p.id = v('id');
        p.class = v('class');
        p.text = v('p.text');
        p.text_zh = v('p.text_zh');
        p.cause.forEach((c, ci) => {
          c.id = v(`c${ci}.id`);
          c.text = v(`c${ci}.text`);
          c.text_zh = v(`c${ci}.text_zh`);
          c.remedies.forEach((r, ri) => {
            r.id = v(`c${ci}r${ri}.id`);
            r.text = v(`c${ci}r${ri}.text`);
            r.text_zh = v(`c${ci}r${ri}.text_zh`);
          });
        });
      };
      form.addEventListener('click', (e) => {
        const b = e.target.closest('button[type=button]');
        if (!b) return;
        if (b.id === 'kb-cancel') return this.after(isNew ? null : p.id);
        read();
        if (b.id === 'kb-add-cause') p.cause.push({ id: '', text: '', text_zh: '', remedies: [{ id: '', text: '', text_zh: '' }] });
        else if (b.dataset.addRemedy) p.cause[+b.dataset.addRemedy].remedies.push({ id: '', text: '', text_zh: '' });
        else if (b.dataset.dropCause) p.cause.splice(+b.dataset.dropCause, 1);
        else if (b.dataset.dropRemedy) {
          const [ci, ri] = b.dataset.dropRemedy.split('/').map(Number);
          p.cause[ci].remedies.splice(ri, 1);
        } else return;
        render();
      });
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        read();
        const error = this.root.querySelector('#kb-error');
        error.hidden = true;
        const save = this.root.querySelector('#kb-save');
        save.disabled = true;
        try {
          await api.put(`/api/v1/knowledge/${encodeURIComponent(p.id)}`, p);
          this.toast(t('kb.saved', { problem: zh() ? p.text_zh : p.text }), true);
          this.after(p.id);
        } catch (err) {
          error.textContent = apiError(err);
          error.hidden = false;
          save.disabled = false;
        }
      });
    };
    render();
  }
}
