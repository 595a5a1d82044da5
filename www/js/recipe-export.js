// "Export recipe" under Results: per strategy of the last Train, a button that downloads the
// recipe as a PyTorch script folder (train.py, recipe.json, the data, order.json,
// init.safetensors, requirements.txt, README.md; src/recipe.rs makes it, js/recipe-worker.js
// asks for it) in one tar archive. The buttons follow the Results table: they are redrawn
// whenever its rows change, for the runs that are done or stopped, and wait while a Train runs.
import { ToWorker } from './protocol.js';
import { $, el } from './dom.js';
import { strategyName } from './format.js';
import { state } from './state.js';
import { setStatus, showError } from './status.js';
import { request } from './worker-client.js';
import { makeTar } from './tar.js';
import { saveBlob } from './record.js';

const EXPORTABLE = new Set(['done', 'stopped']);

/** Click handler: the recipe of `strategy` as webtune-recipe-<strategy>.tar. */
async function exportRecipe(strategy, button) {
  button.disabled = true;
  setStatus(`Writing the ${strategyName(strategy)} recipe…`);
  try {
    const { files } = await request(ToWorker.EXPORT_RECIPE, { strategy });
    const folder = `webtune-recipe-${strategy.replace(':', '')}`;
    const names = Object.keys(files);
    const blob = makeTar(folder, names.map((n) => [n, files[n]]));
    saveBlob(blob, `${folder}.tar`);
    setStatus(`Downloaded ${folder}.tar: ${names.join(', ')}. Its README.md says how to run train.py on one GPU or many.`);
  } catch (err) {
    showError(`Export recipe failed: ${err.message}`);
  } finally {
    render();
  }
}

function render() {
  const box = $('recipe-export');
  const strategies = state.order.filter((s) => state.runs[s] && EXPORTABLE.has(state.runs[s].status));
  box.hidden = strategies.length === 0;
  box.replaceChildren(...strategies.map((s) => {
    const button = el('button', { type: 'button', class: 'secondary', 'data-strategy': s, disabled: state.running }, `Export recipe: ${strategyName(s)}`);
    button.addEventListener('click', () => exportRecipe(s, button));
    return button;
  }));
}

/** Follow the Results table (app.js calls this once). */
export function initRecipeExport() {
  new MutationObserver(render).observe($('results-body'), { childList: true, subtree: true, characterData: true });
  render();
}
