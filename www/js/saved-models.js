// Saved models: "Save model" keeps a trained strategy's export (config.json, tokenizer.json,
// model.safetensors — the Download's files) plus a small metadata record in the browser's
// Cache API (cache "webtune-saved-v1", beside the downloaded pre-trained files), so that after
// a reload it can still be tried, downloaded or deleted without training again. Nothing is
// saved unless the user presses Save. Before saving, the storage quota is checked
// (navigator.storage.estimate); when it is short, the model is kept in memory only (until the
// page closes) and the page says so. Saving asks for persistent storage
// (navigator.storage.persist). "Try it" loads the saved export into the worker (one saved
// model at a time, freed when a Train starts) and classifies the Try it sentence with it.
import { ToWorker } from './protocol.js';
import { $, el } from './dom.js';
import { fileSize, pct, strategyName } from './format.js';
import { state } from './state.js';
import { setStatus, showError } from './status.js';
import { request, send } from './worker-client.js';
import { makeTar } from './tar.js';
import { saveBlob, currentRecord } from './record.js';
import { renderPredictions } from './try-it.js';

// A saved model is a second model in the worker, which a Train's memory plan does not count.
const TRY_WHILE_TRAINING = 'Try it on a saved model waits until training ends: it would load a second model beside the one training.';

export const SAVED_CACHE = 'webtune-saved-v1';
const FILES = ['config.json', 'tokenizer.json', 'model.safetensors'];
/** Room to leave beside a model when checking the quota (metadata, the cache's own overhead). */
const MARGIN = 1 << 20;

const memoryOnly = new Map(); // id → {meta, files}: models the quota had no room for
let list = [];                // metas of every saved model (stored and in memory), newest first
let loadedIn = null;          // {id, worker, train}: the saved model the worker holds

const entryUrl = (id, name) => new URL(`saved-models/${encodeURIComponent(id)}/${name}`, location.href).href;

async function openCache() {
  try {
    return await caches.open(SAVED_CACHE);
  } catch {
    return null; // no Cache API here (not a secure context): memory only
  }
}

/** The stored metas, newest first. */
async function storedMetas() {
  const cache = await openCache();
  if (!cache) return [];
  const metas = [];
  for (const req of await cache.keys()) {
    if (!req.url.endsWith('/meta.json')) continue;
    try {
      const meta = await (await cache.match(req)).json();
      metas.push({ ...meta, stored: true });
    } catch {
      // an unreadable entry: skip it (Delete of another model is unaffected)
    }
  }
  return metas;
}

async function refresh() {
  const metas = [...await storedMetas(), ...Array.from(memoryOnly.values(), (m) => m.meta)];
  list = metas.sort((a, b) => (a.date < b.date ? 1 : -1));
  render();
}

/** The files of a saved model: {name: Uint8Array}. */
async function readFiles(meta) {
  if (!meta.stored) return memoryOnly.get(meta.id).files;
  const cache = await openCache();
  const files = {};
  for (const name of FILES) {
    const hit = cache && await cache.match(entryUrl(meta.id, name));
    if (!hit) throw new Error(`${name} of this saved model is missing from the browser's storage (it may have been cleared); delete it and save the model again.`);
    files[name] = new Uint8Array(await hit.arrayBuffer());
  }
  return files;
}

function title(meta) {
  return `${strategyName(meta.strategy)}, ${new Date(meta.date).toLocaleString()}`;
}

function render() {
  const ul = $('saved-list');
  if (!list.length) {
    ul.replaceChildren(el('li', { class: 'empty' }, 'No saved models yet. After a Train, pick a strategy under 7. Download and press Save model.'));
    return;
  }
  ul.replaceChildren(...list.map((m) => {
    const name = title(m);
    const d = m.data;
    const acc = m.accuracy;
    const accText = acc ? `training accuracy ${pct(acc.train)}${acc.validation !== null && acc.validation !== undefined ? `, validation ${pct(acc.validation)}` : ''}` : '';
    return el('li', { class: 'saved', 'data-saved-id': m.id },
      el('p', { class: 'saved-title' }, el('strong', {}, strategyName(m.strategy)), ` · ${m.model}`, m.stored ? '' : el('span', { class: 'memory-only' }, ' · in memory only')),
      el('p', { class: 'hint' },
        `${d.train_size} training sentence${d.train_size === 1 ? '' : 's'}${d.val_size ? `, ${d.val_size} validation` : ''}, ${m.labels.length} classes (${m.labels.slice(0, 6).join(', ')}${m.labels.length > 6 ? ', …' : ''})`,
        ` · max length ${m.max_len} · saved ${new Date(m.date).toLocaleString()} · ${fileSize(m.size)}${accText ? ` · ${accText}` : ''}`),
      el('div', { class: 'saved-actions' },
        el('button', { type: 'button', class: 'secondary try', 'aria-label': `Try it with saved model ${name}`, disabled: state.running, title: state.running ? TRY_WHILE_TRAINING : '', onclick: () => trySaved(m) }, 'Try it'),
        el('button', { type: 'button', class: 'secondary download', 'aria-label': `Download saved model ${name}`, onclick: () => downloadSaved(m) }, 'Download'),
        el('button', { type: 'button', class: 'secondary delete', 'aria-label': `Delete saved model ${name}`, onclick: () => deleteSaved(m) }, 'Delete')));
  }));
}

function say(text) {
  $('saved-message').textContent = text;
}

/** Click handler of "Save model": the strategy chosen under Download. */
async function save() {
  const strategy = $('download-select').value;
  const run = strategy && state.runs[strategy];
  if (!run) return;
  const btn = $('save-btn');
  btn.disabled = true;
  say(`Saving the ${strategyName(strategy)} model…`);
  try {
    const { files } = await request(ToWorker.EXPORT, { strategy });
    const size = FILES.reduce((s, n) => s + files[n].byteLength, 0);
    const record = currentRecord();
    const meta = {
      id: `${Date.now().toString(36)}-${strategy.replace(':', '')}`,
      strategy,
      model: state.model ? state.model.label : 'unknown model',
      data: record ? { train_size: record.data.train_size, val_size: record.data.val_size } : { train_size: 0, val_size: 0 },
      labels: run.start ? run.start.labels : [],
      max_len: record ? record.options.max_len : null,
      options: record ? record.options : null,
      accuracy: run.done ? { train: run.done.train_accuracy, validation: run.done.val_accuracy } : null,
      status: run.status,
      device: run.start ? run.start.device ?? null : null, // 'cpu' or 'gpu: <adapter> (<backend>)'
      date: new Date().toISOString(),
      size,
    };
    const room = await freeBytes();
    if (room !== null && room < size + MARGIN) {
      keepInMemory(meta, files, `Not enough browser storage to keep this model: it needs ${fileSize(size)} and only ${fileSize(Math.max(0, room))} are free.`);
      return;
    }
    const cache = await openCache();
    if (!cache) {
      keepInMemory(meta, files, 'This browser offers no storage to this page (the Cache API is unavailable).');
      return;
    }
    const persisted = navigator.storage && navigator.storage.persist ? await navigator.storage.persist().catch(() => false) : false;
    try {
      for (const name of FILES) {
        await cache.put(entryUrl(meta.id, name), new Response(files[name], { headers: { 'content-type': 'application/octet-stream' } }));
      }
      // The meta last: a model is listed only once all of its files are in.
      await cache.put(entryUrl(meta.id, 'meta.json'), new Response(JSON.stringify(meta), { headers: { 'content-type': 'application/json' } }));
    } catch (e) {
      for (const name of [...FILES, 'meta.json']) await cache.delete(entryUrl(meta.id, name)).catch(() => {});
      const why = e && e.name === 'QuotaExceededError' ? 'the browser\'s storage quota is used up' : `the browser refused to store it (${e.message})`;
      keepInMemory(meta, files, `The model could not be saved: ${why}.`);
      return;
    }
    say(`Saved ${strategyName(strategy)} (${fileSize(size)}) in this browser: it stays after a reload, until you delete it.` +
      (persisted ? ' Storage is persistent.' : ' The browser did not grant persistent storage, so it may clear saved models when space runs low.'));
    await refresh();
  } catch (err) {
    say('');
    showError(`Save failed: ${err.message}`);
  } finally {
    updateSavedControls();
  }
}

/** Bytes the origin may still store (null when the browser cannot tell). */
async function freeBytes() {
  if (!navigator.storage || !navigator.storage.estimate) return null;
  try {
    const { quota, usage } = await navigator.storage.estimate();
    return Number.isFinite(quota) && Number.isFinite(usage) ? quota - usage : null;
  } catch {
    return null;
  }
}

function keepInMemory(meta, files, why) {
  const m = { ...meta, stored: false };
  memoryOnly.set(m.id, { meta: m, files });
  say(`${why} It is kept in memory only: Try it and Download work until this page is closed or reloaded.`);
  refresh();
}

/** Load the saved model into the worker (unless it holds it already) and classify the Try it sentence. */
async function trySaved(meta) {
  if (state.running) {
    say(TRY_WHILE_TRAINING);
    return;
  }
  const text = $('try-text').value;
  if (!text.trim()) {
    $('predictions').replaceChildren(el('p', { class: 'reason' }, 'Type a sentence in 6. Try it first.'));
    return;
  }
  try {
    const here = { id: meta.id, worker: state.workerStarts, train: state.trainsStarted };
    if (!loadedIn || loadedIn.id !== here.id || loadedIn.worker !== here.worker || loadedIn.train !== here.train) {
      say(`Loading the saved ${strategyName(meta.strategy)} model…`);
      const files = await readFiles(meta);
      // Copies: a memory-only model keeps its own buffers for the next load.
      const copy = Object.fromEntries(FILES.map((n) => [n, files[n].slice()]));
      loadedIn = null;
      await request(ToWorker.LOAD_SAVED, { savedId: meta.id, files: copy }, FILES.map((n) => copy[n].buffer));
      loadedIn = here;
      say(`The saved ${strategyName(meta.strategy)} model is loaded.`);
    }
    const { prediction } = await request(ToWorker.PREDICT_SAVED, { savedId: meta.id, text });
    const results = [{ strategy: meta.strategy, status: 'saved', saved: meta.id, title: `Saved: ${title(meta)}`, prediction }];
    state.predictions = { text, results };
    renderPredictions(text, results);
    $('try-h').scrollIntoView({ block: 'nearest' });
  } catch (err) {
    say(`Could not try the saved model: ${err.message}`);
  }
}

async function downloadSaved(meta) {
  try {
    const files = await readFiles(meta);
    const folder = `webtune-${meta.strategy.replace(':', '')}`;
    const blob = makeTar(folder, FILES.map((n) => [n, files[n]]));
    saveBlob(blob, `${folder}.tar`);
    say(`Downloaded ${folder}.tar (${fileSize(blob.size)}) from the saved model.`);
  } catch (err) {
    say(`Could not download the saved model: ${err.message}`);
  }
}

async function deleteSaved(meta) {
  if (meta.stored) {
    const cache = await openCache();
    if (cache) for (const name of ['meta.json', ...FILES]) await cache.delete(entryUrl(meta.id, name)).catch(() => {});
  }
  memoryOnly.delete(meta.id);
  if (loadedIn && loadedIn.id === meta.id) {
    send({ type: ToWorker.FREE_SAVED, savedId: meta.id });
    loadedIn = null;
  }
  say(`Deleted the saved ${strategyName(meta.strategy)} model.`);
  await refresh();
  $('saved-h').focus();
}

/** Save model: usable when the strategy chosen under Download has a trained model. */
export function updateSavedControls() {
  const s = $('download-select').value;
  const run = s && state.runs[s];
  $('save-btn').disabled = !state.ready || !run || !['done', 'stopped'].includes(run.status);
  for (const button of document.querySelectorAll('#saved-list button.try')) {
    button.disabled = state.running;
    button.title = state.running ? TRY_WHILE_TRAINING : '';
  }
}

export function initSavedModels() {
  $('save-btn').addEventListener('click', save);
  $('download-select').addEventListener('change', updateSavedControls);
  updateSavedControls();
  refresh().catch(() => render());
}
