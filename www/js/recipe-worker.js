// The worker's side of "Export recipe" (js/recipe-export.js is the page's): one strategy of
// the last Train as a PyTorch script folder, made by the core (wasm WebSession.export_recipe,
// src/recipe.rs) from that Train's data, options and model source.
import { filesMessage, FromWorker } from './protocol.js';
import { revisionOf } from './model-source.js';

/**
 * Answer an `export-recipe` request. `session`: the loaded WebSession; `train`: the last
 * `train` message (null before any); `post(msg, transfer)`: the worker's postMessage. Throws
 * with a sentence for the user when there is no such Train.
 */
export function answerRecipe(msg, session, train, post) {
  if (!session || !train || !train.strategies.includes(msg.strategy)) {
    throw new Error(`No Train with ${msg.strategy} to export: train it first.`);
  }
  const hub = train.source.kind === 'hub';
  const exported = session.export_recipe(msg.strategy, train.train, train.val ?? undefined, train.valFraction ?? undefined,
    train.options, hub ? train.source.repo : undefined, hub ? revisionOf(train.source) : undefined);
  const { files, transfer } = filesMessage(exported);
  post({ type: FromWorker.RECIPE, id: msg.id, strategy: msg.strategy, files }, transfer);
}
