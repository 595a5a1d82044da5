// The two uPlot charts: loss per step and accuracy per epoch (dashed: validation), one colour
// per strategy. makeCharts() rebuilds them for a new Train; scheduleChartUpdate() redraws from
// state.runs at most once per animation frame. app.js exposes `charts` as
// window.__webtune.charts for the end-to-end tests.
import uPlot from '../vendor/uPlot.esm.js';
import { $, el } from './dom.js';
import { colorOf, count, strategyName } from './format.js';
import { state } from './state.js';

export const charts = { loss: null, acc: null };

/** 'sample of 1,000' when each epoch's training accuracy is measured on fewer sentences than the set. */
export function trainSampleLabel() {
  if (!state.trainSize || !state.trainEvalSize || state.trainEvalSize >= state.trainSize) return null;
  return `sample of ${count(state.trainEvalSize)}`;
}

function chartSize(container) {
  const width = Math.max(200, Math.floor(container.clientWidth || 480)); // 200: fits a 360 px phone
  return { width, height: Math.round(Math.min(320, Math.max(200, width * 0.55))) };
}

/** New, empty charts for the strategies of state.order (or a placeholder text when none). */
export function makeCharts() {
  for (const key of ['loss', 'acc']) {
    if (charts[key]) charts[key].destroy();
    charts[key] = null;
  }
  const strategies = state.order;
  const lossBox = $('loss-chart');
  const accBox = $('acc-chart');
  lossBox.replaceChildren();
  accBox.replaceChildren();
  if (strategies.length === 0) {
    lossBox.append(el('p', { class: 'chart-empty' }, 'The loss of every optimizer step appears here while training runs.'));
    accBox.append(el('p', { class: 'chart-empty' }, 'Training (and validation) accuracy after each epoch appears here.'));
    return;
  }
  // Axis colours from style.css (--chart-axis, --chart-grid: they follow the system's dark mode).
  const css = getComputedStyle(document.documentElement);
  const axis = css.getPropertyValue('--chart-axis').trim() || '#374151';
  const grid = css.getPropertyValue('--chart-grid').trim() || '#e5e7eb';
  const axisStyle = { stroke: axis, grid: { stroke: grid }, ticks: { stroke: grid } };
  charts.loss = new uPlot({
    ...chartSize(lossBox),
    scales: { x: { time: false } },
    axes: [{ ...axisStyle, label: 'step' }, { ...axisStyle, label: 'loss' }],
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
    series: [
      { label: 'step' },
      ...strategies.map((s) => ({ label: strategyName(s), stroke: colorOf(s), width: 2, points: { show: false }, value: (u, v) => (v === null || v === undefined ? '—' : v.toFixed(4)) })),
    ],
  }, [[], ...strategies.map(() => [])], lossBox);
  const sample = trainSampleLabel();
  $('acc-caption').textContent = sample
    ? `Accuracy per epoch (solid: training accuracy (${sample}), dashed: validation)`
    : 'Accuracy per epoch (solid: training, dashed: validation)';
  const accSeries = [];
  for (const s of strategies) {
    accSeries.push({ label: `${strategyName(s)} (${sample ? `training ${sample}` : 'train'})`, stroke: colorOf(s), width: 2, points: { show: true, size: 6, fill: colorOf(s) } });
    if (state.hasValidation) accSeries.push({ label: `${strategyName(s)} (validation)`, stroke: colorOf(s), width: 2, dash: [6, 4], points: { show: true, size: 6 } });
  }
  charts.acc = new uPlot({
    ...chartSize(accBox),
    scales: { x: { time: false, range: [0.8, Math.max(1, state.epochs) + 0.2] }, y: { range: [0, 1.02] } },
    axes: [
      { ...axisStyle, label: 'epoch', incrs: [1, 2, 5, 10, 20, 50], values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? String(t) : '')) },
      { ...axisStyle, label: 'accuracy', values: (u, ticks) => ticks.map((t) => `${Math.round(t * 100)} %`) },
    ],
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
    series: [{ label: 'epoch' }, ...accSeries],
  }, [[], ...accSeries.map(() => [])], accBox);
}

let chartPending = false;
let lastDraw = 0;
/** With this many loss points or more, redraw at most every SLOW_MS (a frozen run can make tens of thousands). */
const MANY_POINTS = 4000;
const SLOW_MS = 250;

function lossPoints() {
  return state.order.reduce((n, s) => n + state.runs[s].losses.length, 0);
}

/** Redraw both charts from state.runs on a coming animation frame (at most once per frame). */
export function scheduleChartUpdate() {
  if (chartPending) return;
  chartPending = true;
  const wait = lossPoints() >= MANY_POINTS ? Math.max(0, SLOW_MS - (performance.now() - lastDraw)) : 0;
  const draw = () => requestAnimationFrame(() => {
    chartPending = false;
    lastDraw = performance.now();
    updateCharts();
  });
  if (wait > 0) setTimeout(draw, wait);
  else draw();
}

function updateCharts() {
  if (!charts.loss || !charts.acc) return;
  const strategies = state.order;
  const steps = Math.max(0, ...strategies.map((s) => Math.max(state.runs[s].totalSteps || 0, state.runs[s].losses.length)));
  const x = Array.from({ length: steps }, (_, i) => i + 1);
  const lossData = [x, ...strategies.map((s) => x.map((_, i) => state.runs[s].losses[i] ?? null))];
  charts.loss.setData(lossData);
  const epochs = Math.max(1, state.epochs);
  const ex = Array.from({ length: epochs }, (_, i) => i + 1);
  const accData = [ex];
  for (const s of strategies) {
    const byEpoch = new Map(state.runs[s].epochs.map((e) => [e.epoch, e]));
    accData.push(ex.map((e) => (byEpoch.has(e) ? byEpoch.get(e).train_accuracy : null)));
    if (state.hasValidation) accData.push(ex.map((e) => (byEpoch.has(e) ? byEpoch.get(e).val_accuracy ?? null : null)));
  }
  charts.acc.setData(accData, false);
  charts.acc.setScale('x', { min: 0.8, max: epochs + 0.2 });
}

/** Fit both charts to their boxes (after a window resize). */
export function resizeCharts() {
  if (charts.loss) charts.loss.setSize(chartSize($('loss-chart')));
  if (charts.acc) charts.acc.setSize(chartSize($('acc-chart')));
}
