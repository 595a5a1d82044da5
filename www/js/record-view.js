// "Load results": read a results record (a JSON file from "Export results" or from
// `webtune train --record FILE`), check it against www/record.schema.json and its head with
// the core (the worker's `check-record`: no unknown field, options within their spec), replay
// its events into run records and show them in the "Loaded results" panel — its own results
// table and loss / accuracy charts, next to whatever the page trains now.
import uPlot from '../vendor/uPlot.esm.js';
import { $, el } from './dom.js';
import { colorOf, count, pct, strategyName } from './format.js';
import { newRun } from './state.js';
import { endTrain, foldTrainEvent } from './run-events.js';
import { resultRow } from './results.js';
import { validate } from './json-schema.js';
import { ToWorker } from './protocol.js';
import { request } from './worker-client.js';

const RECORD_FORMAT = 'webtune-record';

const STATUS_TEXT = { queued: 'waiting', running: 'not finished', done: 'done', stopped: 'stopped early', failed: 'failed', skipped: 'not run' };

/** The loaded record's view (window.__webtune.loaded in the tests): {name, record, order, runs, charts}. */
export const loaded = { name: null, record: null, order: [], runs: {}, charts: { loss: null, acc: null } };

let schemaPromise = null;
function schema() {
  if (!schemaPromise) {
    schemaPromise = fetch(new URL('../record.schema.json', import.meta.url)).then((r) => {
      if (!r.ok) throw new Error(`record.schema.json: HTTP ${r.status}`);
      return r.json();
    });
    schemaPromise.catch(() => { schemaPromise = null; });
  }
  return schemaPromise;
}

/**
 * Parse and check a record's text. Returns `{record}` or `{errors: [message, ...]}` (the first
 * few problems, each naming where in the file it is).
 */
export async function parseRecord(text) {
  let record;
  try {
    record = JSON.parse(text);
  } catch (e) {
    return { errors: [`This is not a JSON file (${e.message}).`] };
  }
  if (!record || typeof record !== 'object' || record.format !== RECORD_FORMAT) {
    return { errors: ['This JSON is not a webtune results record (no "format": "webtune-record"). Use a file from "Export results" or from webtune train --record.'] };
  }
  const errors = validate(record, await schema(), { limit: 8 });
  if (errors.length) return { errors };
  // The head as the core reads it (src/record.rs): its version, no unknown or misspelled
  // field, options within their spec.
  const { problem } = await request(ToWorker.CHECK_RECORD, { text });
  return problem ? { errors: [problem] } : { record };
}

/** Replay a record's events into run records, with the live page's fold (run-events.js). */
export function replay(record) {
  const order = [...record.strategies];
  const train = { order, runs: Object.fromEntries(order.map((s) => [s, newRun(s)])) };
  for (const ev of record.events) foldTrainEvent(train, ev);
  endTrain(train, null); // a run still running when the record ends shows as not finished
  return train;
}

function chartSize(box) {
  const width = Math.max(200, Math.floor(box.clientWidth || 480));
  return { width, height: Math.round(Math.min(320, Math.max(200, width * 0.55))) };
}

function axisStyle() {
  const css = getComputedStyle(document.documentElement);
  const stroke = css.getPropertyValue('--chart-axis').trim() || '#374151';
  const grid = css.getPropertyValue('--chart-grid').trim() || '#e5e7eb';
  return { stroke, grid: { stroke: grid }, ticks: { stroke: grid } };
}

function drawCharts(record, order, runs) {
  for (const key of ['loss', 'acc']) {
    if (loaded.charts[key]) loaded.charts[key].destroy();
    loaded.charts[key] = null;
  }
  const hasValidation = record.data.validation !== 'none';
  const lossBox = $('loaded-loss-chart');
  const accBox = $('loaded-acc-chart');
  lossBox.replaceChildren();
  accBox.replaceChildren();
  const axes = axisStyle();
  const steps = Math.max(0, ...order.map((s) => Math.max(runs[s].totalSteps || 0, runs[s].losses.length)));
  const x = Array.from({ length: steps }, (_, i) => i + 1);
  loaded.charts.loss = new uPlot({
    ...chartSize(lossBox),
    scales: { x: { time: false } },
    axes: [{ ...axes, label: 'step' }, { ...axes, label: 'loss' }],
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
    series: [{ label: 'step' }, ...order.map((s) => ({ label: strategyName(s), stroke: colorOf(s), width: 2, points: { show: false } }))],
  }, [x, ...order.map((s) => x.map((_, i) => runs[s].losses[i] ?? null))], lossBox);
  const epochs = Math.max(1, record.options.epochs, ...order.map((s) => runs[s].epochs.length));
  const ex = Array.from({ length: epochs }, (_, i) => i + 1);
  const series = [];
  const data = [ex];
  for (const s of order) {
    const byEpoch = new Map(runs[s].epochs.map((e) => [e.epoch, e]));
    series.push({ label: `${strategyName(s)} (train)`, stroke: colorOf(s), width: 2, points: { show: true, size: 6, fill: colorOf(s) } });
    data.push(ex.map((e) => (byEpoch.has(e) ? byEpoch.get(e).train_accuracy : null)));
    if (hasValidation) {
      series.push({ label: `${strategyName(s)} (validation)`, stroke: colorOf(s), width: 2, dash: [6, 4], points: { show: true, size: 6 } });
      data.push(ex.map((e) => (byEpoch.has(e) ? byEpoch.get(e).val_accuracy ?? null : null)));
    }
  }
  loaded.charts.acc = new uPlot({
    ...chartSize(accBox),
    scales: { x: { time: false, range: [0.8, epochs + 0.2] }, y: { range: [0, 1.02] } },
    axes: [
      { ...axes, label: 'epoch', incrs: [1, 2, 5, 10, 20, 50], values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) ? String(t) : '')) },
      { ...axes, label: 'accuracy', values: (u, ticks) => ticks.map((t) => `${Math.round(t * 100)} %`) },
    ],
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
    series: [{ label: 'epoch' }, ...series],
  }, data, accBox);
}

function describe(name, record) {
  const d = record.data;
  const o = record.options;
  const when = new Date(record.created);
  const date = Number.isNaN(when.getTime()) ? record.created : when.toLocaleString();
  return `${name}: ${record.producer}, ${date}. Model ${record.model.name}. Data: ${count(d.train_size)} training sentences` +
    `${d.val_size ? `, ${count(d.val_size)} validation` : ''}, ${count(d.labels.length)} classes. ` +
    `Options: ${o.epochs} epoch${o.epochs === 1 ? '' : 's'}, learning rate ${o.learning_rate}` +
    `${o.head_learning_rate !== null && o.head_learning_rate !== undefined ? `, head ${o.head_learning_rate}` : ''}, batch ${o.batch_size}, max length ${o.max_len}, seed ${o.seed}.`;
}

/** Show a checked record in the Loaded results panel. */
export function showRecord(name, record) {
  const { order, runs } = replay(record);
  Object.assign(loaded, { name, record, order, runs });
  const panel = $('loaded-panel');
  panel.hidden = false;
  $('loaded-summary').textContent = describe(name, record);
  const hasValidation = record.data.validation !== 'none';
  $('loaded-body').replaceChildren(...(order.length ? order.map((s) => resultRow(runs[s], hasValidation, STATUS_TEXT))
    : [el('tr', { class: 'empty' }, el('td', { colspan: '10' }, 'The record has no runs.'))]));
  drawCharts(record, order, runs);
  $('loaded-announce').textContent = `Loaded results of ${order.map((s) => {
    const r = runs[s];
    return `${strategyName(s)}: ${STATUS_TEXT[r.status]}, training accuracy ${pct(r.done ? r.done.train_accuracy : null)}`;
  }).join('; ')}.`;
}

async function onFile() {
  const input = $('load-results');
  const file = input.files && input.files[0];
  const errors = $('load-errors');
  errors.replaceChildren();
  if (!file) return;
  let result;
  try {
    result = await parseRecord(await file.text());
  } catch (e) {
    result = { errors: [`Could not read ${file.name}: ${e.message}`] };
  }
  if (result.errors) {
    errors.replaceChildren(...result.errors.map((m) => el('li', {}, m)));
    input.value = '';
    return;
  }
  showRecord(file.name, result.record);
  input.value = '';
  $('loaded-h').focus();
}

function close() {
  for (const key of ['loss', 'acc']) {
    if (loaded.charts[key]) loaded.charts[key].destroy();
    loaded.charts[key] = null;
  }
  Object.assign(loaded, { name: null, record: null, order: [], runs: {} });
  $('loaded-panel').hidden = true;
  $('load-results').focus();
}

/** Draw the loaded charts again (their axis colours follow the dark mode). */
export function redrawLoaded() {
  if (loaded.record) drawCharts(loaded.record, loaded.order, loaded.runs);
}

/** Fit the loaded charts to their boxes (after a window resize). */
export function resizeLoadedCharts() {
  if (loaded.charts.loss) loaded.charts.loss.setSize(chartSize($('loaded-loss-chart')));
  if (loaded.charts.acc) loaded.charts.acc.setSize(chartSize($('loaded-acc-chart')));
}

export function initRecordView() {
  $('load-results').addEventListener('change', onFile);
  $('loaded-close').addEventListener('click', close);
  let timer = null;
  window.addEventListener('resize', () => {
    clearTimeout(timer);
    timer = setTimeout(resizeLoadedCharts, 100);
  });
}
