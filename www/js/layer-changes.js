// One strategy's "Layer changes" chart (an SVG of horizontal bars) for one epoch's `layers`
// event: how far each block of weights moved from the pre-trained model, ‖W − W₀‖ / ‖W₀‖
// (embeddings, each encoder layer, pooler) on one scale shared by every run and epoch of the
// Train, so bars can be compared across strategies; and, set apart, the new classifier head,
// which has no pre-trained W₀: its norm ‖W‖, on its own scale and labelled so. Beside the
// chart, a sentence saying which blocks moved (the chart's description for screen readers).
import { svg } from './svg.js';

const ROW = 18;
const LABEL_W = 92;
const VALUE_W = 74;

/** 0.00194 → '0.19 %'; 0 → '0'. */
export function percent(x) {
  if (x === 0) return '0';
  const p = x * 100;
  if (p >= 10) return `${p.toFixed(0)} %`;
  if (p >= 0.01) return `${p.toFixed(2)} %`;
  return `${p.toExponential(1)} %`;
}

function rangeName(names) {
  // 'layer 0', 'layer 1', 'layer 2' → 'layers 0–2'
  const out = [];
  let run = [];
  const flush = () => {
    if (run.length >= 3) out.push(`layers ${run[0]}–${run[run.length - 1]}`);
    else out.push(...run.map((n) => `layer ${n}`));
    run = [];
  };
  for (const name of names) {
    const m = /^layer (\d+)$/.exec(name);
    if (m && (run.length === 0 || Number(m[1]) === run[run.length - 1] + 1)) run.push(Number(m[1]));
    else {
      flush();
      if (m) run.push(Number(m[1]));
      else out.push(name);
    }
  }
  flush();
  return out.join(', ');
}

/** Which blocks moved in this `layers` event, in words. */
export function describeLayers(ev) {
  const relative = ev.blocks.filter((b) => b.relative);
  const moved = relative.filter((b) => b.change > 0);
  const still = relative.filter((b) => b.change === 0);
  const head = ev.blocks.find((b) => !b.relative);
  const parts = [];
  if (moved.length === 0) parts.push('No pre-trained weights moved');
  else {
    const top = moved.reduce((a, b) => (b.change > a.change ? b : a));
    parts.push(`Moved: ${rangeName(moved.map((b) => b.name))} (most: ${top.name}, ${percent(top.change)})`);
  }
  if (still.length && moved.length) parts.push(`unchanged: ${rangeName(still.map((b) => b.name))}`);
  const text = `${parts.join('; ')}.`;
  return head ? `${text} The new ${head.name} head (no pre-trained weights) has norm ${head.change.toFixed(3)}.` : text;
}

/**
 * Draw the chart into `box` (an element with role img, "Layer changes"). `ev`: the `layers`
 * event to show, or null (before training: nothing has moved); `blockNames`: the rows to show
 * when `ev` is null; `scale`: {relative, norm} — the largest relative change and the largest
 * head norm of the Train so far (the bars' full widths); `color`: the strategy's colour.
 */
export function drawLayerChanges(box, { ev, blockNames, scale, color, width }) {
  const blocks = ev ? ev.blocks : blockNames.map((name) => ({ name, change: 0, relative: name !== 'classifier', missing: name === 'classifier' }));
  const w = Math.max(240, Math.floor(width));
  const barW = w - LABEL_W - VALUE_W - 8;
  const rel = blocks.filter((b) => b.relative);
  const heads = blocks.filter((b) => !b.relative);
  const h = (rel.length + heads.length) * ROW + (heads.length ? 40 : 0) + 22;
  const root = svg('svg', { width: w, height: h, viewBox: `0 0 ${w} ${h}`, class: 'layer-svg', 'aria-hidden': 'true' });
  const row = (b, y, full, fill, valueText) => {
    const len = full > 0 ? Math.max(b.change > 0 ? 1.5 : 0, (b.change / full) * barW) : 0;
    const g = svg('g', { 'data-block': b.name, 'data-change': b.missing ? '' : b.change, 'data-relative': b.relative ? 'true' : 'false' });
    g.append(
      svg('text', { x: LABEL_W - 6, y: y + ROW / 2, 'text-anchor': 'end', 'dominant-baseline': 'central', class: 'layer-label' }, b.name),
      svg('rect', { x: LABEL_W, y: y + 3, width: barW, height: ROW - 6, fill: '#f3f4f6' }),
      svg('rect', { x: LABEL_W, y: y + 3, width: len.toFixed(2), height: ROW - 6, fill, class: 'layer-bar' }),
      svg('text', { x: LABEL_W + barW + 6, y: y + ROW / 2, 'dominant-baseline': 'central', class: 'layer-value' }, valueText),
    );
    return g;
  };
  let y = 4;
  root.append(svg('text', { x: LABEL_W, y: y + 8, class: 'layer-axis' }, `‖W − W₀‖ / ‖W₀‖ (full bar: ${percent(scale.relative || 0)})`));
  y += 16;
  for (const b of rel) {
    root.append(row(b, y, scale.relative, color, percent(b.change)));
    y += ROW;
  }
  if (heads.length) {
    y += 8;
    root.append(svg('text', { x: LABEL_W, y: y + 8, class: 'layer-axis' }, 'new head (no W₀): its norm ‖W‖'));
    y += 14;
    for (const b of heads) {
      root.append(row(b, y, scale.norm, '#9ca3af', b.missing ? '—' : `norm ${b.change.toFixed(3)}`));
      y += ROW;
    }
  }
  box.replaceChildren(root);
}
