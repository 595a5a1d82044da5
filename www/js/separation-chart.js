// The small "Class separation per epoch" line chart beside a strategy's embedding map (SVG):
// the core's separation number (between-class over within-class variance of the pooled
// vectors, in the full space) from epoch 0 (before training) on; this strategy's line in its
// colour, the other strategies' in grey on the same scale, the shown epoch marked.
import { svg } from './svg.js';

/**
 * `box`: an element with role img; `series`: [{strategy, color, values: [separation by epoch]}];
 * `own`: the strategy drawn in colour; `epochs`: planned epochs; `selected`: the epoch shown
 * (may be fractional while Play runs).
 */
export function drawSeparation(box, { series, own, epochs, selected, width }) {
  const w = Math.max(180, Math.floor(width));
  const h = 110;
  const left = 38;
  const right = 8;
  const top = 8;
  const bottom = 20;
  const all = series.flatMap((s) => s.values.filter((v) => Number.isFinite(v)));
  const ymax = Math.max(1e-9, ...all) * 1.1;
  const xs = (e) => left + (epochs > 0 ? (e / epochs) * (w - left - right) : 0);
  const ys = (v) => top + (1 - v / ymax) * (h - top - bottom);
  const root = svg('svg', { width: w, height: h, viewBox: `0 0 ${w} ${h}`, 'aria-hidden': 'true', class: 'sep-svg' });
  root.append(
    svg('line', { x1: left, y1: ys(0), x2: w - right, y2: ys(0), stroke: '#d1d5db' }),
    svg('line', { x1: left, y1: top, x2: left, y2: ys(0), stroke: '#d1d5db' }),
    svg('text', { x: left - 4, y: ys(0), 'text-anchor': 'end', 'dominant-baseline': 'central', class: 'sep-tick' }, '0'),
    svg('text', { x: left - 4, y: ys(ymax / 1.1), 'text-anchor': 'end', 'dominant-baseline': 'central', class: 'sep-tick' }, (ymax / 1.1).toPrecision(2)),
  );
  for (let e = 0; e <= epochs; e++) {
    root.append(svg('text', { x: xs(e), y: h - 5, 'text-anchor': 'middle', class: 'sep-tick' }, String(e)));
  }
  if (selected !== null && selected !== undefined) {
    root.append(svg('line', { x1: xs(selected), y1: top, x2: xs(selected), y2: ys(0), stroke: '#93c5fd', 'stroke-width': 2 }));
  }
  const ordered = [...series.filter((s) => s.strategy !== own), ...series.filter((s) => s.strategy === own)];
  for (const s of ordered) {
    const mine = s.strategy === own;
    const pts = s.values.map((v, e) => (Number.isFinite(v) ? `${xs(e).toFixed(1)},${ys(v).toFixed(1)}` : null)).filter(Boolean);
    if (pts.length === 0) continue;
    root.append(svg('polyline', { points: pts.join(' '), fill: 'none', stroke: mine ? s.color : '#c7cbd1', 'stroke-width': mine ? 2.2 : 1.5, 'data-strategy': s.strategy }));
    if (mine) {
      s.values.forEach((v, e) => {
        if (Number.isFinite(v)) root.append(svg('circle', { cx: xs(e), cy: ys(v), r: 2.8, fill: s.color }));
      });
    }
  }
  box.replaceChildren(root);
}
