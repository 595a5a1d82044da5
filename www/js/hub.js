// Model files for the worker: a hub repository (`{hub}/{repo}/resolve/{revision}/{file}`,
// huggingface.co or `webtune serve`'s /hub mirror) downloaded with progress and kept in the
// Cache API, or files picked on this computer. As transformers.js keeps its hub code apart
// from its models, this module knows nothing about training: it hands bytes to the driver.
import { ErrorCode, FromWorker } from './protocol.js';
import { hubFileUrl, MODEL_FILES } from './model-source.js';
import { errorMessage, UserError } from './worker-errors.js';

const CACHE_NAME = 'webtune-models-v1';

const size = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${n} bytes`);

/** The model cache, or null where the Cache API is unavailable (e.g. not a secure context). */
export async function openCache() {
  try {
    return await caches.open(CACHE_NAME);
  } catch {
    return null; // work from memory
  }
}

async function readCached(cache, url) {
  if (!cache) return null;
  try {
    const hit = await cache.match(url);
    if (!hit) return null;
    const bytes = new Uint8Array(await hit.arrayBuffer());
    const expected = Number(hit.headers.get('x-webtune-length'));
    if (expected === bytes.byteLength) return bytes;
    await cache.delete(url); // inconsistent entry: never trust it
  } catch {
    // fall through to a download
  }
  return null;
}

async function downloadFile(f, signal, onProgress) {
  const origin = new URL(f.url).origin;
  let resp;
  try {
    resp = await fetch(f.url, { signal, cache: 'no-store', credentials: 'omit' });
  } catch (e) {
    if (signal.aborted) throw e;
    throw new UserError(
      `Could not reach the model hub at ${origin} (${errorMessage(e)}). You may be offline, or the ` +
      'hub is blocked from here. Choose "all-MiniLM-L6-v2 — local offline copy" under Model to ' +
      'train without the network.', ErrorCode.HUB_UNREACHABLE);
  }
  if (!resp.ok) {
    const hint = resp.status === 404
      ? ' Check the repository id and revision (the repository must have config.json, tokenizer.json and model.safetensors).'
      : resp.status === 401 || resp.status === 403
        ? ' The repository may be private or gated; download the files yourself and pick them with "Model files on this computer".'
        : '';
    throw new UserError(`Downloading ${f.name} failed: the hub answered ${resp.status} ${resp.statusText} for ${f.url}.${hint}`, ErrorCode.HUB_HTTP);
  }
  const header = resp.headers.get('content-length');
  const expected = header !== null && /^\d+$/.test(header) ? Number(header) : null;
  f.total = expected;
  onProgress();
  // Write straight into one buffer when the size is known (the safetensors file can be
  // hundreds of MB; collecting chunks and concatenating would need twice that).
  let buffer = expected !== null ? new Uint8Array(expected) : null;
  let chunks = buffer ? null : [];
  let received = 0;
  const reader = resp.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (buffer && received + value.byteLength > buffer.byteLength) {
        // More bytes than announced (a compressed transfer): switch to chunks.
        chunks = [buffer.subarray(0, received)];
        buffer = null;
      }
      if (buffer) buffer.set(value, received);
      else chunks.push(value);
      received += value.byteLength;
      f.loaded = received;
      onProgress();
    }
  } catch (e) {
    if (signal.aborted) throw e;
    throw new UserError(
      `The download of ${f.name} was cut off after ${size(received)}${expected !== null ? ` of ${size(expected)}` : ''} ` +
      `(${errorMessage(e)}). Nothing was saved; press Train to try again.`, ErrorCode.DOWNLOAD_CUT);
  }
  if (expected !== null && received < expected) {
    throw new UserError(
      `The download of ${f.name} ended early: ${received} of ${expected} bytes. Nothing was saved; ` +
      'press Train to try again.', ErrorCode.DOWNLOAD_CUT);
  }
  if (buffer) return received === buffer.byteLength ? buffer : buffer.slice(0, received);
  const out = new Uint8Array(received);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

let quotaWarned = false;

async function storeInCache(cache, url, bytes, post) {
  if (!cache) return;
  try {
    await cache.put(url, new Response(bytes, {
      headers: {
        'content-type': 'application/octet-stream',
        'x-webtune-length': String(bytes.byteLength),
      },
    }));
  } catch (e) {
    try { await cache.delete(url); } catch { /* ignore */ }
    if (!quotaWarned) {
      quotaWarned = true;
      const why = e && e.name === 'QuotaExceededError'
        ? 'the browser\'s storage quota is used up'
        : `the browser refused to store it (${errorMessage(e)})`;
      post({ type: FromWorker.WARNING, message: `The model could not be saved for next time: ${why}. It stays in memory for this visit, and will be downloaded again after a reload.` });
    }
  }
}

/**
 * A hub source read in two parts: `small()` → config.json and tokenizer.json (a few MB at
 * most), so that the Train can be checked and planned before `weights()` reads
 * model.safetensors (hundreds of MB). Progress (`progress` messages) is reported over all
 * three files through `post`; `abort()` stops the download in progress (Stop).
 */
export function hubReader(source, cache, post) {
  const files = MODEL_FILES.map((name) => ({ name, url: hubFileUrl(source, name), loaded: 0, total: null, fromCache: false }));
  const t0 = performance.now();
  let lastPost = 0;
  let active = null; // AbortController of the download in progress
  const report = (force = false) => {
    const now = performance.now();
    if (!force && now - lastPost < 150) return;
    lastPost = now;
    const downloaded = files.filter((f) => !f.fromCache).reduce((s, f) => s + f.loaded, 0);
    const seconds = (now - t0) / 1000;
    post({
      type: FromWorker.PROGRESS,
      phase: 'download',
      files: files.map(({ name, loaded, total, fromCache }) => ({ name, loaded, total, fromCache })),
      loaded: files.reduce((s, f) => s + f.loaded, 0),
      total: files.every((f) => f.total !== null) ? files.reduce((s, f) => s + f.total, 0) : null,
      mbps: seconds > 0.05 ? downloaded / 1e6 / seconds : 0,
    });
  };
  const getAll = async (wanted) => {
    const controller = new AbortController();
    active = controller;
    const getOne = async (f) => {
      const cached = await readCached(cache, f.url);
      if (cached) {
        f.fromCache = true;
        f.loaded = f.total = cached.byteLength;
        report();
        return cached;
      }
      const bytes = await downloadFile(f, controller.signal, report);
      await storeInCache(cache, f.url, bytes, post);
      return bytes;
    };
    try {
      return await Promise.all(wanted.map(getOne));
    } catch (e) {
      controller.abort(); // stop the other downloads; their partial bytes are dropped
      throw e;
    } finally {
      active = null;
    }
  };
  return {
    async small() {
      const [config, tokenizer] = await getAll(files.slice(0, 2));
      return { config, tokenizer };
    },
    async weights() {
      const [model] = await getAll(files.slice(2));
      report(true);
      return model;
    },
    fromCache: () => files.every((f) => f.fromCache),
    abort() {
      if (active) active.abort();
    },
    /** Unusable files (e.g. not a BERT): do not keep them in the cache. */
    async forget() {
      if (!cache) return;
      for (const f of files) {
        try { await cache.delete(f.url); } catch { /* ignore */ }
      }
    },
  };
}

/** Files picked on this computer, read in the same two parts as a hub source. */
export function localReader(source) {
  const byName = new Map();
  for (const f of source.files) {
    const name = f.name.toLowerCase();
    if (name === 'config.json') byName.set('config.json', f);
    else if (name === 'tokenizer.json') byName.set('tokenizer.json', f);
    else if (name.endsWith('.safetensors')) byName.set('model.safetensors', f);
  }
  const read = async (name) => new Uint8Array(await byName.get(name).arrayBuffer());
  return {
    async small() {
      const missing = MODEL_FILES.filter((n) => !byName.has(n));
      if (missing.length) {
        throw new UserError(`Pick all three model files: config.json, tokenizer.json and model.safetensors (missing: ${missing.join(', ')}).`);
      }
      return { config: await read('config.json'), tokenizer: await read('tokenizer.json') };
    },
    weights: () => read('model.safetensors'),
    fromCache: () => false,
    abort() {},
    async forget() {},
  };
}
