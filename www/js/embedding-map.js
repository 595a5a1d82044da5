// One strategy's embedding map on a canvas: every sentence's pooled vector (what the classifier
// reads) on the Train's shared plane (src/insight.rs), coloured by its true class — filled:
// training, hollow: validation, a dark ring: misclassified — and, for two classes, the
// classifier's decision line on that plane. A frame may lie between two snapshots (Play
// interpolates the positions). The sentence under the mouse, or chosen from the keyboard
// (arrow keys, Home/End on the focused map), is shown as text (textContent only). A faint
// trail joins each point to where it was before training, so a still picture shows the motion.
//
// Canvas, not DOM nodes: Banking77 puts 2,000 training and 2,000 validation points on it.
// Points are batched by class into one path each; a frame costs a few milliseconds.

const SETS = ['train', 'validation'];
const SET_NAME = { train: 'training', validation: 'validation' };

/** Radius in CSS px of a point, by how many are drawn. */
function radiusFor(n) {
  if (n <= 60) return 6;
  if (n <= 400) return 4;
  if (n <= 1500) return 3;
  return 2.2;
}

/** Where the line a·x + b·y + c = 0 crosses the box, as two points, or null when it misses it. */
function clipLine([a, b, c], { xmin, xmax, ymin, ymax }) {
  const pts = [];
  const push = (x, y) => {
    if (x >= xmin - 1e-12 && x <= xmax + 1e-12 && y >= ymin - 1e-12 && y <= ymax + 1e-12) pts.push([x, y]);
  };
  if (Math.abs(b) > 1e-15) {
    push(xmin, -(a * xmin + c) / b);
    push(xmax, -(a * xmax + c) / b);
  }
  if (Math.abs(a) > 1e-15) {
    push(-(b * ymin + c) / a, ymin);
    push(-(b * ymax + c) / a, ymax);
  }
  if (pts.length < 2) return null;
  // The two crossings farthest apart (a corner can be counted twice).
  let best = null;
  let bestD = -1;
  for (let i = 0; i < pts.length; i++) {
    for (let j = i + 1; j < pts.length; j++) {
      const d = (pts[i][0] - pts[j][0]) ** 2 + (pts[i][1] - pts[j][1]) ** 2;
      if (d > bestD) { bestD = d; best = [pts[i], pts[j]]; }
    }
  }
  return bestD > 0 ? best : null;
}

export class EmbeddingMap {
  /**
   * `canvas`: the map (role img, "Embedding map"); `tip`: a box over it for the hover text;
   * `readout`: where the hovered / focused sentence is described (aria-live).
   */
  constructor(canvas, tip, readout) {
    this.canvas = canvas;
    this.tip = tip;
    this.readout = readout;
    this.size = { width: 0, height: 0 };
    this.data = null;     // {from, to, t, texts, labels, colors, extent}
    this.drawn = null;    // what the last frame drew (CSS px), for hit tests and the e2e tests
    this.focusIndex = null; // index into the drawn points chosen from the keyboard
    this.hoverIndex = null;
    canvas.addEventListener('mousemove', (e) => this.onMouseMove(e));
    canvas.addEventListener('mouseleave', () => { this.hoverIndex = null; this.tip.hidden = true; this.readout.textContent = ''; this.redraw(); });
    canvas.addEventListener('focus', () => {
      if (!this.drawn || this.drawn.points.length === 0) return;
      if (this.focusIndex === null) this.focusIndex = 0;
      this.describe(this.focusIndex);
      this.redraw();
    });
    canvas.addEventListener('blur', () => { this.focusIndex = null; this.readout.textContent = ''; this.redraw(); });
    canvas.addEventListener('keydown', (e) => this.onKey(e));
  }

  /** Fit the canvas to `width` CSS px (height follows). */
  resize(width) {
    const w = Math.max(220, Math.min(720, Math.floor(width)));
    const h = Math.round(Math.min(440, Math.max(220, w * 0.72)));
    if (w === this.size.width && h === this.size.height) return;
    this.size = { width: w, height: h };
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.ceil(w * dpr);
    this.canvas.height = Math.ceil(h * dpr);
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${h}px`;
  }

  /**
   * Show the frame `t` ∈ [0, 1] of the way from snapshot `from` to snapshot `to` (embedding
   * events of one run, the same points in the same order); `texts`: {train, validation}
   * sentences (from the run's first snapshot); `labels`: class names; `colors`: per class;
   * `extent`: {xmin, xmax, ymin, ymax} of the map's coordinates shown (shared by every run);
   * `origin`: the run's snapshot before training (trails start there), or null.
   * Returns {lineVisible: true | false | null (no line)}.
   */
  draw({ from, to, t, texts, labels, colors, extent, epoch, origin }) {
    this.data = { from, to, t, texts, labels, colors, extent, epoch, origin };
    return this.redraw();
  }

  redraw() {
    const d = this.data;
    const { width, height } = this.size;
    const ctx = this.canvas.getContext('2d');
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, width, height);
    if (!d || !d.from) {
      this.drawn = null;
      return { lineVisible: null };
    }
    const { from, to, t, extent, colors } = d;
    // Equal scale on both axes: distances on the map are distances on the plane.
    const pad = 14;
    const sx = (width - 2 * pad) / (extent.xmax - extent.xmin || 1);
    const sy = (height - 2 * pad) / (extent.ymax - extent.ymin || 1);
    const s = Math.min(sx, sy);
    const ox = pad + (width - 2 * pad - s * (extent.xmax - extent.xmin)) / 2;
    const oy = pad + (height - 2 * pad - s * (extent.ymax - extent.ymin)) / 2;
    const px = (x) => ox + (x - extent.xmin) * s;
    const py = (y) => height - (oy + (y - extent.ymin) * s); // y up
    // The whole canvas in map coordinates (where a decision line can be seen).
    const view = { xmin: extent.xmin - ox / s, xmax: extent.xmin + (width - ox) / s, ymin: extent.ymin - oy / s, ymax: extent.ymin + (height - oy) / s };

    // The plane's origin (the pre-trained model's mean training vector) and the axis names.
    ctx.strokeStyle = '#eef0f3';
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(px(0), 0); ctx.lineTo(px(0), height);
    ctx.moveTo(0, py(0)); ctx.lineTo(width, py(0));
    ctx.stroke();
    ctx.fillStyle = '#9ca3af';
    ctx.font = '11px system-ui, sans-serif';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'bottom';
    ctx.fillText('PC 1 →', width - 4, height - 3);
    ctx.save();
    ctx.translate(11, 4);
    ctx.rotate(Math.PI / 2);
    ctx.textAlign = 'left';
    ctx.fillText('PC 2 →', 0, 0);
    ctx.restore();

    // Positions of this frame (linear between the two snapshots).
    const points = [];
    const total = SETS.reduce((n, set) => n + (from[set] ? from[set].x.length : 0), 0);
    const r = radiusFor(total);
    for (const set of SETS) {
      const a = from[set];
      const b = to[set] && to[set].x.length === (a ? a.x.length : -1) ? to[set] : a;
      if (!a) continue;
      for (let i = 0; i < a.x.length; i++) {
        const x = a.x[i] + (b.x[i] - a.x[i]) * t;
        const y = a.y[i] + (b.y[i] - a.y[i]) * t;
        const predicted = (t < 0.5 ? a : b).predicted[i];
        points.push({ set, i, cx: px(x), cy: py(y), label: a.label[i], predicted });
      }
    }
    // Trails from the positions before training (nothing to draw where nothing moved).
    const origin = d.origin;
    if (origin) {
      const trails = new Map(); // class → Path2D: one stroke per class
      let k = 0;
      for (const set of SETS) {
        const o = origin[set];
        const n = from[set] ? from[set].x.length : 0;
        if (!o || o.x.length !== n) { k += n; continue; }
        for (let i = 0; i < n; i++, k++) {
          const p = points[k];
          const ox0 = px(o.x[i]);
          const oy0 = py(o.y[i]);
          if (Math.abs(ox0 - p.cx) + Math.abs(oy0 - p.cy) < 0.5) continue;
          if (!trails.has(p.label)) trails.set(p.label, new Path2D());
          const path = trails.get(p.label);
          path.moveTo(ox0, oy0);
          path.lineTo(p.cx, p.cy);
        }
      }
      ctx.lineWidth = total > 400 ? 0.6 : 1.2;
      ctx.globalAlpha = total > 400 ? 0.25 : 0.45;
      for (const [label, path] of trails) {
        ctx.strokeStyle = colors[label] || '#6b7280';
        ctx.stroke(path);
      }
      ctx.globalAlpha = 1;
    }
    // Filled training points, then hollow validation points, batched by class; then the rings.
    const byClass = new Map();
    for (const p of points) {
      const key = `${p.set}:${p.label}`;
      if (!byClass.has(key)) byClass.set(key, []);
      byClass.get(key).push(p);
    }
    for (const set of SETS) {
      for (const [key, list] of byClass) {
        if (!key.startsWith(`${set}:`)) continue;
        const color = colors[list[0].label] || '#6b7280';
        ctx.beginPath();
        for (const p of list) {
          ctx.moveTo(p.cx + r, p.cy);
          ctx.arc(p.cx, p.cy, r, 0, 2 * Math.PI);
        }
        if (set === 'train') {
          ctx.fillStyle = color;
          ctx.globalAlpha = total > 1000 ? 0.8 : 0.95;
          ctx.fill();
          ctx.globalAlpha = 1;
        } else {
          ctx.fillStyle = '#fff';
          ctx.fill();
          ctx.strokeStyle = color;
          ctx.lineWidth = Math.max(1.2, r * 0.45);
          ctx.stroke();
        }
      }
    }
    const wrong = points.filter((p) => p.predicted !== p.label);
    if (wrong.length) {
      ctx.beginPath();
      const rr = r + Math.max(1.5, r * 0.4);
      for (const p of wrong) {
        ctx.moveTo(p.cx + rr, p.cy);
        ctx.arc(p.cx, p.cy, rr, 0, 2 * Math.PI);
      }
      // Many points: a lighter ring, or a model that is still guessing paints the map black.
      ctx.strokeStyle = total > 400 ? 'rgba(17, 24, 39, 0.5)' : '#111827';
      ctx.lineWidth = total > 400 ? 0.7 : 1.4;
      ctx.stroke();
    }

    // The decision line (two classes), between the two snapshots' lines.
    let lineVisible = null;
    const la = from.decision_line;
    if (la) {
      const lb = to.decision_line || la;
      const line = la.map((v, k) => v + (lb[k] - v) * t);
      const seg = clipLine(line, view);
      lineVisible = seg !== null;
      if (seg) {
        ctx.save();
        ctx.strokeStyle = '#374151';
        ctx.lineWidth = 1.5;
        ctx.setLineDash([6, 4]);
        ctx.beginPath();
        ctx.moveTo(px(seg[0][0]), py(seg[0][1]));
        ctx.lineTo(px(seg[1][0]), py(seg[1][1]));
        ctx.stroke();
        ctx.restore();
      }
    }

    const mark = this.focusIndex ?? this.hoverIndex;
    if (mark !== null && points[mark]) {
      const p = points[mark];
      ctx.strokeStyle = '#2563eb';
      ctx.lineWidth = 2.5;
      ctx.beginPath();
      ctx.arc(p.cx, p.cy, r + 5, 0, 2 * Math.PI);
      ctx.stroke();
    }
    this.drawn = { epoch: d.epoch, points, radius: r };
    return { lineVisible };
  }

  /** 'Training sentence 3 of 10: “…” — true class 1, predicted 0 (misclassified)'. */
  describe(k) {
    const text = this.textOf(k);
    this.readout.textContent = text;
    return text;
  }

  textOf(k) {
    const p = this.drawn && this.drawn.points[k];
    if (!p) return '';
    const { texts, labels } = this.data;
    const sentence = texts && texts[p.set] ? texts[p.set][p.i] : undefined;
    const n = this.drawn.points.filter((q) => q.set === p.set).length;
    const name = (c) => (labels && labels[c] !== undefined ? labels[c] : String(c));
    const verdict = p.predicted === p.label ? 'correct' : 'misclassified';
    const quoted = sentence === undefined ? '(sentence not available)' : `“${sentence}”`;
    return `${SET_NAME[p.set][0].toUpperCase()}${SET_NAME[p.set].slice(1)} sentence ${p.i + 1} of ${n}: ${quoted} — true class ${name(p.label)}, predicted ${name(p.predicted)} (${verdict})`;
  }

  nearest(x, y) {
    if (!this.drawn) return null;
    const limit = (this.drawn.radius + 4) ** 2;
    let best = null;
    let bestD = limit;
    this.drawn.points.forEach((p, k) => {
      const dd = (p.cx - x) ** 2 + (p.cy - y) ** 2;
      if (dd <= bestD) { bestD = dd; best = k; }
    });
    return best;
  }

  onMouseMove(e) {
    const rect = this.canvas.getBoundingClientRect();
    const x = e.clientX - rect.left - this.canvas.clientLeft; // (inside the border)
    const y = e.clientY - rect.top - this.canvas.clientTop;
    const k = this.nearest(x, y);
    if (k !== this.hoverIndex) {
      this.hoverIndex = k;
      this.redraw();
    }
    if (k === null) {
      this.tip.hidden = true;
      return;
    }
    this.tip.textContent = this.describe(k);
    const box = this.canvas.parentElement.getBoundingClientRect();
    const left = Math.min(e.clientX - box.left + 14, Math.max(0, box.width - 260));
    this.tip.style.left = `${left}px`;
    this.tip.style.top = `${e.clientY - box.top + 14}px`;
    this.tip.hidden = false;
  }

  onKey(e) {
    if (!this.drawn || this.drawn.points.length === 0) return;
    const n = this.drawn.points.length;
    let k = this.focusIndex ?? 0;
    switch (e.key) {
      case 'ArrowRight': case 'ArrowDown': k = (k + 1) % n; break;
      case 'ArrowLeft': case 'ArrowUp': k = (k - 1 + n) % n; break;
      case 'Home': k = 0; break;
      case 'End': k = n - 1; break;
      default: return;
    }
    e.preventDefault();
    this.focusIndex = k;
    this.describe(k);
    this.redraw();
  }
}
