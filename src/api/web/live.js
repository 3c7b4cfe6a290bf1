// The one module that speaks the WebSocket protocol (schemas/json/ws/PROTOCOL.md): the screens
// subscribe to topics and get the protocol's own `snapshot` and `delta` messages, in order.
//
// No silent gaps: every subscription remembers the last `seq` it processed; after a reconnect
// the client authenticates with its session id and re-subscribes with `since`, so the server
// replays what was missed or answers with a `resync` snapshot. A delta whose `seq` is not the
// next one (which the server never sends) is treated the same way: reconnect and resume.
//
// When the node cannot be reached over a WebSocket at all (an intermediary that refuses the
// upgrade), the same subscriptions are served by polling the REST API, producing the same
// message shapes, and the link state says `polling` so the operator knows updates are slower.
//
// A link can also die without closing (a node that hangs, a half-open TCP connection): the
// client pings every PING_MS and counts any message as a sign of life; `health()` says how
// long the node has been silent, and a socket silent for STALE_MS is given up (`stale`) and
// reopened. The console's banner reads `health()`.
//
// On a cluster (`GET /api/v1/cluster` lists the members) every node shows every room: when this
// page's node cannot be reached, the socket tries the other members in turn, authenticates
// with the same token (identity is shared) and re-subscribes with `since`; the other node
// knows nothing of the old session, so every subscription starts again from a snapshot flagged
// `resync` — never a silent gap — and `health()` says through which node (`via`) and that the
// views were resynchronised (`resyncMs`).

import { session, get, post, BACKGROUND } from './api.js';

const POLL_MS = 2000;
const COMMAND_TIMEOUT_MS = 15000;
// Consecutive failed socket openings (never authenticated) before falling back to polling.
const FALLBACK_AFTER = 3;
const PING_MS = 5000;
export const STALE_MS = 12000;

export class Live {
  constructor({ onLink } = {}) {
    this.subs = new Map(); // id -> {id, topic, filter, handler, seq, live}
    this.pending = new Map(); // command id -> {resolve, reject, timer}
    this.onLink = onLink || (() => {});
    this.ws = null;
    this.sessionId = null;
    this.backoff = 500;
    this.failures = 0;
    this.mode = 'connecting';
    this.nextCommand = 1;
    this.closed = false;
    this.pollTimer = null;
    this.lastHeard = Date.now();
    this.downSince = null;
    this.watchdog = null;
    this.lastPing = 0;
    // Where the socket may connect: this page's node first, then the cluster's other members.
    this.nodes = [{ url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`, node: null }];
    this.nodeAt = 0;
    this.membersRead = false;
    this.lastResync = null;
  }

  start() {
    this.lastHeard = Date.now();
    this.connect();
    this.watchdog = setInterval(() => this.watch(), 1000);
  }

  // The link as the banner needs it: the mode, how long the node has been silent, and since
  // when the socket has been down (null while it is up).
  health(now = Date.now()) {
    return {
      mode: this.mode,
      silentMs: now - this.lastHeard,
      downMs: this.downSince === null ? 0 : now - this.downSince,
      // The member the socket reached instead of this page's node (null: this page's node).
      via: this.nodeAt === 0 ? null : this.nodes[this.nodeAt].node,
      // How long ago a reconnection made the node resend whole views (null: never).
      resyncMs: this.lastResync === null ? null : now - this.lastResync,
    };
  }

  watch() {
    if (this.mode !== 'up' || !this.ws) return;
    if (Date.now() - this.lastHeard > STALE_MS) {
      // Silent past its pings: give the socket up; its close reconnects.
      this.link('stale');
      this.ws.close(4002, 'no answer');
      return;
    }
    const now = Date.now();
    if (now - (this.lastPing || 0) >= PING_MS) {
      this.lastPing = now;
      this.send({ type: 'ping', id: 'heartbeat' });
    }
  }

  stop() {
    this.closed = true;
    clearTimeout(this.pollTimer);
    clearInterval(this.watchdog);
    if (this.ws) this.ws.close(1000);
    for (const p of this.pending.values()) p.reject(Object.assign(new Error('signed out'), { code: 'unauthorized' }));
    this.pending.clear();
  }

  // Subscribes; `handler(msg)` gets each snapshot and delta. Returns a function that ends it.
  subscribe(id, topic, filter, handler) {
    const sub = { id, topic, filter, handler, seq: null, live: false };
    this.subs.set(id, sub);
    if (this.mode === 'up') this.sendSubscribe(sub);
    if (this.mode === 'polling') this.pollSoon();
    return () => {
      if (this.subs.get(id) !== sub) return;
      this.subs.delete(id);
      if (this.mode === 'up') this.send({ type: 'unsubscribe', id });
    };
  }

  // An alarm command (`ack`, `shelve`, `unshelve`, `reset`); resolves with the result's data.
  command(command, alarm, { comment = '', reason, duration } = {}) {
    if (this.mode !== 'up') return this.restCommand(command, alarm, { comment, reason, duration });
    const id = `c${this.nextCommand++}`;
    const msg = { type: 'command', id, command, alarm, comment };
    if (duration) msg.for = duration;
    if (reason) msg.reason = reason;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(Object.assign(new Error(`no answer to ${command} within ${COMMAND_TIMEOUT_MS / 1000} s`), { code: 'timeout' }));
      }, COMMAND_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.send(msg);
    });
  }

  // --- the socket ---

  link(mode, detail) {
    if (mode === 'up') this.downSince = null;
    else if (this.downSince === null && mode !== 'connecting') this.downSince = Date.now();
    this.mode = mode;
    this.onLink(mode, detail);
  }

  connect() {
    if (this.closed) return;
    const s = session();
    const { url } = this.nodes[this.nodeAt] || this.nodes[0];
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    let authed = false;
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: 'auth', token: (s && s.token) || '', resume: this.sessionId }));
    };
    ws.onmessage = (ev) => {
      this.lastHeard = Date.now();
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg.type === 'auth_ok') {
        authed = true;
        this.failures = 0;
        this.backoff = 500;
        clearTimeout(this.pollTimer);
        // Another node knows nothing of this session: `since` makes it answer `resync`.
        const elsewhere = this.sessionId !== null && !msg.resumed;
        this.sessionId = msg.session;
        // A new session holds nothing: every subscription starts again from a snapshot.
        if (!msg.resumed && !elsewhere) for (const sub of this.subs.values()) sub.seq = null;
        this.link('up', this.health().via);
        this.readMembers();
        for (const sub of this.subs.values()) this.sendSubscribe(sub);
        return;
      }
      this.receive(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      for (const sub of this.subs.values()) sub.live = false;
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(Object.assign(new Error('connection lost'), { code: 'network' }));
        this.pending.delete(id);
      }
      if (this.closed) return;
      if (ev.code === 1008) {
        // The token was refused: the session is over (the reason says why: session_idle, …).
        window.dispatchEvent(new CustomEvent('cistern:unauthorized', { detail: { code: ev.reason || 'unauthorized' } }));
        return;
      }
      if (!authed) {
        this.failures += 1;
        // This node cannot be reached: try the cluster's next member.
        if (this.nodes.length > 1) this.nodeAt = (this.nodeAt + 1) % this.nodes.length;
      }
      if (this.failures >= FALLBACK_AFTER * this.nodes.length) {
        this.link('polling');
        this.pollSoon();
      } else {
        // The close code, not its (English) reason: the console words it.
        this.link('down', String(ev.code));
      }
      this.retry();
    };
  }

  // The cluster's members (once): the nodes the socket may try when this page's node is down.
  async readMembers() {
    if (this.membersRead) return;
    this.membersRead = true;
    try {
      const c = await get('/api/v1/cluster');
      for (const m of c.members || []) {
        if (!m.http || m.node === c.node) continue;
        const url = `${m.http.replace(/^http/, 'ws').replace(/\/$/, '')}/ws`;
        if (!this.nodes.some((n) => n.url === url)) this.nodes.push({ url, node: m.node });
      }
    } catch {
      // A node that is no cluster member (or an older one): this page's node only.
    }
  }

  retry() {
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, 10000);
    setTimeout(() => this.connect(), delay);
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  sendSubscribe(sub) {
    const msg = { type: 'subscribe', id: sub.id, topic: sub.topic, filter: sub.filter };
    if (sub.seq !== null) msg.since = sub.seq;
    sub.live = true;
    this.send(msg);
  }

  receive(msg) {
    switch (msg.type) {
      case 'snapshot': {
        const sub = this.subs.get(msg.id);
        if (!sub) return;
        if (msg.resync) this.lastResync = Date.now();
        sub.seq = msg.seq;
        sub.handler(msg);
        return;
      }
      case 'delta': {
        const sub = this.subs.get(msg.id);
        if (!sub) return;
        if (sub.seq !== null && msg.seq !== sub.seq + 1) {
          // A gap: resume through a reconnect, which replays or resyncs.
          if (this.ws) this.ws.close(4001, 'sequence gap');
          return;
        }
        sub.seq = msg.seq;
        sub.handler(msg);
        return;
      }
      case 'result':
      case 'error': {
        const p = msg.id && this.pending.get(msg.id);
        if (p) {
          clearTimeout(p.timer);
          this.pending.delete(msg.id);
          if (msg.type === 'result' && msg.ok !== false) p.resolve(msg.data);
          else p.reject(Object.assign(new Error(msg.message || 'refused'), { code: msg.code }));
          return;
        }
        if (msg.type === 'error' && msg.id && this.subs.has(msg.id)) {
          const sub = this.subs.get(msg.id);
          sub.handler({ type: 'error', id: msg.id, code: msg.code, message: msg.message });
        }
        return;
      }
      default:
        return;
    }
  }

  // --- the REST fallback ---

  pollSoon() {
    clearTimeout(this.pollTimer);
    this.pollTimer = setTimeout(() => this.poll(), 0);
  }

  async poll() {
    if (this.mode !== 'polling' || this.closed) return;
    const subs = [...this.subs.values()];
    const need = new Set(subs.map((s) => s.topic));
    try {
      const alarms = need.has('alarms') || need.has('fleet') ? (await get('/api/v1/alarms', BACKGROUND)).alarms : [];
      const rooms = need.has('fleet') ? (await get('/api/v1/rooms', BACKGROUND)).rooms : [];
      for (const sub of subs) {
        let data;
        if (sub.topic === 'alarms') data = { alarms: alarms.filter((a) => matches(a, sub.filter)) };
        else if (sub.topic === 'fleet') data = fleetSnapshot(rooms, alarms, sub.filter);
        else if (sub.topic === 'room') data = await get(`/api/v1/rooms/${encodeURIComponent(sub.filter.room)}`, BACKGROUND);
        else continue;
        if (this.subs.get(sub.id) !== sub) continue;
        this.lastHeard = Date.now();
        sub.seq = 0;
        sub.handler({ type: 'snapshot', id: sub.id, topic: sub.topic, seq: 0, resync: true, data });
      }
    } catch {
      // The next round tries again; a 401 has already ended the session.
    }
    clearTimeout(this.pollTimer);
    this.pollTimer = setTimeout(() => this.poll(), POLL_MS);
  }

  async restCommand(command, alarm, { comment, reason, duration }) {
    const s = session() || {};
    const body = { user: s.user || 'operator', comment };
    if (command === 'shelve') {
      body.reason = reason || comment;
      body.for = duration;
    }
    const at = alarm.indexOf('/');
    const path = `/api/v1/alarms/${encodeURIComponent(alarm.slice(0, at))}/${encodeURIComponent(alarm.slice(at + 1))}/${command}`;
    const data = await post(path, body);
    if (this.mode === 'polling') this.pollSoon();
    return data;
  }
}

const BOARD_HIDDEN = new Set(['shelved', 'suppressed', 'out_of_service']);
const RANK = { P1: 1, P2: 2, P3: 3, P4: 4 };

function matches(a, f = {}) {
  if (f.state && f.state.length && !f.state.includes(a.state)) return false;
  if (f.severity && f.severity.length && !f.severity.includes(a.severity)) return false;
  if (f.zone && a.zone !== f.zone) return false;
  if (f.room && a.room !== f.room) return false;
  return true;
}

// The `fleet` topic's snapshot, computed from the REST room list and alarm board.
function fleetSnapshot(rooms, alarms, filter = {}) {
  const zones = new Map();
  const marks = new Map();
  for (const r of rooms) {
    if (filter.zone && r.zone !== filter.zone) continue;
    let z = zones.get(r.zone);
    if (!z) {
      z = { zone: r.zone, rooms: 0, online: 0, offline: 0, alarms: { P1: 0, P2: 0, P3: 0, P4: 0 }, unacked: 0 };
      zones.set(r.zone, z);
    }
    z.rooms += 1;
    if (r.online) z.online += 1;
    else z.offline += 1;
    marks.set(r.id, { room: r.id, zone: r.zone, status: r.online ? 'online' : 'offline', worst: null, alarms: 0, unacked: 0 });
  }
  for (const a of alarms) {
    const z = zones.get(a.zone);
    const un = a.state === 'unacked' || a.state === 'returned_unacked';
    if (z && a.state !== 'normal') {
      z.alarms[a.severity] += 1;
      if (un) z.unacked += 1;
    }
    const m = marks.get(a.room);
    if (!m || a.state === 'normal') continue;
    m.alarms += 1;
    if (un) m.unacked += 1;
    if (a.active && !BOARD_HIDDEN.has(a.state) && (!m.worst || RANK[a.severity] < RANK[m.worst])) m.worst = a.severity;
  }
  const data = { zones: [...zones.values()] };
  if (filter.rooms) data.rooms = [...marks.values()];
  return data;
}
