// Try it: classify a sentence with every finished run and show each run's label and its
// most likely classes (at most TOP, highest first) as bars.
import { ToWorker } from './protocol.js';
import { $, el } from './dom.js';
import { colorOf, pct, strategyName } from './format.js';
import { state } from './state.js';
import { request } from './worker-client.js';

const TOP = 5;

/** Submit handler of the Try it form. */
export async function classify(e) {
  e.preventDefault();
  const text = $('try-text').value;
  const out = $('predictions');
  if (!text.trim()) {
    out.replaceChildren(el('p', { class: 'reason' }, 'Type a sentence first.'));
    return;
  }
  out.replaceChildren(el('p', {}, 'Classifying…'));
  try {
    const { results } = await request(ToWorker.PREDICT, { text });
    state.predictions = { text, results };
    if (!results.length) {
      out.replaceChildren(el('p', { class: 'reason' }, 'Train a strategy first.'));
      return;
    }
    renderPredictions(text, results);
  } catch (err) {
    out.replaceChildren(el('p', { class: 'reason' }, `Could not classify: ${err.message}`));
  }
}

/**
 * Show `results` (per model: `{strategy, status, prediction}` or `{strategy, status, error}`;
 * optional `title`, e.g. a saved model's) for `text` under Try it.
 */
export function renderPredictions(text, results) {
  $('predictions').replaceChildren(
    el('p', { class: 'quoted' }, '“', text, '”'),
    ...results.map((r) => {
      const title = r.title || strategyName(r.strategy) + (r.status === 'stopped' ? ' (stopped early)' : '');
      if (r.error) return el('div', { class: 'pred' }, el('h3', {}, title), el('p', { class: 'reason' }, r.error));
      const p = r.prediction;
      const ranked = p.labels.map((label, i) => ({ label, probability: p.probabilities[i] }))
        .sort((x, y) => y.probability - x.probability);
      const shown = ranked.slice(0, TOP);
      const rest = ranked.slice(TOP);
      const restShare = rest.reduce((s, c) => s + c.probability, 0);
      return el('div', { class: 'pred', 'data-strategy': r.strategy },
        el('h3', {}, el('span', { class: 'swatch', style: { background: colorOf(r.strategy) }, 'aria-hidden': 'true' }), title, ' → ', el('strong', {}, p.label)),
        el('ul', { class: 'probs', 'aria-label': `${title}: ${rest.length ? `the ${TOP} most likely of ${p.labels.length} classes` : 'class probabilities'}` },
          ...shown.map((c) => el('li', { class: c.label === p.label ? 'top' : '' },
            el('span', { class: 'plabel' }, c.label),
            el('span', { class: 'bar', 'aria-hidden': 'true' }, el('span', { style: { width: `${(c.probability * 100).toFixed(1)}%`, background: colorOf(r.strategy) } })),
            el('span', { class: 'num' }, pct(c.probability))))),
        rest.length ? el('p', { class: 'hint more' }, `and ${rest.length} more class${rest.length === 1 ? '' : 'es'} (${pct(restShare)} together)`) : null);
    }));
}
