// The Model panel: which model to train from (hub repository, the server's offline copy, or
// files on this computer), what is wrong with the choice, the note under it, the loaded
// model's description, and the model download progress.
import { $ } from './dom.js';
import { state } from './state.js';
import { setStatus } from './status.js';
import { DEFAULT_REVISION } from './model-source.js';

export const DEFAULT_HUB = 'https://huggingface.co';
const LOCAL_MODEL = { hub: '/hub', repo: 'all-MiniLM-L6-v2', revision: DEFAULT_REVISION };

function hubBase() {
  const raw = $('hub-url').value.trim() || DEFAULT_HUB;
  return new URL(raw, location.href).href.replace(/\/+$/, '');
}

/** The `source` field of a `train` message for the current choice. */
export function modelSource() {
  const choice = $('model-select').value;
  if (choice === 'local') {
    return { kind: 'hub', hub: new URL(LOCAL_MODEL.hub, location.href).href, repo: LOCAL_MODEL.repo, revision: LOCAL_MODEL.revision };
  }
  if (choice === 'files') return { kind: 'files', files: Array.from($('model-files').files || []) };
  const repo = choice === 'other' ? $('repo-id').value.trim() : choice;
  const revision = (choice === 'other' ? $('revision').value.trim() : '') || DEFAULT_REVISION;
  return { kind: 'hub', hub: hubBase(), repo, revision };
}

/** Why the current choice cannot be trained from (a sentence), or null. */
export function modelProblem() {
  const choice = $('model-select').value;
  if (choice === 'other') {
    const repo = $('repo-id').value.trim();
    if (!repo) return 'Enter a hub repository id of a BERT, DistilBERT or RoBERTa checkpoint (e.g. google-bert/bert-base-cased).';
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

/** Show the fields and the note that fit the current choice. */
export function renderModelChoice() {
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
  if (choice !== 'local' && choice !== 'files') {
    note = sameOrigin
      ? `Read from ${hubBase()} on this server, then kept in the browser's cache.`
      : `Downloaded once from ${hubHost} (only the model files; nothing you type is sent), then kept in the browser's cache.`;
  } else if (choice === 'local') {
    note = 'Served by this page\'s own server (models/all-MiniLM-L6-v2): no internet needed.';
  } else {
    note = 'Nothing is uploaded: the worker reads the files directly.';
  }
  $('model-note').textContent = note;
}

/** A `model` message: remember the loaded model (for the current Train's source) and describe it. */
export function onModelLoaded(msg) {
  state.model = { info: msg.info, label: msg.label, fromCache: msg.fromCache, key: state.trainingModelKey };
  $('progress').hidden = true;
  const i = msg.info;
  const count = i.num_parameters >= 1e6 ? `${(i.num_parameters / 1e6).toFixed(1)} M` : String(i.num_parameters);
  let text = `Loaded ${msg.label}: ${i.num_layers} layers, hidden size ${i.hidden_size}, ${i.num_heads} heads, ${count} parameters${msg.fromCache ? ' (from the browser cache)' : ''}.`;
  if (i.notes && i.notes.length) text += ' ' + i.notes.join(' ');
  $('model-info').textContent = text;
}

/** A `progress` message: the progress bar and a status line per file. */
export function renderProgress(msg) {
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
