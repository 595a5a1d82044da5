// Download: the chosen strategy's exported files (config.json, tokenizer.json,
// model.safetensors) as one uncompressed ustar archive holding a folder (tar.js).
import { ToWorker } from './protocol.js';
import { $, el } from './dom.js';
import { strategyName } from './format.js';
import { setStatus, showError } from './status.js';
import { request } from './worker-client.js';
import { updateControls } from './controls.js';
import { makeTar } from './tar.js';

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
