// The "Look inside" panel: per strategy of the Train, its embedding map (embedding-map.js),
// its class separation per epoch (separation-chart.js) and its layer changes
// (layer-changes.js), all showing the epoch chosen with one shared slider. Play animates the
// motion from snapshot to snapshot (positions interpolated); while a Train runs the panel
// follows the newest epoch unless the reader has moved the slider back.
//
// Fed by training.js with the core's `embedding` and `layers` events (onInsightEvent), which
// it keeps in the run's record (state.runs[s].maps / .layers). Redrawn at most once per
// animation frame. app.js exposes `insight` as window.__webtune.insight for the e2e tests.
import { $, el } from './dom.js';
import { colorOf, strategyName } from './format.js';
import { state } from './state.js';
import { classColors } from './class-colors.js';
import { EmbeddingMap } from './embedding-map.js';
import { drawSeparation } from './separation-chart.js';
import { describeLayers, drawLayerChanges } from './layer-changes.js';

const MS_PER_EPOCH = 900;  // Play: one snapshot to the next
const LEGEND_CLASSES = 12; // class names listed in the legend up to this many classes

const view = {
  position: 0,       // the epoch shown (fractional while Play runs)
  following: true,   // jump to each new epoch as it arrives
  playing: false,
  playFrame: null,
  renderFrame: null,
  cards: new Map(),  // strategy → {root, map, summary, sep, layers, layersText}
  bounds: null,      // {xmin, xmax, ymin, ymax} of every snapshot of the Train so far
  extent: null,      // ... with a margin: what the maps show (the same for every run)
  scale: { relative: 0, norm: 0 },
  blockNames: [],
};

const reducedMotion = () => window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches;

/** The newest epoch any run has a snapshot of (-1: none yet). */
function latestEpoch() {
  let latest = -1;
  for (const s of state.order) {
    const run = state.runs[s];
    if (run && run.maps.length) latest = Math.max(latest, run.maps.length - 1);
  }
  return latest;
}

/** Widen the map's bounds to this snapshot's points; the extent shown adds a margin. */
function updateExtent(ev) {
  let b = view.bounds;
  for (const pts of [ev.train, ev.validation]) {
    if (!pts) continue;
    for (let i = 0; i < pts.x.length; i++) {
      const x = pts.x[i];
      const y = pts.y[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      if (!b) b = { xmin: x, xmax: x, ymin: y, ymax: y };
      else {
        b.xmin = Math.min(b.xmin, x); b.xmax = Math.max(b.xmax, x);
        b.ymin = Math.min(b.ymin, y); b.ymax = Math.max(b.ymax, y);
      }
    }
  }
  if (!b) return;
  view.bounds = b;
  const m = Math.max(b.xmax - b.xmin, b.ymax - b.ymin, 1e-6) * 0.06;
  view.extent = { xmin: b.xmin - m, xmax: b.xmax + m, ymin: b.ymin - m, ymax: b.ymax + m };
}

/** A core `embedding` or `layers` event of `run` (from training.js). */
export function onInsightEvent(run, ev) {
  if (ev.type === 'embedding') {
    run.maps[ev.epoch] = ev;
    if (ev.epoch === 0 || !run.mapTexts) {
      run.mapTexts = { train: ev.train.text, validation: ev.validation ? ev.validation.text : [] };
    }
    updateExtent(ev);
    if (view.following && !view.playing) view.position = latestEpoch();
  } else if (ev.type === 'layers') {
    run.layers[ev.epoch] = ev;
    if (view.blockNames.length === 0) view.blockNames = ev.blocks.map((b) => b.name);
    for (const b of ev.blocks) {
      if (b.relative) view.scale.relative = Math.max(view.scale.relative, b.change);
      else view.scale.norm = Math.max(view.scale.norm, b.change);
    }
  }
  scheduleInsightRender();
}

/** Empty the panel for a new Train (from training.js). */
export function resetInsight() {
  stopPlay();
  view.position = 0;
  view.following = true;
  view.extent = null;
  view.bounds = null;
  view.scale = { relative: 0, norm: 0 };
  view.blockNames = [];
  view.cards.clear();
  $('insight-cards').replaceChildren();
  scheduleInsightRender();
}

export function scheduleInsightRender() {
  if (view.renderFrame !== null) return;
  view.renderFrame = requestAnimationFrame(() => {
    view.renderFrame = null;
    render();
  });
}

function labelsOfTrain() {
  for (const s of state.order) {
    const run = state.runs[s];
    if (run && run.start) return run.start.labels;
  }
  return [];
}

let cardIds = 0;
function makeCard(s) {
  const id = `insight-${++cardIds}`;
  const canvas = el('canvas', { role: 'img', 'aria-label': 'Embedding map', tabIndex: 0, 'aria-describedby': `${id}-summary ${id}-readout`, class: 'map-canvas', width: 0, height: 0 });
  const tip = el('div', { class: 'heatmap-tip', 'aria-hidden': 'true', hidden: true });
  const readout = el('p', { class: 'readout', id: `${id}-readout`, 'aria-live': 'polite' });
  const summary = el('p', { class: 'insight-summary', id: `${id}-summary` });
  const sep = el('div', { role: 'img', 'aria-label': 'Class separation per epoch', 'aria-describedby': `${id}-sep-text`, class: 'sep-chart' });
  const sepText = el('p', { class: 'hint', id: `${id}-sep-text` });
  const layers = el('div', { role: 'img', 'aria-label': 'Layer changes', 'aria-describedby': `${id}-layers-text`, class: 'layer-chart' });
  const layersText = el('p', { class: 'hint', id: `${id}-layers-text` });
  const root = el('section', { class: 'insight-card', 'aria-label': strategyName(s), 'data-strategy': s },
    el('h3', {}, el('span', { class: 'swatch', style: { background: colorOf(s) }, 'aria-hidden': 'true' }), strategyName(s)),
    summary,
    el('div', { class: 'map-box' }, canvas, tip),
    readout,
    el('div', { class: 'insight-sub' },
      el('figure', {}, el('figcaption', {}, 'Class separation'), sep, sepText),
      el('figure', {}, el('figcaption', {}, 'Layer changes'), layers, layersText)));
  const card = { root, canvas, summary, sep, sepText, layers, layersText, map: new EmbeddingMap(canvas, tip, readout) };
  return card;
}

function renderLegend(labels, colors) {
  const legend = $('insight-legend');
  const marks = [
    el('span', { class: 'lg' }, el('span', { class: 'lg-dot', 'aria-hidden': 'true' }), 'training sentence'),
    el('span', { class: 'lg' }, el('span', { class: 'lg-hollow', 'aria-hidden': 'true' }), 'validation sentence'),
    el('span', { class: 'lg' }, el('span', { class: 'lg-ring', 'aria-hidden': 'true' }), 'misclassified'),
  ];
  marks.push(el('span', { class: 'lg' }, el('span', { class: 'lg-trail', 'aria-hidden': 'true' }), 'path since before training'));
  if (labels.length === 2) marks.push(el('span', { class: 'lg' }, el('span', { class: 'lg-line', 'aria-hidden': 'true' }), 'decision line'));
  const classes = labels.length <= LEGEND_CLASSES
    ? labels.map((l, i) => el('span', { class: 'lg' }, el('span', { class: 'lg-swatch', style: { background: colors[i] }, 'aria-hidden': 'true' }), `class ${l}`))
    : [el('span', { class: 'lg' }, `${labels.length} classes, one colour each — point at a dot or focus the map for its sentence and class`)];
  legend.replaceChildren(...classes, ...marks);
}

function epochText(position, latest) {
  if (latest < 0) return 'No snapshots yet';
  const k = Math.floor(position + 1e-9);
  if (position - k > 1e-6) return `Epoch ${k} → ${k + 1}`;
  return k === 0 ? `Before training (epoch 0 of ${latest})` : `Epoch ${k} of ${latest}`;
}

function render() {
  const latest = latestEpoch();
  const slider = $('insight-epoch');
  slider.max = String(Math.max(0, latest));
  slider.disabled = latest < 0;
  if (!view.playing) slider.value = String(Math.round(view.position));
  $('insight-play').disabled = latest < 1;
  $('insight-epoch-text').textContent = epochText(view.position, latest);
  const box = $('insight-cards');
  if (latest < 0) {
    if (!box.querySelector('.chart-empty')) {
      box.replaceChildren(el('p', { class: 'chart-empty' }, 'Where each sentence sits in the model\'s representation, and which layers training moved, appear here from the first snapshot (before training) on.'));
    }
    $('insight-legend').replaceChildren();
    return;
  }
  const empty = box.querySelector('.chart-empty');
  if (empty) empty.remove();
  const labels = labelsOfTrain();
  const colors = classColors(labels.length);
  if (!$('insight-legend').childElementCount) renderLegend(labels, colors);
  const series = state.order.map((s) => ({ strategy: s, color: colorOf(s), values: state.runs[s].maps.map((m) => m.separation) }));
  for (const s of state.order) {
    const run = state.runs[s];
    if (!run) continue;
    let card = view.cards.get(s);
    if (!card) {
      card = makeCard(s);
      view.cards.set(s, card);
      box.append(card.root);
    }
    renderCard(s, run, card, { labels, colors, series });
  }
}

function renderCard(s, run, card, { labels, colors, series }) {
  card.map.resize(card.canvas.parentElement.clientWidth);
  const last = run.maps.length - 1;
  if (last < 0) {
    card.map.draw({ from: null });
    card.summary.textContent = run.status === 'queued' ? 'Waiting for its turn.' : 'Waiting for the first snapshot.';
    drawSeparation(card.sep, { series, own: s, epochs: state.epochs, selected: null, width: card.sep.clientWidth || 260 });
    drawLayerChanges(card.layers, { ev: null, blockNames: view.blockNames, scale: view.scale, color: colorOf(s), width: card.layers.clientWidth || 300 });
    card.layersText.textContent = '';
    return;
  }
  const pos = Math.min(view.position, last);
  let k = Math.floor(pos + 1e-9);
  let t = pos - k;
  if (reducedMotion()) t = 0;
  if (k >= last) { k = last; t = 0; }
  const from = run.maps[k];
  const to = run.maps[Math.min(k + 1, last)];
  const drawn = card.map.draw({ from, to, t, texts: run.mapTexts, labels, colors, extent: view.extent, epoch: k + t, origin: run.maps[0] || null });
  const shown = t > 0.5 ? to : from;
  const n = shown.train.label.length;
  const wrong = shown.train.label.filter((l, i) => shown.train.predicted[i] !== l).length;
  const parts = [
    k + t < view.position - 1e-6 ? `epoch ${k} (its latest so far)` : k === 0 && t === 0 ? 'before training' : `epoch ${t ? `${k} → ${k + 1}` : k}`,
    `separation ${shown.separation.toFixed(3)}${shown.val_separation !== null && shown.val_separation !== undefined ? ` (validation ${shown.val_separation.toFixed(3)})` : ''}`,
    `${wrong} of ${n} training sentences misclassified`,
  ];
  if (shown.validation) {
    const v = shown.validation;
    parts.push(`${v.label.filter((l, i) => v.predicted[i] !== l).length} of ${v.label.length} validation sentences misclassified`);
  }
  if (drawn.lineVisible === false) parts.push('decision line off this view');
  card.summary.textContent = `${parts.join(' · ')}.`;
  card.canvas.dataset.epoch = String(k + t);
  drawSeparation(card.sep, { series, own: s, epochs: Math.max(state.epochs, last), selected: k + t, width: card.sep.clientWidth || 260 });
  const first = run.maps[0].separation;
  const now = run.maps[last].separation;
  card.sepText.textContent = `Between-class over within-class variance of the sentence vectors: ${first.toFixed(3)} before training, ${now.toFixed(3)} after epoch ${last}.`;
  const e = Math.round(k + t);
  const lastLayers = run.layers.length - 1;
  const layersEv = e === 0 || lastLayers < 1 ? null : run.layers[Math.min(e, lastLayers)];
  drawLayerChanges(card.layers, { ev: layersEv, blockNames: view.blockNames.length ? view.blockNames : [], scale: view.scale, color: colorOf(s), width: card.layers.clientWidth || 300 });
  card.layers.dataset.epoch = layersEv ? String(layersEv.epoch) : '0';
  card.layersText.textContent = layersEv ? `After epoch ${layersEv.epoch}: ${describeLayers(layersEv)}` : 'Before training: no weights have moved yet.';
}

function stopPlay() {
  view.playing = false;
  if (view.playFrame !== null) cancelAnimationFrame(view.playFrame);
  view.playFrame = null;
  const button = $('insight-play');
  if (button) button.textContent = 'Play';
}

function togglePlay() {
  if (view.playing) {
    stopPlay();
    view.position = Math.round(view.position);
    scheduleInsightRender();
    return;
  }
  const latest = latestEpoch();
  if (latest < 1) return;
  if (view.position >= latest) view.position = 0;
  view.playing = true;
  view.following = false;
  $('insight-play').textContent = 'Pause';
  let before = null; // (a frame's timestamp may precede performance.now() at the click)
  const tick = (now) => {
    const end = latestEpoch();
    if (before !== null) view.position = Math.min(end, view.position + Math.max(0, now - before) / MS_PER_EPOCH);
    before = now;
    $('insight-epoch').value = String(Math.floor(view.position + 1e-9));
    render();
    if (view.position >= end) {
      stopPlay();
      view.following = true;
      render();
      return;
    }
    view.playFrame = requestAnimationFrame(tick);
  };
  view.playFrame = requestAnimationFrame(tick);
}

/** The slider, Play and window resizes (once, at start-up). */
export function initInsight() {
  const slider = $('insight-epoch');
  slider.addEventListener('input', () => {
    stopPlay();
    view.position = Number(slider.value);
    view.following = view.position >= latestEpoch();
    render();
  });
  $('insight-play').addEventListener('click', togglePlay);
  let timer = null;
  window.addEventListener('resize', () => {
    clearTimeout(timer);
    timer = setTimeout(scheduleInsightRender, 100);
  });
  render();
}

/** For the e2e tests: what the map of `strategy` drew last ({epoch, points: [{set, i, cx, cy, label, predicted}]}), and the state of Play. */
export const insight = {
  drawn(strategy) {
    const card = view.cards.get(strategy);
    return card && card.map.drawn ? { epoch: card.map.drawn.epoch, points: card.map.drawn.points.map((p) => ({ ...p })) } : null;
  },
  get playing() { return view.playing; },
  get position() { return view.position; },
};
