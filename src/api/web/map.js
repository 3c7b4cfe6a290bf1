// The fleet map: every room placed by its latitude and longitude on an offline schematic of the
// supply zones (each zone's outline is the padded convex hull of its rooms; no tiles, nothing
// fetched). One SVG circle per room, built once; live updates only change the class of the
// circles that changed, batched into one animation frame, so a 2,100-room fleet stays fluid
// whatever the message rate. Away from a close view, rooms near one another on screen are drawn
// as one cluster marker (their count, in the colour of the worst state inside), recomputed when
// a view is committed and never during a gesture: the overview of 2,100 rooms is a hundred or so
// shapes to paint, not 2,100. Above the rooms, the crews' last positions (a diamond with the
// person's name; filled and toggled by field.js's CrewsOnMap from GET /api/v1/crews).

import { esc, nameLabel, zoneLabel } from './format.js';
import { t } from './i18n.js';
import { crewTip } from './field.js';

const NS = 'http://www.w3.org/2000/svg';
const WIDTH = 1000;
const MARGIN = 40;
// A view at most this fraction of the fleet's width is close: every room its own marker, labelled.
const CLOSE = 4;
// The side of the screen grid rooms are clustered on, in CSS pixels.
const CELL_PX = 56;
// A cluster's state is its worst room's: the lower the rank, the worse.
const RANK = { P1: 0, P2: 1, offline: 2, P3: 3, P4: 4, ok: 5 };

function el(name, attrs = {}, parent = null) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

// Andrew's monotone chain.
function hull(points) {
  const p = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (p.length < 3) return p;
  const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower = [];
  for (const q of p) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], q) <= 0) lower.pop();
    lower.push(q);
  }
  const upper = [];
  for (let i = p.length - 1; i >= 0; i--) {
    const q = p[i];
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], q) <= 0) upper.pop();
    upper.push(q);
  }
  upper.pop();
  lower.pop();
  return lower.concat(upper);
}

// The outline of a zone: the hull of small circles around its rooms (a rounded, padded hull),
// raised by `head` above its rooms so that the zone's label sits inside its own outline.
function outline(points, pad, head) {
  const ring = [];
  for (const [x, y] of points) {
    for (let k = 0; k < 12; k++) {
      const a = (k / 12) * 2 * Math.PI;
      ring.push([x + pad * Math.cos(a), y + pad * Math.sin(a)]);
      ring.push([x + pad * Math.cos(a), y - head + pad * Math.sin(a)]);
    }
  }
  const h = hull(ring);
  return `M${h.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join('L')}Z`;
}

export class FleetMap {
  constructor(svg, tip, { onOpen } = {}) {
    this.svg = svg;
    this.tip = tip;
    this.onOpen = onOpen || (() => {});
    this.rooms = new Map(); // id -> {info, circle, mark}
    this.zones = new Map(); // id -> {area, sub}
    this.dirty = new Map();
    this.frame = 0;
    this.clusters = []; // {members, xy, g, ring, disc, count, state}
    this.dirtyClusters = new Set();
    svg.addEventListener('click', (e) => {
      if (this.dragged) return; // the end of a pan, not a choice
      const marker = e.target.closest && e.target.closest('[data-cluster]');
      if (marker) return this.zoomTo(this.clusters[Number(marker.dataset.cluster)]);
      const id = e.target.dataset && e.target.dataset.room;
      if (id) this.onOpen(id);
    });
    svg.addEventListener('keydown', (e) => {
      const marker = e.target.closest && e.target.closest('[data-cluster]');
      if (marker && (e.key === 'Enter' || e.key === ' ')) {
        e.preventDefault();
        this.zoomTo(this.clusters[Number(marker.dataset.cluster)]);
      }
    });
    // A frame that changes size (the map shown again, a phone turned) clusters for its new size.
    if (window.ResizeObserver) new ResizeObserver(() => this.view && this.commit()).observe(svg.parentNode);
    svg.addEventListener('mousemove', (e) => this.hover(e));
    svg.addEventListener('mouseleave', () => (this.tip.hidden = true));
    this.view = null; // the viewBox shown: [x, y, w, h]
    this.full = null; // the whole fleet's viewBox
    this.wirePanZoom();
  }

  // Wheel and pinch zoom about the pointer, drag to pan. While a gesture lasts, the drawing
  // moves as one picture (a CSS transform the compositor applies: 2,100 circles and the base map
  // are not re-rendered every frame); 150 ms after the last event the view is committed to the
  // SVG's viewBox and drawn sharp, with the labels of a close view.
  wirePanZoom() {
    const svg = this.svg;
    const toSvg = (clientX, clientY) => {
      // The map's frame, not the SVG's own box (which a gesture's transform moves).
      const box = svg.parentNode.getBoundingClientRect();
      const [x, y, w, h] = this.view;
      const k = Math.max(w / box.width, h / box.height);
      const ox = x + (w - box.width * k) / 2;
      const oy = y + (h - box.height * k) / 2;
      return [ox + (clientX - box.left) * k, oy + (clientY - box.top) * k, k];
    };
    svg.addEventListener('wheel', (e) => {
      if (!this.view) return;
      e.preventDefault();
      const [px, py] = toSvg(e.clientX, e.clientY);
      this.zoom(Math.exp(e.deltaY * 0.0015), px, py, { live: true });
    }, { passive: false });
    const pointers = new Map();
    let last = null;
    svg.addEventListener('pointerdown', (e) => {
      if (!this.view) return;
      pointers.set(e.pointerId, [e.clientX, e.clientY]);
      last = null;
      this.dragged = false;
      this.pressed = [e.clientX, e.clientY];
    });
    const end = (e) => {
      pointers.delete(e.pointerId);
      last = null;
    };
    svg.addEventListener('pointerup', end);
    svg.addEventListener('pointercancel', end);
    svg.addEventListener('pointerleave', end);
    svg.addEventListener('pointermove', (e) => {
      if (!pointers.has(e.pointerId) || !this.view) return;
      pointers.set(e.pointerId, [e.clientX, e.clientY]);
      if (Math.hypot(e.clientX - this.pressed[0], e.clientY - this.pressed[1]) > 6) this.dragged = true;
      if (!this.dragged) return;
      const pts = [...pointers.values()];
      const cx = pts.reduce((s, p) => s + p[0], 0) / pts.length;
      const cy = pts.reduce((s, p) => s + p[1], 0) / pts.length;
      const spread = pts.length > 1 ? Math.hypot(pts[0][0] - pts[1][0], pts[0][1] - pts[1][1]) : 0;
      if (last && last.n === pts.length) {
        const [, , k] = toSvg(cx, cy);
        const [x, y, w, h] = this.view;
        this.setView([x - (cx - last.cx) * k, y - (cy - last.cy) * k, w, h], { live: true });
        if (spread && last.spread) {
          const [px, py] = toSvg(cx, cy);
          this.zoom(last.spread / spread, px, py, { live: true });
        }
      }
      last = { cx, cy, spread, n: pts.length };
    });
  }

  // Zooms by `factor` (< 1 closer) about the SVG point (px, py); never past the whole fleet.
  zoom(factor, px, py, how = {}) {
    if (!this.view) return;
    const [x, y, w, h] = this.view;
    const f = Math.min(Math.max(factor, 0.02 * this.full[2] / w), this.full[2] / w);
    if (px === undefined) [px, py] = [x + w / 2, y + h / 2];
    this.setView([px - (px - x) * f, py - (py - y) * f, w * f, h * f], how);
  }

  reset() {
    if (this.full) this.setView([...this.full]);
  }

  // Shows the view `v` ([x, y, w, h] in map units): at once, or with `live` (a gesture under
  // way) as a transform of the view last drawn, committed when the gesture pauses.
  setView(v, { live = false } = {}) {
    this.view = v;
    clearTimeout(this.commitTimer);
    if (live && this.drawn) {
      this.svg.style.transform = this.transformFrom(this.drawn, v);
      this.commitTimer = setTimeout(() => this.commit(), 150);
    } else {
      this.commit();
    }
  }

  commit() {
    this.drawn = [...this.view];
    this.svg.setAttribute('viewBox', this.view.map((n) => n.toFixed(1)).join(' '));
    this.svg.style.transform = '';
    this.recluster();
    this.labelsSoon();
  }

  // Whether the committed view is close: every room its own marker.
  close() {
    return this.drawn[2] <= this.full[2] / CLOSE;
  }

  // Clusters the rooms for the committed view: on a grid of CELL_PX screen pixels anchored to
  // the map (so that a pan at one scale keeps the same clusters), a cell holding two rooms or more
  // is one marker at their centroid; a close view has none. Markers keep a constant size on screen.
  recluster() {
    if (!this.dots || !this.full) return;
    const box = this.svg.parentNode.getBoundingClientRect();
    for (const room of this.rooms.values()) room.cluster = null;
    this.clusters = [];
    this.dirtyClusters.clear();
    this.clusterLayer.replaceChildren();
    if (box.width && box.height && !this.close()) {
      const [, , w, h] = this.drawn;
      const k = Math.max(w / box.width, h / box.height); // map units per CSS pixel
      const cell = CELL_PX * k;
      const cells = new Map();
      for (const room of this.rooms.values()) {
        const key = `${Math.floor(room.xy[0] / cell)},${Math.floor(room.xy[1] / cell)}`;
        const members = cells.get(key);
        if (members) members.push(room);
        else cells.set(key, [room]);
      }
      for (const members of cells.values()) {
        if (members.length < 2) continue;
        const xy = [0, 1].map((a) => members.reduce((s, m) => s + m.xy[a], 0) / members.length);
        const index = this.clusters.length;
        const radius = (9 + 2.2 * Math.log2(members.length)) * k;
        const g = el('g', { class: 'cluster', 'data-cluster': index, tabindex: '0', role: 'button' }, this.clusterLayer);
        // A finger's target (44 px across) even for a small cluster.
        el('circle', { class: 'hit', cx: xy[0].toFixed(2), cy: xy[1].toFixed(2), r: (Math.max(radius + 4 * k, 22 * k)).toFixed(2) }, g);
        const ring = el('circle', { class: 'ring', cx: xy[0].toFixed(2), cy: xy[1].toFixed(2), r: (radius + 4 * k).toFixed(2), 'stroke-width': (3 * k).toFixed(2) }, g);
        const disc = el('circle', { class: 'disc', cx: xy[0].toFixed(2), cy: xy[1].toFixed(2), r: radius.toFixed(2), 'stroke-width': (1.2 * k).toFixed(2) }, g);
        const count = el('text', { class: 'count', x: xy[0].toFixed(2), y: (xy[1] + 3.8 * k).toFixed(2), 'font-size': (11 * k).toFixed(2), 'text-anchor': 'middle' }, g);
        count.textContent = members.length;
        const cluster = { index, members, xy, g, ring, disc, count, state: null };
        for (const m of members) m.cluster = cluster;
        this.clusters.push(cluster);
        this.restyle(cluster);
      }
    }
    for (const room of this.rooms.values()) this.paint(room);
  }

  // A cluster's state (its worst room's), whether it holds an unacknowledged P1, how many of its
  // rooms are in alarm or offline, and whether it holds a room the search found.
  summary(cluster) {
    let state = 'ok';
    let alarmed = 0;
    let offline = 0;
    let unackedP1 = false;
    let found = false;
    for (const room of cluster.members) {
      const m = room.mark;
      const off = m ? m.status === 'offline' : room.info.online === false;
      const s = m && m.worst ? m.worst : off ? 'offline' : 'ok';
      if (RANK[s] < RANK[state]) state = s;
      if (m && m.worst) alarmed += 1;
      if (off) offline += 1;
      if (m && m.worst === 'P1' && m.unacked) unackedP1 = true;
      if (room.found) found = true;
    }
    return { state, alarmed, offline, unackedP1, found, n: cluster.members.length };
  }

  restyle(cluster) {
    const s = this.summary(cluster);
    const cls = `cluster st-${s.state}${s.unackedP1 ? ' unack' : ''}${s.found ? ' found' : ''}`;
    if (cluster.g.getAttribute('class') !== cls) {
      cluster.g.setAttribute('class', cls);
      // Clusters in alarm are drawn last, over their neighbours.
      if (s.state !== 'ok') cluster.g.parentNode.appendChild(cluster.g);
    }
    const label = t('map.cluster', { n: s.n, m: s.alarmed });
    if (cluster.g.getAttribute('aria-label') !== label) cluster.g.setAttribute('aria-label', label);
    cluster.state = s;
  }

  // Zooms to a cluster's rooms: the view fits them (with a margin), so that they split.
  zoomTo(cluster) {
    if (!cluster || !this.full) return;
    const xs = cluster.members.map((m) => m.xy[0]);
    const ys = cluster.members.map((m) => m.xy[1]);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const box = this.svg.parentNode.getBoundingClientRect();
    const aspect = box.width && box.height ? box.height / box.width : this.full[3] / this.full[2];
    const w = Math.min(this.full[2], Math.max(this.full[2] * 0.02, 1.4 * Math.max(x1 - x0, (y1 - y0) / aspect)));
    const h = w * aspect;
    this.setView([(x0 + x1) / 2 - w / 2, (y0 + y1) / 2 - h / 2, w, h]);
  }

  // A room's circle: its state's class, found by the search, hidden inside a cluster (`data-in`).
  paint(room) {
    const m = room.mark;
    const off = m ? m.status === 'offline' : room.info.online === false;
    const base = off ? 'room offline' : m && m.worst ? `room sev-${m.worst}` : 'room';
    const cls = `${base}${room.found ? ' found' : ''}${room.cluster ? ' clustered' : ''}`;
    if (room.circle.getAttribute('class') !== cls) {
      room.circle.setAttribute('class', cls);
      // Abnormal rooms are drawn last, on top of their normal neighbours.
      if (base !== 'room') room.circle.parentNode.appendChild(room.circle);
    }
    // The cluster it is drawn in (its index), for the tests and the developer tools.
    const inside = room.cluster ? String(room.cluster.index) : null;
    if (room.circle.getAttribute('data-in') !== inside) {
      if (inside === null) room.circle.removeAttribute('data-in');
      else room.circle.setAttribute('data-in', inside);
    }
  }

  // The CSS transform that shows view `to` in place of the drawn view `from` (both fitted to the
  // frame as preserveAspectRatio="xMidYMid meet" fits them).
  transformFrom(from, to) {
    const box = this.svg.parentNode.getBoundingClientRect();
    const fit = ([x, y, w, h]) => {
      const k = Math.max(w / box.width, h / box.height);
      return { x, y, k, ox: (box.width - w / k) / 2, oy: (box.height - h / k) / 2 };
    };
    const a = fit(from);
    const b = fit(to);
    const s = a.k / b.k;
    const tx = (a.x - b.x) / b.k + b.ox - a.ox * s;
    const ty = (a.y - b.y) / b.k + b.oy - a.oy * s;
    return `matrix(${s}, 0, 0, ${s}, ${tx}, ${ty})`;
  }

  // Room labels (id and name) only in a close view, at most a few hundred: at the whole
  // fleet's scale they would be a grey smudge.
  labelsSoon() {
    clearTimeout(this.labelTimer);
    this.labelTimer = setTimeout(() => this.drawLabels(), 120);
  }

  drawLabels() {
    if (!this.labels || !this.view) return;
    this.labels.replaceChildren();
    const [x, y, w, h] = this.view;
    if (w > this.full[2] / CLOSE) return;
    let shown = 0;
    for (const [id, room] of this.rooms) {
      if (room.cluster) continue;
      const [cx, cy] = room.xy;
      if (cx < x || cx > x + w || cy < y || cy > y + h) continue;
      if (++shown > 300) break;
      const label = el('text', { class: 'room-label', x: (cx + this.r * 1.4).toFixed(1), y: (cy + 3).toFixed(1) }, this.labels);
      label.textContent = `${id} ${nameLabel(room.info)}`;
      label.setAttribute('font-size', (9 * w / this.full[2] * 4).toFixed(2));
    }
  }

  // The rooms whose id, name or pinyin contain `query` (case-insensitive), best first: an id
  // that starts with it, then the rest in id order. Marks them on the map.
  find(query) {
    const q = query.trim().toLowerCase();
    for (const room of this.rooms.values()) {
      if (room.found) {
        room.found = false;
        this.paint(room);
        if (room.cluster) this.dirtyClusters.add(room.cluster);
      }
    }
    if (!q) {
      this.schedule();
      return [];
    }
    const hits = [];
    for (const [id, room] of this.rooms) {
      const i = room.info;
      const text = `${id} ${i.name || ''} ${i.name_pinyin || ''} ${i.address || ''}`.toLowerCase();
      if (text.includes(q)) hits.push(room);
    }
    hits.sort((a, b) => Number(!a.info.id.toLowerCase().startsWith(q)) - Number(!b.info.id.toLowerCase().startsWith(q)) || a.info.id.localeCompare(b.info.id));
    for (const room of hits) {
      room.found = true;
      this.paint(room);
      if (room.cluster) this.dirtyClusters.add(room.cluster);
    }
    this.schedule();
    return hits.map((r) => r.info);
  }

  // Centres the view on a room, close enough to read its neighbours' labels.
  focus(id) {
    const room = this.rooms.get(id);
    if (!room || !this.full) return;
    const w = this.full[2] / 8;
    const h = this.full[3] / 8;
    this.setView([room.xy[0] - w / 2, room.xy[1] - h / 2, w, h]);
  }

  // Builds the map from the inventory (`GET /api/v1/rooms`) and the site's base map (GeoJSON
  // district boundaries and coastline, or null): once per session.
  setRooms(rooms, basemap = null) {
    this.svg.replaceChildren();
    this.rooms.clear();
    this.zones.clear();
    this.dots = null;
    this.clusters = [];
    if (!rooms.length) return;
    const lat0 = rooms.reduce((s, r) => s + r.lat, 0) / rooms.length;
    const kx = Math.cos((lat0 * Math.PI) / 180);
    const xs = rooms.map((r) => r.lon * kx);
    const ys = rooms.map((r) => -r.lat);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    const span = Math.max(x1 - x0, y1 - y0, 1e-4);
    const scale = (WIDTH - 2 * MARGIN) / Math.max(x1 - x0, 1e-4);
    const height = Math.max(300, Math.min(1400, (y1 - y0) * scale + 2 * MARGIN));
    const s = Math.min(scale, (height - 2 * MARGIN) / Math.max(y1 - y0, 1e-4 * span));
    const ox = (WIDTH - (x1 - x0) * s) / 2;
    const oy = (height - (y1 - y0) * s) / 2;
    const project = (r) => [ox + (r.lon * kx - x0) * s, oy + (-r.lat - y0) * s];
    this.project = project;
    this.full = [0, 0, WIDTH, Math.round(height)];
    this.setView([...this.full]);
    this.svg.setAttribute('preserveAspectRatio', 'xMidYMid meet');

    // The base map: land inside the districts' boundaries, the sea around them.
    this.svg.classList.toggle('with-basemap', Boolean(basemap));
    if (basemap) {
      const land = el('g', { class: 'basemap' }, this.svg);
      const ring = (r) => `M${r.map(([lon, lat]) => project({ lon, lat }).map((v) => v.toFixed(1)).join(',')).join('L')}Z`;
      for (const f of basemap.features || []) {
        const g = f.geometry || {};
        const polygons = g.type === 'Polygon' ? [g.coordinates] : g.type === 'MultiPolygon' ? g.coordinates : [];
        const d = polygons.map((p) => p.map(ring).join('')).join('');
        if (d) el('path', { class: 'district', d, 'data-name': f.properties && f.properties.name }, land);
      }
    }

    // A graticule every 0.05° so distances read at a glance, labelled on the edges.
    const grid = el('g', { class: 'graticule-g' }, this.svg);
    const step = 0.05;
    const lonMin = Math.min(...rooms.map((r) => r.lon));
    const lonMax = Math.max(...rooms.map((r) => r.lon));
    const latMin = Math.min(...rooms.map((r) => r.lat));
    const latMax = Math.max(...rooms.map((r) => r.lat));
    for (let lon = Math.ceil(lonMin / step) * step; lon <= lonMax; lon += step) {
      const [x] = project({ lon, lat: lat0 });
      el('line', { class: 'graticule', x1: x, x2: x, y1: 0, y2: height }, grid);
      el('text', { class: 'grid-label', x: x + 3, y: height - 4 }, grid).textContent = t('map.lon', { v: lon.toFixed(2) });
    }
    for (let lat = Math.ceil(latMin / step) * step; lat <= latMax; lat += step) {
      const [, y] = project({ lon: lonMin, lat });
      el('line', { class: 'graticule', x1: 0, x2: WIDTH, y1: y, y2: y }, grid);
      el('text', { class: 'grid-label', x: 4, y: y - 3 }, grid).textContent = t('map.lat', { v: lat.toFixed(2) });
    }

    const r = Math.max(2.6, Math.min(7, 110 / Math.sqrt(rooms.length)));
    const byZone = new Map();
    for (const room of rooms) {
      const xy = project(room);
      if (!byZone.has(room.zone)) byZone.set(room.zone, []);
      byZone.get(room.zone).push({ room, xy });
    }
    const areas = el('g', {}, this.svg);
    const dots = el('g', {}, this.svg);
    // Labels above the rooms, with a halo, so that a dense zone never hides its name.
    const labels = el('g', {}, this.svg);
    this.r = r;
    for (const [zone, members] of [...byZone].sort(([a], [b]) => a.localeCompare(b))) {
      const pts = members.map((m) => m.xy);
      const head = 30;
      const area = el('path', { class: 'zone-area', d: outline(pts, r * 2.5, head), 'data-zone': zone }, areas);
      // The label above the zone's topmost room, in the band the outline keeps for it.
      const [tx, ty] = pts.reduce((a, b) => (b[1] < a[1] ? b : a));
      const cx = Math.min(WIDTH - 60, Math.max(60, tx));
      const label = el('text', { class: 'zone-label', x: cx.toFixed(1), y: Math.max(14, ty - head + 4).toFixed(1), 'text-anchor': 'middle' }, labels);
      label.textContent = zoneLabel(zone);
      const sub = el('tspan', { class: 'zone-sub', x: cx.toFixed(1), dy: '13' }, label);
      sub.textContent = t('map.rooms', { n: members.length });
      this.zones.set(zone, { area, sub, count: members.length });
    }
    for (const [, members] of byZone) {
      for (const { room, xy } of members) {
        const c = el('circle', { class: 'room', cx: xy[0].toFixed(1), cy: xy[1].toFixed(1), r: r.toFixed(1), 'data-room': room.id }, dots);
        // Before the first live message, the inventory's own online flag (paint).
        this.rooms.set(room.id, { info: room, circle: c, mark: null, xy, cluster: null, found: false });
      }
    }
    this.dots = dots;
    this.clusterLayer = el('g', { class: 'clusters' }, this.svg);
    this.labels = el('g', {}, this.svg);
    // Crews above everything (field.js's CrewsOnMap fills it).
    this.crewLayer = el('g', { class: 'crews' }, this.svg);
    this.crews = new Map();
    if (this.crewsHidden) this.crewLayer.setAttribute('display', 'none');
    this.commit();
  }

  // The crews' last positions (GET /api/v1/crews): a distinct marker (a square with the
  // person's name) per crew member, redrawn whole (a few dozen at most).
  setCrews(list) {
    if (!this.crewLayer || !this.project) return;
    this.crewLayer.replaceChildren();
    this.crews = new Map();
    const a = this.r * 1.7;
    for (const c of list) {
      const [x, y] = this.project(c);
      const g = el('g', { class: `crew st-${c.state}`, 'data-crew': c.user }, this.crewLayer);
      el('rect', { class: 'crew-hit', x: (x - 3 * a).toFixed(1), y: (y - 3 * a).toFixed(1), width: (6 * a).toFixed(1), height: (6 * a).toFixed(1) }, g);
      el('rect', { class: 'crew-mark', x: (x - a).toFixed(1), y: (y - a).toFixed(1), width: (2 * a).toFixed(1), height: (2 * a).toFixed(1), transform: `rotate(45 ${x.toFixed(1)} ${y.toFixed(1)})` }, g);
      const label = el('text', { class: 'crew-label', x: (x + a * 1.6).toFixed(1), y: (y + a * 0.5).toFixed(1), translate: 'no' }, g);
      label.textContent = c.user;
      this.crews.set(c.user, c);
    }
  }

  showCrews(on) {
    this.crewsHidden = !on;
    if (this.crewLayer) {
      if (on) this.crewLayer.removeAttribute('display');
      else this.crewLayer.setAttribute('display', 'none');
    }
  }

  // A RoomMark from the `fleet` topic; applied at the next frame.
  mark(m) {
    this.dirty.set(m.room, m);
    this.schedule();
  }

  zone(summary) {
    const z = this.zones.get(summary.zone);
    if (!z) return;
    const a = summary.alarms || {};
    const active = (a.P1 || 0) + (a.P2 || 0) + (a.P3 || 0) + (a.P4 || 0);
    const parts = [t('map.rooms', { n: summary.rooms })];
    if (summary.offline) parts.push(t('map.offline_n', { n: summary.offline }));
    if (active) parts.push(t('map.alarms_n', { n: active }));
    const text = parts.join(' · ');
    if (z.sub.textContent !== text) z.sub.textContent = text;
    z.area.classList.toggle('alarm', active > 0 || summary.offline > 0);
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  flush() {
    this.frame = 0;
    for (const [id, m] of this.dirty) {
      const room = this.rooms.get(id);
      if (!room) continue;
      room.mark = m;
      this.paint(room);
      if (room.cluster) this.dirtyClusters.add(room.cluster);
    }
    this.dirty.clear();
    for (const cluster of this.dirtyClusters) this.restyle(cluster);
    this.dirtyClusters.clear();
  }

  hover(e) {
    const crew = e.target.closest && e.target.closest('[data-crew]');
    if (crew && this.crews && this.crews.has(crew.dataset.crew)) {
      this.tip.innerHTML = crewTip(this.crews.get(crew.dataset.crew));
      this.place(e);
      return;
    }
    const marker = e.target.closest && e.target.closest('[data-cluster]');
    const cluster = marker && this.clusters[Number(marker.dataset.cluster)];
    if (cluster) {
      const s = this.summary(cluster);
      const parts = [];
      if (s.offline) parts.push(t('map.offline_n', { n: s.offline }));
      if (s.unackedP1) parts.push(t('map.unacked_p1'));
      this.tip.innerHTML = `<b>${esc(t('map.cluster', { n: s.n, m: s.alarmed }))}</b>` +
        (parts.length ? `<br>${esc(parts.join(t('map.list_sep')))}` : '') + `<br>${esc(t('map.cluster_hint'))}`;
      this.place(e);
      return;
    }
    const id = e.target.dataset && e.target.dataset.room;
    const room = id && this.rooms.get(id);
    if (!room) {
      this.tip.hidden = true;
      return;
    }
    const m = room.mark || {};
    const status = m.status || (room.info.online === false ? 'offline' : 'online');
    const alarms = [t('map.alarms_n', { n: m.alarms })];
    if (m.worst) alarms.push(t('map.worst', { sev: m.worst }));
    if (m.unacked) alarms.push(t('map.unacked_n', { n: m.unacked }));
    this.tip.innerHTML = `<b>${esc(id)}</b> ${esc(nameLabel(room.info))}<br>${esc(zoneLabel(room.info.zone))} · ${esc(t(`map.status_${status}`))}` +
      (m.alarms ? `<br>${esc(alarms.join(t('map.list_sep')))}` : '');
    this.place(e);
  }

  place(e) {
    const box = this.svg.parentNode.getBoundingClientRect();
    this.tip.style.left = `${e.clientX - box.left + 12}px`;
    this.tip.style.top = `${e.clientY - box.top + 12}px`;
    this.tip.hidden = false;
  }
}
