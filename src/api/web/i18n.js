// The console's two languages, zh-CN first and English. Every word a screen shows comes from
// one catalogue per language (i18n-zh-CN.json, i18n-en.json), looked up by a dotted key
// (`alarms.ack`); a test checks that both catalogues hold the same keys and that every key the
// scripts use exists. Numbers, dates and times are formatted for the language by Intl.
//
// The language is chosen per user: what the user picked last — kept with the user on the node
// (`PUT /api/v1/auth/me/language`; the sign-in answer and `me` carry it), so it follows them to
// any browser, and in this browser under their name for the page before sign-in — else the
// browser's own preference (any Chinese → zh-CN, else English). `?lang=en` in the URL
// overrides them all, for links and tests. Switching reloads the page: the session survives a
// reload, and every screen then renders in the new language from the start.

export const LANGUAGES = ['zh-CN', 'en'];

const catalogues = {};
let current = 'zh-CN';
// Keys looked up but missing from the catalogue: the console shows the key, and a test reads
// this list (`window.cisternMissingKeys`).
const missing = new Set();
window.cisternMissingKeys = missing;

function stored(user) {
  try {
    return localStorage.getItem(user ? `cistern.lang.${user}` : 'cistern.lang');
  } catch {
    return null;
  }
}

function fromBrowser() {
  const prefs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || ''];
  for (const l of prefs) {
    const low = String(l).toLowerCase();
    if (low.startsWith('zh')) return 'zh-CN';
    if (low.startsWith('en')) return 'en';
  }
  return 'zh-CN';
}

function valid(l) {
  return LANGUAGES.includes(l) ? l : null;
}

// The language for `user` (or for the sign-in page when none is signed in yet); `kept` is the
// choice the node keeps for the user (null: never chose).
export function preferred(user, kept) {
  const url = new URLSearchParams(location.search).get('lang');
  return valid(url) || valid(kept) || valid(stored(user)) || valid(stored(null)) || fromBrowser();
}

// Loads both catalogues (a few kilobytes each) and selects the language: once, before any
// screen renders.
export async function init(user) {
  await Promise.all(
    LANGUAGES.map(async (l) => {
      const resp = await fetch(`/ui/i18n-${l}.json`, { cache: 'no-cache' });
      catalogues[l] = resp.ok ? await resp.json() : {};
    }),
  );
  use(preferred(user));
}

function use(l) {
  current = l;
  document.documentElement.lang = l;
  translate(document);
}

export function lang() {
  return current;
}

function remember(l, user) {
  try {
    localStorage.setItem('cistern.lang', l);
    if (user) localStorage.setItem(`cistern.lang.${user}`, l);
  } catch {
    /* private mode: the choice lasts this page only */
  }
}

// Keeps `l` as `user`'s choice in this browser (and the device's, for the next sign-in page)
// and reloads; the caller has kept it on the node.
export function choose(l, user) {
  if (!valid(l)) return;
  remember(l, user);
  const url = new URL(location.href);
  url.searchParams.delete('lang');
  if (url.href !== location.href) history.replaceState(null, '', url.href);
  location.reload();
}

// After sign-in: the user's own choice (`kept` on the node) wins over the device's; it is
// remembered here for this browser's next sign-in page (the static page is translated again;
// the screens render after this).
export function adopt(user, kept) {
  if (valid(kept)) remember(kept, user);
  const l = preferred(user, kept);
  if (l !== current) use(l);
}

function lookup(cat, key) {
  let v = cat;
  for (const part of key.split('.')) {
    if (v === undefined || v === null) return undefined;
    v = v[part];
  }
  return typeof v === 'string' ? v : undefined;
}

// The text of `key` with `{name}` placeholders filled from `vars`. A count `n` picks the
// `key_one` form where the language has one (English "1 room" / "2 rooms").
export function t(key, vars = {}) {
  const cat = catalogues[current] || {};
  let text;
  if (typeof vars.n === 'number' && vars.n === 1) text = lookup(cat, `${key}_one`);
  if (text === undefined) text = lookup(cat, key);
  if (text === undefined) {
    missing.add(key);
    text = lookup(catalogues.en || {}, key) ?? key;
  }
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

// Whether `key` exists in the current language (for optional texts such as an error code's).
export function has(key) {
  return lookup(catalogues[current] || {}, key) !== undefined;
}

// Fills the static page: `data-i18n` sets the text, `data-i18n-title`, `-placeholder` and
// `-aria-label` the attributes.
const ATTRIBUTES = [
  ['title', 'i18nTitle'],
  ['placeholder', 'i18nPlaceholder'],
  ['aria-label', 'i18nAriaLabel'],
];

export function translate(root) {
  for (const e of root.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  for (const [attr, data] of ATTRIBUTES) {
    for (const e of root.querySelectorAll(`[data-i18n-${attr}]`)) e.setAttribute(attr, t(e.dataset[data]));
  }
}

// An API error in the user's language: the catalogue's text for its stable code, else the
// node's (English) message.
export function apiError(err) {
  const code = err && err.code;
  if (code && has(`errors.${code}`)) return t(`errors.${code}`);
  return err && err.message ? err.message : t('errors.unknown');
}

// --- numbers, dates and times ---

const numberFormats = new Map();

export function num(v, decimals = 1) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '—';
  const k = `${current}/${decimals}`;
  if (!numberFormats.has(k)) {
    numberFormats.set(k, new Intl.NumberFormat(current, { minimumFractionDigits: decimals, maximumFractionDigits: decimals, useGrouping: false }));
  }
  return numberFormats.get(k).format(v);
}

const pad = (n) => String(n).padStart(2, '0');

// Time of day, 24-hour in both languages (a control room's clock).
export function clock(ms) {
  if (typeof ms !== 'number') return '—';
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// Month, day and time: `12-06 14:03:05` in English, `12月6日 14:03:05` in Chinese.
export function stamp(ms) {
  if (typeof ms !== 'number') return '—';
  const d = new Date(ms);
  return t('time.stamp', { M: d.getMonth() + 1, MM: pad(d.getMonth() + 1), D: d.getDate(), DD: pad(d.getDate()), time: clock(ms) });
}

// A full date: `2026-12-06` in English, `2026年12月6日` in Chinese.
export function date(ms) {
  if (typeof ms !== 'number') return '—';
  const d = new Date(ms);
  return t('time.date', { Y: d.getFullYear(), M: d.getMonth() + 1, MM: pad(d.getMonth() + 1), D: d.getDate(), DD: pad(d.getDate()) });
}

export function ago(ms, now = Date.now()) {
  if (typeof ms !== 'number') return t('time.never');
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return t('time.seconds_ago', { n: s });
  if (s < 3600) return t('time.minutes_ago', { n: Math.floor(s / 60) });
  return t('time.hours_ago', { n: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
}
