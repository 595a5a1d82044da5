// Download: the chosen strategy's exported files (config.json, tokenizer.json,
// model.safetensors) as one uncompressed ustar archive holding a folder, written here (no zip
// library needed).
import { ToWorker } from './protocol.js';
import { $, el } from './dom.js';
import { strategyName } from './format.js';
import { setStatus, showError } from './status.js';
import { request } from './worker-client.js';
import { updateControls } from './controls.js';

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

/** A tar Blob of `files` ([name, Uint8Array] pairs) inside `folder/`. */
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

/** Click handler of "Download model". */
export async function download() {
  const strategy = $('download-select').value;
  if (!strategy) return;
  const btn = $('download-btn');
  btn.disabled = true;
  setStatus(`Preparing the ${strategyName(strategy)} model for download…`);
  try {
    const { files } = await request(ToWorker.EXPORT, { strategy });
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
