// Formatting shared by the screens: numbers at a fixed precision, times in the operator's
// local clock, HTML escaping for anything that came from the node.

export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

export function num(v, decimals = 1) {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(decimals) : '—';
}

const pad = (n) => String(n).padStart(2, '0');

export function clock(ms) {
  if (typeof ms !== 'number') return '—';
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function stamp(ms) {
  if (typeof ms !== 'number') return '—';
  const d = new Date(ms);
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(ms)}`;
}

export function ago(ms, now = Date.now()) {
  if (typeof ms !== 'number') return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
}

export const SEVERITIES = ['P1', 'P2', 'P3', 'P4'];

export const STATE_LABEL = {
  normal: 'normal',
  unacked: 'UNACK',
  acked: 'ACKED',
  returned_unacked: 'RTN UNACK',
  shelved: 'shelved',
  suppressed: 'suppressed',
  out_of_service: 'out of service',
};

export function unacked(state) {
  return state === 'unacked' || state === 'returned_unacked';
}

export function zoneLabel(id) {
  return String(id).replace(/[-_]/g, ' ').replace(/\b\w/g, (c) => c.toUpperCase());
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
