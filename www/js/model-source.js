// A model source — where the worker reads the pre-trained files from — and the names derived
// from it, in one module that the page (model-panel.js, training.js) and the worker
// (js/hub.js, js/train-driver.js) both import: the cache key that says "same model" and the
// label shown for it can then never disagree (a hub source without a revision is `main`
// everywhere). No DOM, no worker scope: Node imports it in the tests too.
//
// A source is `{kind: 'hub', hub, repo, revision}` (`hub`: absolute base URL; `revision`:
// empty or missing = `main`) or `{kind: 'files', files: [File, ...]}`.

/** The files a model folder needs, in the order they are read. */
export const MODEL_FILES = ['config.json', 'tokenizer.json', 'model.safetensors'];

/** The revision a hub source without one reads. */
export const DEFAULT_REVISION = 'main';

/** A hub source's revision (`main` when none was given). */
export const revisionOf = (source) => source.revision || DEFAULT_REVISION;

/** A string naming a model source: equal keys, same model (the worker keeps it loaded). */
export function sourceKey(source) {
  if (source.kind === 'hub') return `hub|${source.hub}|${source.repo}|${revisionOf(source)}`;
  return 'files|' + source.files.map((f) => `${f.name}:${f.size}:${f.lastModified}`).join('|');
}

/** Where the model came from, for people (the Model panel, a results record's `model.name`). */
export function sourceLabel(source) {
  if (source.kind === 'hub') return `${source.repo} (${revisionOf(source)})`;
  return 'local files';
}

/** The URL of one file of a hub source: `{hub}/{repo}/resolve/{revision}/{file}`. */
export function hubFileUrl(source, file) {
  const base = source.hub.replace(/\/+$/, '');
  const repo = source.repo.split('/').map(encodeURIComponent).join('/');
  return `${base}/${repo}/resolve/${encodeURIComponent(revisionOf(source))}/${file}`;
}
