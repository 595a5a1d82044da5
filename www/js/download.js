// Download: the chosen strategy's exported files (config.json, tokenizer.json,
// model.safetensors) as one uncompressed ustar archive holding a folder (tar.js); for a LoRA
// run also its PEFT adapter (adapter_config.json, adapter_model.safetensors), the same way.
import { ToWorker } from './protocol.js';
import { $, el } from './dom.js';
import { isLora, strategyName } from './format.js';
import { setStatus, showError } from './status.js';
import { request } from './worker-client.js';
import { updateControls } from './controls.js';
import { makeTar } from './tar.js';

/** Exports `strategy` (its PEFT adapter when `adapter`) and saves the files as `folder`.tar. */
async function saveExport(strategy, adapter, folder, order, what) {
  const btn = $(adapter ? 'download-adapter-btn' : 'download-btn');
  btn.disabled = true;
  setStatus(`Preparing the ${strategyName(strategy)} ${what} for download…`);
  try {
    const { files } = await request(ToWorker.EXPORT, { strategy, adapter });
    const names = order.filter((n) => files[n]);
    const blob = makeTar(folder, names.map((n) => [n, files[n]]));
    const url = URL.createObjectURL(blob);
    const a = el('a', { href: url, download: `${folder}.tar` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    setStatus(`Downloaded ${folder}.tar (${(blob.size / 1e6).toFixed(1)} MB): ${names.join(', ')}.`);
  } catch (err) {
    showError(`Download failed: ${err.message}`);
  } finally {
    updateControls();
  }
}

/** Click handler of "Download model": the model (a LoRA run's merged into the weights). */
export async function download() {
  const strategy = $('download-select').value;
  if (!strategy) return;
  await saveExport(strategy, false, `webtune-${strategy.replace(':', '')}`, ['config.json', 'tokenizer.json', 'model.safetensors'], 'model');
}

/** Click handler of "Download adapter (PEFT)": a LoRA run's adapter folder. */
export async function downloadAdapter() {
  const strategy = $('download-select').value;
  if (!isLora(strategy)) return;
  await saveExport(strategy, true, `webtune-${strategy.replace(':', '')}-adapter`, ['adapter_config.json', 'adapter_model.safetensors'], 'adapter');
}
