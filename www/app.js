// webtune page script. Never blocks: all model work happens in ./worker.js. All text that may
// come from the user (sentences, labels, messages quoting them) is shown with textContent.
import uPlot from './vendor/uPlot.esm.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const DEFAULT_HUB = 'https://huggingface.co';
const LOCAL_MODEL = { hub: '/hub', repo: 'all-MiniLM-L6-v2', revision: 'main' };
const COLORS = { frozen: '#2563eb', top: '#d97706', full: '#16a34a' };

// ---------------------------------------------------------------------------------------------
// State (exposed as window.__webtune for the end-to-end tests)
// ---------------------------------------------------------------------------------------------
const state = {
  ready: false,          // worker + wasm loaded
  running: false,        // a Train is in progress
  stopping: false,
  parse: null,           // last parse_data result
  parsePending: true,
  order: [],             // strategies of the current/last Train, in run order
  runs: {},              // strategy → run record (see newRun)
  hasValidation: false,
  epochs: 4,
  model: null,           // {info, label, fromCache}
  lastError: null,
  warnings: [],
  predictions: null,
  workerStarts: 0,
  trainsStarted: 0,      // Train presses sent to the worker
  trainsFinished: 0,     // ... and answered with train-done (or ended by a worker restart)
};
const charts = { loss: null, acc: null };
window.__webtune = { state, charts };

const kindOf = (s) => (s.startsWith('top:') ? 'top' : s);
const colorOf = (s) => COLORS[kindOf(s)] || '#6b7280';
function strategyName(s) {
  if (s === 'frozen') return 'Frozen encoder';
  if (s === 'full') return 'Full fine-tuning';
  const k = s.slice(4);
  return `Top ${k} layer${k === '1' ? '' : 's'}`;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'style') Object.assign(node.style, v);
    else if (k.startsWith('aria-') || k === 'role' || k === 'scope' || k === 'colspan') node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const pct = (x) => (x === null || x === undefined || Number.isNaN(x) ? '—' : `${(x * 100).toFixed(1)} %`);
const secs = (ms) => (ms === null || ms === undefined ? '—' : ms < 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`);
const megabytes = (b) => (b === null || b === undefined ? '—' : `${(b / 1048576).toFixed(0)} MB`);

// ---------------------------------------------------------------------------------------------
// Worker
// ---------------------------------------------------------------------------------------------
let worker = null;
let requestSeq = 0;
const pending = new Map(); // id → {resolve, reject}

function startWorker() {
  state.ready = false;
  state.workerStarts += 1;
  worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  worker.onmessage = (e) => onWorkerMessage(e.data);
  worker.onerror = (e) => {
    e.preventDefault();
    showError(`The background worker failed to start or crashed: ${e.message || 'unknown error'}. Reload the page to try again.`);
  };
  window.__webtune.worker = worker;
  scheduleParse(0);
}

function restartWorker() {
  worker.terminate();
  for (const { reject } of pending.values()) reject(new Error('the worker was restarted'));
  pending.clear();
  if (state.running) finishTraining({ stopped: false, failed: true });
  startWorker();
}

function request(type, payload) {
  const id = ++requestSeq;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ type, id, ...payload });
  });
}

function onWorkerMessage(msg) {
  switch (msg.type) {
    case 'ready':
      state.ready = true;
      setStatus('Ready. Press Train to start.');
      updateControls();
      break;
    case 'parsed':
      if (msg.id !== parseSeq) return; // an older request: a newer one is on its way
      state.parse = msg.result;
      state.parsePending = false;
      renderParse();
      updateControls();
      break;
    case 'progress':
      renderProgress(msg);
      break;
    case 'status':
      setStatus(msg.message);
      break;
    case 'warning':
      state.warnings.push(msg.message);
      showWarning(msg.message);
      break;
    case 'model':
      state.model = { info: msg.info, label: msg.label, fromCache: msg.fromCache, key: state.trainingModelKey };
      $('progress').hidden = true;
      renderModelInfo();
      break;
    case 'run-start': {
      const run = state.runs[msg.strategy];
      if (run) {
        run.status = 'running';
        run.totalSteps = msg.totalSteps;
        run.memory = Math.max(run.memory || 0, msg.memory || 0);
      }
      setStatus(`${strategyName(msg.strategy)}: training started (${msg.totalSteps} steps).`);
      renderResults();
      scheduleChartUpdate();
      break;
    }
    case 'event':
      onTrainingEvent(msg.event, msg.memory);
      break;
    case 'train-done':
      finishTraining(msg);
      break;
    case 'predictions':
    case 'exported':
      settle(msg.id, msg, null);
      break;
    case 'error':
      if (msg.id !== undefined && pending.has(msg.id)) {
        settle(msg.id, null, new Error(msg.message));
      } else if (msg.id !== undefined && msg.context === 'parse') {
        state.parsePending = false;
        showError(msg.message);
        updateControls();
      } else {
        showError(msg.message, msg.code);
      }
      if (msg.code === 'crash') restartWorker();
      break;
    default:
      break;
  }
}

function settle(id, value, error) {
  const p = pending.get(id);
  if (!p) return;
  pending.delete(id);
  if (error) p.reject(error);
  else p.resolve(value);
}

// ---------------------------------------------------------------------------------------------
// Status, errors
// ---------------------------------------------------------------------------------------------
function setStatus(text) {
  $('status').textContent = text;
}

function showError(message, code) {
  state.lastError = { message, code };
  $('error-text').textContent = message;
  $('use-local-btn').hidden = !(code === 'hub-unreachable' || code === 'hub-http') || $('model-select').value === 'local';
  $('error-box').hidden = false;
}

function clearError() {
  state.lastError = null;
  $('error-box').hidden = true;
  $('error-text').textContent = '';
}

function showWarning(message) {
  let box = $('warning-box');
  if (!box) {
    box = el('div', { id: 'warning-box', class: 'warning', role: 'status' });
    $('error-box').before(box);
  }
  box.textContent = message;
}

// ---------------------------------------------------------------------------------------------
// Data: parse as the user types (debounced), inline line-level messages
// ---------------------------------------------------------------------------------------------
let parseTimer = null;
let parseSeq = 0;

function valMode() {
  return document.querySelector('input[name="val-mode"]:checked').value;
}

function dataPayload() {
  const mode = valMode();
  return {
    train: $('train-text').value,
    val: mode === 'text' ? $('val-text').value : null,
    valFraction: mode === 'split' ? Number($('val-fraction').value) : null,
    seed: intValue('seed') ?? 0,
  };
}

function scheduleParse(delay = 300) {
  state.parsePending = true;
  updateControls();
  clearTimeout(parseTimer);
  parseTimer = setTimeout(() => {
    if (!worker) return;
    const mode = valMode();
    if (mode === 'text' && !$('val-text').value.trim()) {
      // The core treats an empty validation text as "no validation": say so instead.
      state.parsePending = false;
      state.parse = { ok: false, labels: [], diagnostics: [{ field: 'validation', line: 0, message: 'the validation box is empty: paste validation examples, or choose None' }] };
      renderParse();
      updateControls();
      return;
    }
    if (mode === 'split') {
      const f = Number($('val-fraction').value);
      if (!(f > 0 && f < 1)) {
        // Checked here too so the message names the field the user can fix.
        state.parsePending = false;
        state.parse = { ok: false, labels: [], diagnostics: [{ field: 'validation', line: 0, message: 'the validation fraction must be a number strictly between 0 and 1, e.g. 0.2' }] };
        renderParse();
        updateControls();
        return;
      }
    }
    parseSeq = ++requestSeq;
    worker.postMessage({ type: 'parse', id: parseSeq, ...dataPayload() });
  }, delay);
}

function renderParse() {
  const r = state.parse;
  const lists = { train: $('train-errors'), validation: $('val-errors') };
  for (const list of Object.values(lists)) list.replaceChildren();
  $('train-text').removeAttribute('aria-invalid');
  $('val-text').removeAttribute('aria-invalid');
  if (!r) return;
  for (const d of r.diagnostics || []) {
    const list = lists[d.field] || lists.train;
    const where = d.line > 0 ? `Line ${d.line}: ` : '';
    list.append(el('li', {}, where + d.message));
    (d.field === 'validation' ? $('val-text') : $('train-text')).setAttribute('aria-invalid', 'true');
  }
  const summary = $('train-summary');
  if (r.ok) {
    const classes = r.labels.map((label, i) => `${label} (${r.class_counts[i]})`).join(', ');
    let text = `${r.train_count} training sentence${r.train_count === 1 ? '' : 's'} · ${r.labels.length} classes: ${classes}`;
    if (r.val_count) text += ` · ${r.val_count} for validation`;
    summary.textContent = text;
    summary.classList.remove('bad');
  } else {
    const n = (r.diagnostics || []).length;
    summary.textContent = `${n} problem${n === 1 ? '' : 's'} to fix before training.`;
    summary.classList.add('bad');
  }
}

// Tab types a tab in the data boxes (the format is tab-separated); Esc then Tab leaves.
function tabTypesTab(textarea) {
  let escaped = false;
  textarea.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      escaped = true;
      return;
    }
    if (e.key === 'Tab' && !escaped && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey) {
      e.preventDefault();
      textarea.setRangeText('\t', textarea.selectionStart, textarea.selectionEnd, 'end');
      textarea.dispatchEvent(new Event('input', { bubbles: true }));
    }
    escaped = false;
  });
  textarea.addEventListener('blur', () => { escaped = false; });
}

// ---------------------------------------------------------------------------------------------
// Model choice
// ---------------------------------------------------------------------------------------------
function hubBase() {
  const raw = $('hub-url').value.trim() || DEFAULT_HUB;
  return new URL(raw, location.href).href.replace(/\/+$/, '');
}

function modelSource() {
  const choice = $('model-select').value;
  if (choice === 'local') {
    return { kind: 'hub', hub: new URL(LOCAL_MODEL.hub, location.href).href, repo: LOCAL_MODEL.repo, revision: LOCAL_MODEL.revision };
  }
  if (choice === 'files') return { kind: 'files', files: Array.from($('model-files').files || []) };
  const repo = choice === 'other' ? $('repo-id').value.trim() : choice;
  const revision = (choice === 'other' ? $('revision').value.trim() : '') || 'main';
  return { kind: 'hub', hub: hubBase(), repo, revision };
}

function modelKey(source) {
  if (source.kind === 'hub') return `hub|${source.hub}|${source.repo}|${source.revision}`;
  return 'files|' + source.files.map((f) => `${f.name}:${f.size}:${f.lastModified}`).join('|');
}

function modelProblem() {
  const choice = $('model-select').value;
  if (choice === 'other') {
    const repo = $('repo-id').value.trim();
    if (!repo) return 'Enter a hub repository id (e.g. google-bert/bert-base-cased).';
    if (!/^[\w.-]+(\/[\w.-]+)?$/.test(repo)) return 'The repository id should look like owner/name (letters, digits, - _ .).';
  }
  if (choice === 'files') {
    const names = Array.from($('model-files').files || []).map((f) => f.name.toLowerCase());
    const missing = [];
    if (!names.includes('config.json')) missing.push('config.json');
    if (!names.includes('tokenizer.json')) missing.push('tokenizer.json');
    if (!names.some((n) => n.endsWith('.safetensors'))) missing.push('model.safetensors');
    if (missing.length) return `Pick the model files (missing: ${missing.join(', ')}).`;
  }
  try {
    hubBase();
  } catch {
    return 'The hub URL is not a valid address.';
  }
  return null;
}

function renderModelChoice() {
  const choice = $('model-select').value;
  $('other-box').hidden = choice !== 'other';
  $('files-box').hidden = choice !== 'files';
  let note = '';
  let hubHost = '';
  try {
    hubHost = new URL(hubBase()).host;
  } catch {
    hubHost = '?';
  }
  const sameOrigin = hubHost === location.host;
  if (choice === 'bert-base-uncased' || choice === 'other') {
    note = sameOrigin
      ? `Read from ${hubBase()} on this server, then kept in the browser's cache.`
      : `Downloaded once from ${hubHost} (only the model files; nothing you type is sent), then kept in the browser's cache.`;
  } else if (choice === 'local') {
    note = 'Served by this page\'s own server (models/all-MiniLM-L6-v2): no internet needed.';
  } else {
    note = 'Nothing is uploaded: the worker reads the files directly.';
  }
  $('model-note').textContent = note;
  updateControls();
}

function renderModelInfo() {
  const m = state.model;
  if (!m) return;
  const i = m.info;
  const params = i.num_parameters >= 1e6 ? `${(i.num_parameters / 1e6).toFixed(1)} M` : String(i.num_parameters);
  let text = `Loaded ${m.label}: ${i.num_layers} layers, hidden size ${i.hidden_size}, ${i.num_heads} heads, ${params} parameters${m.fromCache ? ' (from the browser cache)' : ''}.`;
  if (i.notes && i.notes.length) text += ' ' + i.notes.join(' ');
  $('model-info').textContent = text;
  updateControls();
}

function renderProgress(msg) {
  const bar = $('progress');
  if (msg.total) {
    bar.hidden = false;
    bar.max = msg.total;
    bar.value = msg.loaded;
  }
  const files = msg.files.map((f) => {
    if (f.fromCache) return `${f.name}: from cache`;
    const of = f.total ? ` of ${(f.total / 1e6).toFixed(1)}` : '';
    return `${f.name}: ${(f.loaded / 1e6).toFixed(1)}${of} MB`;
  });
  const all = msg.total ? ` ${Math.floor((100 * msg.loaded) / msg.total)} %` : '';
  const speed = msg.mbps > 0 ? ` · ${msg.mbps.toFixed(1)} MB/s` : '';
  setStatus(`Getting the model…${all}${speed} — ${files.join(' · ')}`);
}

// ---------------------------------------------------------------------------------------------
// Options, strategies and the Train button
// ---------------------------------------------------------------------------------------------
function intValue(id) {
  const raw = $(id).value.trim();
  if (!/^\d+$/.test(raw)) return null;
  return Number(raw);
}

function floatValue(id) {
  const raw = $(id).value.trim();
  if (raw === '') return null;
  const v = Number(raw);
  return Number.isFinite(v) ? v : NaN;
}

function selectedStrategies() {
  const s = [];
  if ($('s-frozen').checked) s.push('frozen');
  if ($('s-top').checked) s.push(`top:${intValue('top-k') ?? 0}`);
  if ($('s-full').checked) s.push('full');
  return s;
}

function optionsProblems() {
  const problems = [];
  const epochs = intValue('epochs');
  if (!epochs || epochs < 1) problems.push('Epochs must be a whole number ≥ 1.');
  const lr = floatValue('lr');
  if (!(lr > 0)) problems.push('Learning rate must be a number > 0 (e.g. 2e-5).');
  const headLr = floatValue('head-lr');
  if (headLr !== null && !(headLr > 0)) problems.push('Classifier head rate must be empty or a number > 0 (e.g. 1e-2).');
  const batch = intValue('batch');
  if (!batch || batch < 1) problems.push('Batch size must be a whole number ≥ 1.');
  const maxLen = intValue('max-len');
  if (!maxLen || maxLen < 2) problems.push('Max length must be a whole number ≥ 2.');
  if (intValue('seed') === null) problems.push('Seed must be a whole number ≥ 0.');
  if ($('s-top').checked) {
    const k = intValue('top-k');
    // The layer count is known once this model has been loaded (not for another choice).
    const layers = state.model && state.model.key === modelKey(modelSource()) ? state.model.info.num_layers : null;
    if (!k || k < 1) problems.push('Layers to train must be a whole number ≥ 1.');
    else if (layers && k > layers) problems.push(`Layers to train must be at most ${layers} (the model's layer count).`);
  }
  if (selectedStrategies().length === 0) problems.push('Choose at least one strategy.');
  return problems;
}

function trainOptions() {
  return {
    epochs: intValue('epochs'),
    learning_rate: floatValue('lr'),
    head_learning_rate: floatValue('head-lr'),
    batch_size: intValue('batch'),
    max_len: intValue('max-len'),
    pad_to_max_len: $('pad-max').checked,
    seed: intValue('seed'),
  };
}

function trainBlockers() {
  if (state.running) return [state.stopping ? 'Stopping…' : 'Training is running.'];
  if (!state.ready) return ['Loading the WebAssembly worker…'];
  const reasons = [];
  if (state.parsePending) reasons.push('Checking the data…');
  else if (!state.parse || !state.parse.ok) {
    const d = state.parse && state.parse.diagnostics && state.parse.diagnostics[0];
    const where = d ? `${d.field === 'validation' ? 'Validation data' : 'Training data'}${d.line > 0 ? `, line ${d.line}` : ''}: ` : '';
    reasons.push(`Fix the data first — ${where}${d ? d.message : 'it could not be read.'}`);
  }
  const m = modelProblem();
  if (m) reasons.push(m);
  reasons.push(...optionsProblems());
  return reasons;
}

function updateControls() {
  const reasons = trainBlockers();
  const trainBtn = $('train-btn');
  trainBtn.disabled = reasons.length > 0;
  $('train-reason').textContent = reasons.length ? reasons.join(' ') : '';
  $('stop-btn').disabled = !state.running || state.stopping;
  const finished = state.order.filter((s) => ['done', 'stopped'].includes(state.runs[s].status));
  $('classify-btn').disabled = !state.ready || finished.length === 0;
  fillSelect($('download-select'), finished);
  fillSelect($('confusion-select'), state.order.filter((s) => state.runs[s].done));
  $('download-btn').disabled = finished.length === 0;
}

function fillSelect(select, strategies) {
  const current = select.value;
  const values = Array.from(select.options).map((o) => o.value);
  if (values.join('|') === strategies.join('|')) return;
  select.replaceChildren(...strategies.map((s) => el('option', { value: s }, strategyName(s) + (state.runs[s].status === 'stopped' ? ' (stopped early)' : ''))));
  if (strategies.includes(current)) select.value = current;
  else if (strategies.length) select.value = strategies[strategies.length - 1];
  select.dispatchEvent(new Event('change'));
}

function newRun(strategy) {
  return {
    strategy,
    status: 'queued',
    totalSteps: null,
    losses: [],           // losses[step - 1]
    epochs: [],           // epoch events
    lastStep: null,
    done: null,           // the Done event
    error: null,
    memory: 0,            // largest wasm memory size seen during this run (bytes)
  };
}

function startTraining() {
  const reasons = trainBlockers();
  if (reasons.length) {
    $('train-reason').textContent = reasons.join(' ');
    return;
  }
  clearError();
  const strategies = selectedStrategies();
  state.order = strategies;
  state.runs = Object.fromEntries(strategies.map((s) => [s, newRun(s)]));
  state.hasValidation = valMode() !== 'none';
  state.epochs = intValue('epochs');
  state.running = true;
  state.stopping = false;
  state.predictions = null;
  state.trainsStarted += 1;
  $('predictions').replaceChildren();
  makeCharts();
  renderResults();
  renderConfusion();
  updateControls();
  setStatus('Starting…');
  const source = modelSource();
  state.trainingModelKey = modelKey(source);
  worker.postMessage({ type: 'train', source, strategies, ...dataPayload(), options: trainOptions() });
}

function finishTraining(msg) {
  state.running = false;
  state.trainsFinished += 1;
  state.stopping = false;
  $('progress').hidden = true;
  for (const s of state.order) {
    const r = state.runs[s];
    if (r.status === 'running') r.status = msg.stopped ? 'stopped' : 'failed';
    else if (r.status === 'queued') r.status = 'skipped';
  }
  if (msg.stopped) setStatus('Stopped. The runs so far are kept; press Train to start again.');
  else if (msg.failed) setStatus('Training did not finish: see the message below.');
  else setStatus(`Done: ${state.order.map((s) => `${strategyName(s)} ${pct(state.runs[s].done ? state.runs[s].done.train_accuracy : null)} training accuracy`).join(', ')}.`);
  renderResults();
  scheduleChartUpdate();
  updateControls();
}

function onTrainingEvent(ev, memory) {
  if (ev.type === 'error') {
    const s = state.order.find((x) => state.runs[x].status === 'running');
    if (s) {
      state.runs[s].status = 'failed';
      state.runs[s].error = ev.message;
    }
    showError(s ? `${strategyName(s)} failed: ${ev.message}` : ev.message);
    renderResults();
    return;
  }
  const run = state.runs[ev.strategy];
  if (!run) return;
  if (memory) run.memory = Math.max(run.memory, memory);
  if (ev.type === 'step') {
    run.losses[ev.step - 1] = ev.loss;
    run.lastStep = ev;
    const total = run.totalSteps ? `/${run.totalSteps}` : '';
    setStatus(`${strategyName(ev.strategy)}: epoch ${ev.epoch}/${state.epochs}, step ${ev.step}${total}, loss ${ev.loss.toFixed(4)}`);
  } else if (ev.type === 'epoch') {
    run.epochs.push(ev);
    const val = ev.val_accuracy !== null && ev.val_accuracy !== undefined ? `, validation ${pct(ev.val_accuracy)}` : '';
    setStatus(`${strategyName(ev.strategy)}: epoch ${ev.epoch} done — training accuracy ${pct(ev.train_accuracy)}${val}`);
  } else if (ev.type === 'done') {
    run.done = ev;
    run.status = 'done';
  }
  renderResults();
  scheduleChartUpdate();
  if (ev.type === 'done') {
    renderConfusion();
    updateControls();
  }
}

// ---------------------------------------------------------------------------------------------
// Charts (uPlot)
// ---------------------------------------------------------------------------------------------
function chartSize(container) {
  const width = Math.max(280, Math.floor(container.clientWidth || 480));
  return { width, height: Math.round(Math.min(320, Math.max(200, width * 0.55))) };
}

function makeCharts() {
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
  const axisStyle = { stroke: '#374151', grid: { stroke: '#e5e7eb' }, ticks: { stroke: '#e5e7eb' } };
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
  const accSeries = [];
  for (const s of strategies) {
    accSeries.push({ label: `${strategyName(s)} (train)`, stroke: colorOf(s), width: 2, points: { show: true, size: 6, fill: colorOf(s) } });
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
  window.__webtune.charts = charts;
}

let chartFrame = null;
function scheduleChartUpdate() {
  if (chartFrame !== null) return;
  chartFrame = requestAnimationFrame(() => {
    chartFrame = null;
    updateCharts();
  });
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

function resizeCharts() {
  if (charts.loss) charts.loss.setSize(chartSize($('loss-chart')));
  if (charts.acc) charts.acc.setSize(chartSize($('acc-chart')));
}

// ---------------------------------------------------------------------------------------------
// Results table, confusion matrix
// ---------------------------------------------------------------------------------------------
const STATUS_TEXT = { queued: 'waiting', running: 'running', done: 'done', stopped: 'stopped early', failed: 'failed', skipped: 'not run' };

function renderResults() {
  const body = $('results-body');
  if (state.order.length === 0) {
    body.replaceChildren(el('tr', { class: 'empty' }, el('td', { colspan: '7' }, 'No runs yet.')));
    return;
  }
  body.replaceChildren(...state.order.map((s) => {
    const r = state.runs[s];
    const lastEpoch = r.epochs[r.epochs.length - 1];
    const trainAcc = r.done ? r.done.train_accuracy : lastEpoch ? lastEpoch.train_accuracy : null;
    const valAcc = r.done ? r.done.val_accuracy : lastEpoch ? lastEpoch.val_accuracy : null;
    const elapsed = r.done ? r.done.elapsed_ms : Math.max(lastEpoch ? lastEpoch.elapsed_ms : 0, r.lastStep ? r.lastStep.elapsed_ms : 0) || null;
    const steps = r.done ? r.done.steps : r.lastStep ? r.lastStep.step : null;
    const rate = steps && elapsed ? (steps / (elapsed / 1000)).toFixed(2) : '—';
    const name = el('th', { scope: 'row' }, el('span', { class: 'swatch', style: { background: colorOf(s) }, 'aria-hidden': 'true' }), strategyName(s));
    const status = el('td', { class: `status-${r.status}` }, STATUS_TEXT[r.status] || r.status);
    if (r.error) status.title = r.error;
    return el('tr', { 'data-strategy': s }, name, status,
      el('td', { class: 'num' }, pct(trainAcc)),
      el('td', { class: 'num' }, state.hasValidation ? pct(valAcc) : 'no validation data'),
      el('td', { class: 'num' }, secs(elapsed)),
      el('td', { class: 'num' }, rate),
      el('td', { class: 'num' }, r.memory ? megabytes(r.memory) : '—'));
  }));
}

function renderConfusion() {
  const table = $('confusion-table');
  const s = $('confusion-select').value;
  const run = s && state.runs[s];
  if (!run || !run.done) {
    table.replaceChildren();
    $('confusion-metrics').textContent = 'Available when a strategy has finished.';
    return;
  }
  const labels = run.done.per_class.map((c) => c.label);
  const m = run.done.confusion;
  const set = state.hasValidation ? 'validation data' : 'training data';
  const head = el('tr', {}, el('th', { scope: 'col' }, 'true ↓ / predicted →'), ...labels.map((l) => el('th', { scope: 'col' }, l)));
  const rows = labels.map((l, i) => el('tr', {}, el('th', { scope: 'row' }, l),
    ...labels.map((_, j) => el('td', { class: i === j ? 'num diag' : 'num' }, String(m[i] ? m[i][j] ?? 0 : 0)))));
  table.replaceChildren(
    el('caption', {}, `Confusion matrix — ${strategyName(s)}, ${set}`),
    el('thead', {}, head),
    el('tbody', {}, ...rows));
  $('confusion-metrics').textContent = run.done.per_class
    .map((c) => `${c.label}: precision ${pct(c.precision)}, recall ${pct(c.recall)}, F1 ${pct(c.f1)} (${c.support} examples)`).join(' · ');
}

// ---------------------------------------------------------------------------------------------
// Try it
// ---------------------------------------------------------------------------------------------
async function classify(e) {
  e.preventDefault();
  const text = $('try-text').value;
  const out = $('predictions');
  if (!text.trim()) {
    out.replaceChildren(el('p', { class: 'reason' }, 'Type a sentence first.'));
    return;
  }
  out.replaceChildren(el('p', {}, 'Classifying…'));
  try {
    const { results } = await request('predict', { text });
    state.predictions = { text, results };
    if (!results.length) {
      out.replaceChildren(el('p', { class: 'reason' }, 'Train a strategy first.'));
      return;
    }
    out.replaceChildren(
      el('p', { class: 'quoted' }, '“', text, '”'),
      ...results.map((r) => {
        const title = strategyName(r.strategy) + (r.status === 'stopped' ? ' (stopped early)' : '');
        if (r.error) return el('div', { class: 'pred' }, el('h3', {}, title), el('p', { class: 'reason' }, r.error));
        const p = r.prediction;
        return el('div', { class: 'pred', 'data-strategy': r.strategy },
          el('h3', {}, el('span', { class: 'swatch', style: { background: colorOf(r.strategy) }, 'aria-hidden': 'true' }), title, ' → ', el('strong', {}, p.label)),
          el('ul', { class: 'probs' }, ...p.labels.map((label, i) => el('li', { class: label === p.label ? 'top' : '' },
            el('span', { class: 'plabel' }, label),
            el('span', { class: 'bar', 'aria-hidden': 'true' }, el('span', { style: { width: `${(p.probabilities[i] * 100).toFixed(1)}%`, background: colorOf(r.strategy) } })),
            el('span', { class: 'num' }, pct(p.probabilities[i]))))));
      }));
  } catch (err) {
    out.replaceChildren(el('p', { class: 'reason' }, `Could not classify: ${err.message}`));
  }
}

// ---------------------------------------------------------------------------------------------
// Download: one uncompressed ustar archive written here (no zip library needed)
// ---------------------------------------------------------------------------------------------
function tarHeader(name, size) {
  const h = new Uint8Array(512);
  const enc = new TextEncoder();
  const put = (str, offset, length) => h.set(enc.encode(str).subarray(0, length), offset);
  const octal = (n, length) => n.toString(8).padStart(length - 1, '0') + '\0';
  put(name, 0, 100);
  put(octal(0o644, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(size, 12), 124, 12);
  put(octal(Math.floor(Date.now() / 1000), 12), 136, 12);
  put('        ', 148, 8); // checksum placeholder: spaces
  put('0', 156, 1);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}

function makeTar(folder, files) {
  const parts = [];
  for (const [name, bytes] of files) {
    parts.push(tarHeader(`${folder}/${name}`, bytes.byteLength), bytes);
    const pad = (512 - (bytes.byteLength % 512)) % 512;
    if (pad) parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(1024));
  return new Blob(parts, { type: 'application/x-tar' });
}

async function download() {
  const strategy = $('download-select').value;
  if (!strategy) return;
  const btn = $('download-btn');
  btn.disabled = true;
  setStatus(`Preparing the ${strategyName(strategy)} model for download…`);
  try {
    const { files } = await request('export', { strategy });
    const folder = `webtune-${strategy.replace(':', '')}`;
    const order = ['config.json', 'tokenizer.json', 'model.safetensors'];
    const blob = makeTar(folder, order.filter((n) => files[n]).map((n) => [n, files[n]]));
    const url = URL.createObjectURL(blob);
    const a = el('a', { href: url, download: `${folder}.tar` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    setStatus(`Downloaded ${folder}.tar (${(blob.size / 1e6).toFixed(1)} MB): config.json, tokenizer.json, model.safetensors.`);
  } catch (err) {
    showError(`Download failed: ${err.message}`);
  } finally {
    updateControls();
  }
}

// ---------------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------------
function init() {
  const hub = params.get('hub');
  $('hub-url').value = hub || DEFAULT_HUB;
  if (hub) $('hub-details').open = true;
  const repo = params.get('repo');
  if (repo) {
    $('model-select').value = 'other';
    $('repo-id').value = repo;
    if (params.get('revision')) $('revision').value = params.get('revision');
  }

  tabTypesTab($('train-text'));
  tabTypesTab($('val-text'));
  $('train-text').addEventListener('input', () => scheduleParse());
  $('val-text').addEventListener('input', () => scheduleParse());
  $('val-fraction').addEventListener('input', () => scheduleParse());
  $('seed').addEventListener('input', () => { scheduleParse(); updateControls(); });
  for (const radio of document.querySelectorAll('input[name="val-mode"]')) {
    radio.addEventListener('change', () => {
      $('val-split-box').hidden = valMode() !== 'split';
      $('val-text-box').hidden = valMode() !== 'text';
      scheduleParse(0);
    });
  }
  for (const id of ['model-select', 'hub-url', 'repo-id', 'revision', 'model-files']) {
    $(id).addEventListener('input', renderModelChoice);
    $(id).addEventListener('change', renderModelChoice);
  }
  for (const id of ['s-frozen', 's-top', 's-full', 'top-k', 'epochs', 'lr', 'head-lr', 'batch', 'max-len', 'pad-max']) {
    $(id).addEventListener('input', updateControls);
    $(id).addEventListener('change', updateControls);
  }
  $('top-k').addEventListener('input', () => { if (!$('s-top').checked && intValue('top-k')) { $('s-top').checked = true; updateControls(); } });
  $('train-btn').addEventListener('click', startTraining);
  $('stop-btn').addEventListener('click', () => {
    if (!state.running) return;
    state.stopping = true;
    worker.postMessage({ type: 'stop' });
    setStatus('Stopping after the current step…');
    updateControls();
  });
  $('use-local-btn').addEventListener('click', () => {
    $('model-select').value = 'local';
    renderModelChoice();
    clearError();
    setStatus('Switched to the local offline model. Press Train.');
    $('train-btn').focus();
  });
  $('try-form').addEventListener('submit', classify);
  $('download-btn').addEventListener('click', download);
  $('confusion-select').addEventListener('change', renderConfusion);
  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(resizeCharts, 100);
  });

  renderModelChoice();
  makeCharts();
  renderConfusion();
  startWorker();
}

init();
