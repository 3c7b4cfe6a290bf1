// The wall screen (大屏, issue 22 item 6, #/wall): made for a 1920×1080 display across a
// control room — dark, large type, the top bar hidden — cycling every 20 s through the
// default boards (director, dispatcher, engineer: each tile's fleet figure and sparkline) and
// the zones ranked by room score with their weakest dimension. Each slide fetches fresh
// figures. Pause, next and exit sit in a corner for whoever stands at it.

import * as api from './api.js';
import { esc } from './format.js';
import { t, num, clock, apiError } from './i18n.js';
import { fmtValue, indName, sparkSvg } from './cockpit.js';

const SLIDE_MS = 20000;
const SLIDES = ['director', 'dispatcher', 'engineer', 'zones'];

export class WallPage {
  constructor(root) {
    this.root = root;
    this.seq = 0;
    this.slide = 0;
    this.timer = null;
    this.paused = false;
  }

  close() {
    this.seq += 1;
    clearTimeout(this.timer);
    this.timer = null;
    document.body.classList.remove('wall-mode');
  }

  open() {
    this.close();
    document.body.classList.add('wall-mode');
    this.root.innerHTML = `<div class="wall">
      <header class="wall-head"><h1>${esc(t('wall.title'))}</h1><span id="wall-slide" class="wall-slide"></span><span id="wall-clock" class="wall-clock" translate="no"></span></header>
      <div id="wall-body" class="wall-body"></div>
      <div class="wall-ctl">
        <button class="ghost" id="wall-pause">${esc(t('wall.pause'))}</button>
        <button class="ghost" id="wall-next">${esc(t('wall.next'))}</button>
        <a class="button ghost" href="#/cockpit" id="wall-exit">${esc(t('wall.exit'))}</a>
      </div>
    </div>`;
    this.root.querySelector('#wall-pause').addEventListener('click', (e) => {
      this.paused = !this.paused;
      e.target.textContent = this.paused ? t('wall.play') : t('wall.pause');
      if (!this.paused) this.schedule(this.seq);
      else clearTimeout(this.timer);
    });
    this.root.querySelector('#wall-next').addEventListener('click', () => {
      this.slide = (this.slide + 1) % SLIDES.length;
      this.show(this.seq);
    });
    this.show(this.seq);
  }

  schedule(seq) {
    clearTimeout(this.timer);
    if (this.paused) return;
    this.timer = setTimeout(() => {
      if (seq !== this.seq) return;
      this.slide = (this.slide + 1) % SLIDES.length;
      this.show(seq);
    }, SLIDE_MS);
  }

  async show(seq) {
    const which = SLIDES[this.slide];
    const body = this.root.querySelector('#wall-body');
    const label = this.root.querySelector('#wall-slide');
    try {
      if (which === 'zones') {
        const d = await api.get('/api/v1/analysis/scores');
        if (seq !== this.seq) return;
        label.textContent = t('wall.zones');
        const zones = [...d.zones].sort((a, b) => (b.score ?? -1) - (a.score ?? -1));
        body.innerHTML = `<table class="wall-zones"><tbody>${zones
          .map((z) => `<tr><td translate="no">${esc(z.name || z.zone)}</td><td class="n wall-big">${z.score === null || z.score === undefined ? '—' : esc(num(z.score, 1))}</td><td>${esc(t(`ranking.dim.${z.weakest}`))}</td></tr>`)
          .join('')}</tbody></table>`;
      } else {
        const b = await api.get(`/api/v1/cockpit/board?kind=${which}`);
        if (seq !== this.seq) return;
        label.textContent = t('wall.board', { kind: t(`cockpit.kind_${which}`) });
        body.innerHTML = `<div class="wall-tiles">${b.tiles
          .map((tile) => `<div class="wall-tile" data-ind="${esc(tile.indicator.id)}"><div class="wall-name">${esc(indName(tile.indicator.id))}</div>
            <div class="wall-value" translate="no">${esc(fmtValue(tile.indicator, tile.value))}</div>
            <div class="wall-spark">${tile.spark.length ? sparkSvg(tile.spark, 320, 60, 'wall-sparkline') : ''}</div></div>`)
          .join('')}</div>`;
      }
      const c = this.root.querySelector('#wall-clock');
      if (c) c.textContent = t('wall.updated', { time: clock(Date.now()) });
    } catch (e) {
      if (seq !== this.seq) return;
      body.innerHTML = `<p class="status offline">${esc(apiError(e))}</p>`;
    }
    this.schedule(seq);
  }
}
