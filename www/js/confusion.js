// The confusion matrix of the strategy chosen in "Confusion matrix for" as a heat map on a
// canvas (rows: true class, columns: predicted; each cell coloured by its share of the row,
// blue on the diagonal, red off it), readable at 77 classes: the count of a cell shows on
// hover and, from the keyboard, on the focused cell (arrow keys, Home/End); the largest
// confusions are listed as text below it, then the per-class table (class-table.js).
import { $, el } from './dom.js';
import { count, strategyName } from './format.js';
import { state } from './state.js';
import { renderClassTable } from './class-table.js';

const MAX_SIDE = 620;      // px, the matrix itself
const LABELS_UP_TO = 24;   // classes: axis labels drawn beside the matrix up to this many
const TOP_CONFUSIONS = 10;

let view = null; // {labels, m, rowSums, cell, left, top, n} of the drawn matrix
let focusCell = null; // [row, col] chosen from the keyboard

const SET_NAMES = { validation: 'validation data', training: 'training data', 'training sample': 'a sample of the training data' };

export function renderConfusion() {
  const s = $('confusion-select').value;
  const run = s && state.runs[s];
  const canvas = $('confusion-canvas');
  if (!run || !run.done) {
    view = null;
    canvas.width = 0;
    canvas.height = 0;
    canvas.hidden = true;
    $('confusion-tip').hidden = true;
    $('confusion-readout').textContent = 'Available when a strategy has finished.';
    $('confusion-top').replaceChildren();
    $('confusion-top-h').hidden = true;
    renderClassTable(null);
    return;
  }
  const labels = run.done.per_class.map((c) => c.label);
  const m = labels.map((_, i) => labels.map((__, j) => (run.done.confusion[i] ? run.done.confusion[i][j] ?? 0 : 0)));
  const set = SET_NAMES[run.done.evaluated_on] || (state.hasValidation ? 'validation data' : 'training data');
  const total = m.reduce((a, row) => a + row.reduce((b, x) => b + x, 0), 0);
  canvas.hidden = false;
  canvas.setAttribute('aria-label', 'Confusion matrix');
  canvas.dataset.strategy = s;
  draw(labels, m);
  focusCell = null;
  $('confusion-readout').textContent = `${strategyName(s)}, ${set}: ${labels.length} classes, ${count(total)} sentences.`;
  renderTopConfusions(labels, m);
  renderClassTable(run.done.per_class, `Per-class metrics — ${strategyName(s)}, ${set}`);
}

function draw(labels, m) {
  const n = labels.length;
  const canvas = $('confusion-canvas');
  const ctx = canvas.getContext('2d');
  const font = '12px system-ui, sans-serif';
  ctx.font = font;
  const showLabels = n <= LABELS_UP_TO;
  const short = (t) => (t.length > 18 ? `${t.slice(0, 17)}…` : t);
  const labelWidth = showLabels ? Math.min(160, Math.max(...labels.map((l) => ctx.measureText(short(l)).width)) + 10) : 18;
  const cell = Math.max(5, Math.min(64, Math.floor(MAX_SIDE / n)));
  const left = labelWidth;
  const top = showLabels ? labelWidth : 18;
  const width = left + cell * n + 2;
  const height = top + cell * n + 2;
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.ceil(width * dpr);
  canvas.height = Math.ceil(height * dpr);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.font = font;
  const rowSums = m.map((row) => row.reduce((a, b) => a + b, 0));
  view = { labels, m, rowSums, cell, left, top, n };
  // Where the cells are, in CSS pixels from the canvas's top left (read by the e2e tests).
  canvas.dataset.geometry = JSON.stringify({ left, top, cell, n });
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const share = rowSums[i] ? m[i][j] / rowSums[i] : 0;
      ctx.fillStyle = cellColor(i === j, share, m[i][j]);
      ctx.fillRect(left + j * cell, top + i * cell, cell, cell);
      if (cell >= 28 && m[i][j] > 0) {
        ctx.fillStyle = share > 0.55 ? '#fff' : '#111827';
        ctx.textAlign = 'center';
        ctx.textBaseline = 'middle';
        ctx.fillText(String(m[i][j]), left + j * cell + cell / 2, top + i * cell + cell / 2);
      }
    }
  }
  if (cell >= 8) {
    ctx.strokeStyle = 'rgba(255,255,255,0.9)';
    ctx.lineWidth = 1;
    for (let k = 0; k <= n; k++) {
      ctx.beginPath();
      ctx.moveTo(left + k * cell + 0.5, top);
      ctx.lineTo(left + k * cell + 0.5, top + n * cell);
      ctx.moveTo(left, top + k * cell + 0.5);
      ctx.lineTo(left + n * cell, top + k * cell + 0.5);
      ctx.stroke();
    }
  }
  ctx.strokeStyle = '#9ca3af';
  ctx.strokeRect(left - 0.5, top - 0.5, n * cell + 1, n * cell + 1);
  ctx.fillStyle = '#374151';
  if (showLabels) {
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'right';
    labels.forEach((l, i) => ctx.fillText(short(l), left - 6, top + i * cell + cell / 2));
    ctx.save();
    ctx.textAlign = 'left';
    labels.forEach((l, j) => {
      ctx.save();
      ctx.translate(left + j * cell + cell / 2, top - 6);
      ctx.rotate(-Math.PI / 2);
      ctx.fillText(short(l), 0, 0);
      ctx.restore();
    });
    ctx.restore();
  } else {
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'left';
    ctx.fillText('predicted →', left, 9);
    ctx.save();
    ctx.translate(9, top);
    ctx.rotate(Math.PI / 2);
    ctx.fillText('true →', 0, 0);
    ctx.restore();
  }
  if (focusCell) outline(ctx, focusCell[0], focusCell[1]);
}

function cellColor(diagonal, share, value) {
  if (value === 0) return '#f3f4f6';
  // A light floor so that a single confusion is still visible.
  const a = 0.12 + 0.88 * Math.min(1, diagonal ? share : share * 2);
  return diagonal ? `rgba(37, 99, 235, ${a.toFixed(3)})` : `rgba(220, 38, 38, ${a.toFixed(3)})`;
}

function outline(ctx, i, j) {
  const { cell, left, top } = view;
  ctx.strokeStyle = '#111827';
  ctx.lineWidth = 2;
  ctx.strokeRect(left + j * cell + 1, top + i * cell + 1, Math.max(2, cell - 2), Math.max(2, cell - 2));
}

/** 'true “a”, predicted “b”: 3 (7.5 % of “a”)'. */
export function describeCell(i, j) {
  if (!view) return '';
  const { labels, m, rowSums } = view;
  const share = rowSums[i] ? ` (${((100 * m[i][j]) / rowSums[i]).toFixed(1)} % of “${labels[i]}”)` : '';
  const what = m[i][j] === 0 ? '' : i === j ? ' — correct' : ' — confused';
  return `True “${labels[i]}”, predicted “${labels[j]}”: ${count(m[i][j])}${share}${what}`;
}

function cellAt(event) {
  if (!view) return null;
  const rect = $('confusion-canvas').getBoundingClientRect();
  const x = event.clientX - rect.left - view.left;
  const y = event.clientY - rect.top - view.top;
  const j = Math.floor(x / view.cell);
  const i = Math.floor(y / view.cell);
  if (x < 0 || y < 0 || i >= view.n || j >= view.n) return null;
  return [i, j];
}

function showTip(i, j, x, y) {
  const tip = $('confusion-tip');
  tip.textContent = describeCell(i, j);
  tip.style.left = `${x + 14}px`;
  tip.style.top = `${y + 14}px`;
  tip.hidden = false;
}

function redraw() {
  if (view) draw(view.labels, view.m);
}

/** Hover and keyboard handling of the heat map (once, at start-up). */
export function initConfusion() {
  const canvas = $('confusion-canvas');
  canvas.addEventListener('mousemove', (e) => {
    const c = cellAt(e);
    if (!c) {
      $('confusion-tip').hidden = true;
      return;
    }
    const box = canvas.parentElement.getBoundingClientRect();
    showTip(c[0], c[1], e.clientX - box.left, e.clientY - box.top);
    $('confusion-readout').textContent = describeCell(c[0], c[1]);
  });
  canvas.addEventListener('mouseleave', () => { $('confusion-tip').hidden = true; });
  canvas.addEventListener('focus', () => {
    if (!view) return;
    if (!focusCell) focusCell = [0, 0];
    redraw();
    $('confusion-readout').textContent = describeCell(focusCell[0], focusCell[1]);
  });
  canvas.addEventListener('blur', () => {
    if (view && focusCell) {
      const keep = focusCell;
      focusCell = null;
      redraw();
      focusCell = keep;
    }
  });
  canvas.addEventListener('keydown', (e) => {
    if (!view || !focusCell) return;
    const n = view.n;
    let [i, j] = focusCell;
    switch (e.key) {
      case 'ArrowUp': i = Math.max(0, i - 1); break;
      case 'ArrowDown': i = Math.min(n - 1, i + 1); break;
      case 'ArrowLeft': j = Math.max(0, j - 1); break;
      case 'ArrowRight': j = Math.min(n - 1, j + 1); break;
      case 'Home': j = 0; break;
      case 'End': j = n - 1; break;
      case 'PageUp': i = 0; break;
      case 'PageDown': i = n - 1; break;
      default: return;
    }
    e.preventDefault();
    focusCell = [i, j];
    redraw();
    $('confusion-readout').textContent = describeCell(i, j);
  });
}

function renderTopConfusions(labels, m) {
  const pairs = [];
  for (let i = 0; i < labels.length; i++) {
    const row = m[i].reduce((a, b) => a + b, 0);
    for (let j = 0; j < labels.length; j++) if (i !== j && m[i][j] > 0) pairs.push({ i, j, n: m[i][j], share: row ? m[i][j] / row : 0 });
  }
  pairs.sort((a, b) => b.n - a.n || b.share - a.share || a.i - b.i || a.j - b.j);
  $('confusion-top-h').hidden = false;
  const list = $('confusion-top');
  if (pairs.length === 0) {
    list.replaceChildren(el('li', { class: 'none' }, 'None: every sentence was classified correctly.'));
    return;
  }
  list.replaceChildren(...pairs.slice(0, TOP_CONFUSIONS).map((p) => el('li', {},
    '“', el('span', { class: 'class-label' }, labels[p.i]), '” taken for “', el('span', { class: 'class-label' }, labels[p.j]), '”: ',
    `${count(p.n)} time${p.n === 1 ? '' : 's'} (${(100 * p.share).toFixed(1)} % of “`, labels[p.i], '”)')));
  if (pairs.length > TOP_CONFUSIONS) list.append(el('li', { class: 'more' }, `and ${count(pairs.length - TOP_CONFUSIONS)} smaller confusions (see the matrix)`));
}
