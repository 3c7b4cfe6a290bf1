// Formatting shared by the screens: numbers at a fixed precision, times in the operator's
// local clock, names in the user's language, HTML escaping for anything that came from the node.

import { lang, t } from './i18n.js';

export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

// Numbers, times and dates in the user's language (see i18n.js).
export { num, clock, stamp, date, ago } from './i18n.js';

// One CSV field: quoted when it holds a separator, a quote or a line break; null is empty.
function csvField(v) {
  const s = String(v ?? '');
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

// Rows as CSV text (CRLF line ends, as spreadsheets expect).
export function csvText(rows) {
  return rows.map((r) => r.map(csvField).join(',')).join('\r\n') + '\r\n';
}

export const SEVERITIES = ['P1', 'P2', 'P3', 'P4'];

// An alarm state's short label in the user's language.
export function stateLabel(state) {
  return t(`state.${state}`);
}

export function unacked(state) {
  return state === 'unacked' || state === 'returned_unacked';
}

// Zone names from the inventory (`GET /api/v1/rooms`): Chinese, with the pinyin for English.
const zoneNames = new Map();

export function setZoneNames(zones) {
  zoneNames.clear();
  for (const z of zones || []) zoneNames.set(z.id, z);
}

// A zone's name in the user's language; an id the inventory did not name reads as itself.
export function zoneLabel(id) {
  const z = zoneNames.get(id);
  if (!z) return String(id).replace(/[-_]/g, ' ').replace(/\b\w/g, (c) => c.toUpperCase());
  return localized(z, 'name');
}

// A field of the inventory in the user's language: as written (Chinese), or its pinyin
// (`name_pinyin`) in English where it has one.
function localized(thing, field) {
  if (!thing) return '';
  return (lang() !== 'zh-CN' && thing[`${field}_pinyin`]) || thing[field] || '';
}

export function nameLabel(thing) {
  return localized(thing, 'name');
}

export function addressLabel(thing) {
  return localized(thing, 'address');
}

// The point named `name` in a RoomView's or DeviceView's `points`.
export function point(points, name) {
  return (points || []).find((p) => p.name === name);
}

// A point's value unless it is bad (stale and uncertain values are shown, marked as such).
export function value(points, name) {
  const p = point(points, name);
  return p && p.quality && p.quality.level !== 'bad' && typeof p.value === 'number' ? p.value : null;
}

// `good`, `stale`, `uncertain`, `bad`, or `none` when the room has no such point.
export function quality(points, name) {
  const p = point(points, name);
  return p && p.quality ? p.quality.level : 'none';
}
