// The webtune end-to-end tests. Each test gets `t`: {name, base, browser, requests, console,
// dialogs, shared} and uses its own fresh browser context unless it says otherwise.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ErrorCode, FromWorker, ToWorker } from '../../www/js/protocol.js';
import { hubFileUrl, sourceKey, sourceLabel } from '../../www/js/model-source.js';
import {
  AssertionError, assert, assertEq, byRole, cacheEntries, configure, newContext, NOTEBOOK_SENTENCES, NOTEBOOK_TSV,
  openApp, readTar, setTrainingData, sleep, startServer, statusText, trainAndWait, waitTrainEnabled,
} from './helpers.mjs';
import { keepTests } from './keep-tests.mjs';
import { gpuTests } from './gpu-tests.mjs';

const XSS = '<img src=x onerror=alert(1)>';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const TARGET = path.join(ROOT, 'target');
const MODEL_BYTES = 90868376; // models/all-MiniLM-L6-v2/model.safetensors
const BANKING_TRAIN = path.join(ROOT, '../shared/data/banking/train.tsv'); // 9,003 sentences, 77 intents

/// Non-background pixels of a canvas (the embedding map's background is white).
async function inkedPixels(canvas) {
  return canvas.evaluate((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] < 200 || d[i + 1] < 200 || d[i + 2] < 200) n++;
    return n;
  });
}

/// The Look inside panel after the notebook flow (frozen + full): both embedding maps and
/// layer charts are drawn under their accessible names; they updated live; the epoch slider
/// moves full's points and leaves frozen's exactly in place; the sentence shows on hover and
/// on keyboard focus; Play animates through interpolated frames; only the classifier changed
/// under frozen, every block under full.
async function checkLookInside(page, t) {
  const live = await page.evaluate(() => { clearInterval(window.__liveTimer); return [...window.__liveMaps]; });
  t.log(`maps drawn while training: ${live.join(' ')}`);
  // (A frozen run's cached epochs can all arrive within one animation frame: one drawing is
  // enough there; full's epochs take seconds each, so its map must have been redrawn.)
  for (const [s, least] of [['frozen', 1], ['full', 2]]) {
    const epochs = new Set(live.filter((x) => x.startsWith(`${s}@`)));
    assert(epochs.size >= least, `${s}: the map should be drawn (and redrawn) while the Train runs (seen ${[...epochs]})`);
  }
  const slider = byRole(page, 'slider', 'Epoch');
  await slider.scrollIntoViewIfNeeded();
  assertEq(await slider.inputValue(), '4', 'the epoch slider follows the newest epoch');
  const region = (name) => page.getByRole('region', { name, exact: true });
  const drawnAt = async (key) => {
    await slider.focus();
    await page.keyboard.press(key);
    return page.evaluate(() => ({
      frozen: window.__webtune.insight.drawn('frozen'),
      full: window.__webtune.insight.drawn('full'),
      images: [...document.querySelectorAll('#insight-panel canvas')].map((c) => c.toDataURL()),
    }));
  };
  const first = await drawnAt('Home');
  const last = await drawnAt('End');
  for (const [s, name] of [['frozen', 'Frozen encoder'], ['full', 'Full fine-tuning']]) {
    const map = region(name).getByRole('img', { name: 'Embedding map', exact: true });
    assert(await map.isVisible(), `${s}: no visible "Embedding map"`);
    const ink = await inkedPixels(map);
    assert(ink > 200, `${s}: the embedding map looks empty (${ink} inked pixels)`);
    assertEq(first[s].epoch, 0, `${s}: epoch drawn after Home`);
    assertEq(last[s].epoch, 4, `${s}: epoch drawn after End`);
    assertEq(first[s].points.length, 10, `${s}: points drawn`);
    assert(first[s].points.every((p) => p.set === 'train'), `${s}: every point is a training sentence (no validation data)`);
  }
  const moved = (s) => Math.max(...first[s].points.map((p, k) => Math.hypot(p.cx - last[s].points[k].cx, p.cy - last[s].points[k].cy)));
  t.log(`largest motion from epoch 0 to 4 on the map: frozen ${moved('frozen').toFixed(3)} px, full ${moved('full').toFixed(1)} px`);
  assertEq(JSON.stringify(last.frozen.points.map((p) => [p.cx, p.cy])), JSON.stringify(first.frozen.points.map((p) => [p.cx, p.cy])), 'frozen: points at epoch 4 vs epoch 0 (a frozen encoder must not move them)');
  assert(moved('full') > 3, `full: the points should move between epoch 0 and 4 (largest motion ${moved('full')} px)`);
  const fullCanvas = await region('Full fine-tuning').getByRole('img', { name: 'Embedding map', exact: true }).evaluate((c) => [...document.querySelectorAll('#insight-panel canvas')].indexOf(c));
  assert(first.images[fullCanvas] !== last.images[fullCanvas], 'full: the picture should change with the slider');
  assert(last.full.points.every((p) => p.predicted === p.label), 'full: every training sentence classified right at epoch 4 (no ring)');

  // The sentence under the mouse, and from the keyboard, as text.
  const fullMap = region('Full fine-tuning').getByRole('img', { name: 'Embedding map', exact: true });
  const p0 = last.full.points[0];
  await fullMap.hover({ position: { x: p0.cx, y: p0.cy } });
  const tip = await region('Full fine-tuning').locator('.heatmap-tip').textContent();
  assert(tip.includes(`“${NOTEBOOK_SENTENCES[0]}”`) && tip.includes('true class 1, predicted 1'), `hover text: ${tip}`);
  await fullMap.focus();
  await page.keyboard.press('ArrowRight');
  const readout = await region('Full fine-tuning').locator('.readout').textContent();
  assert(readout.startsWith('Training sentence 2 of 10:') && readout.includes(`“${NOTEBOOK_SENTENCES[1]}”`), `keyboard readout: ${readout}`);

  // Play: from epoch 0 through interpolated frames to epoch 4.
  await page.evaluate(() => {
    window.__frames = new Set();
    const c = document.querySelector('#insight-panel [data-strategy="full"] canvas');
    window.__frameObserver = new MutationObserver(() => window.__frames.add(c.dataset.epoch));
    window.__frameObserver.observe(c, { attributes: true, attributeFilter: ['data-epoch'] });
  });
  await byRole(page, 'button', 'Play').click();
  await page.waitForFunction(() => !window.__webtune.insight.playing, null, { timeout: 30_000 });
  const frames = await page.evaluate(() => { window.__frameObserver.disconnect(); return [...window.__frames].map(Number); });
  t.log(`Play drew ${frames.length} frames of full, e.g. epochs ${frames.slice(0, 6).map((f) => f.toFixed(2)).join(', ')}`);
  assert(frames.some((f) => f > 0 && f < 4 && !Number.isInteger(f)), 'Play should draw frames between snapshots');
  assertEq(frames[frames.length - 1], 4, 'Play ends at the last epoch');
  assertEq(await slider.inputValue(), '4', 'slider after Play');

  // Layer changes at epoch 4: frozen moved only its classifier; full moved every block.
  for (const [s, name] of [['frozen', 'Frozen encoder'], ['full', 'Full fine-tuning']]) {
    const chart = region(name).getByRole('img', { name: 'Layer changes', exact: true });
    assert(await chart.isVisible(), `${s}: no visible "Layer changes"`);
    const bars = await chart.locator('g[data-block]').evaluateAll((gs) => gs.map((g) => ({
      name: g.dataset.block, change: Number(g.dataset.change), relative: g.dataset.relative === 'true',
      width: Number(g.querySelector('.layer-bar').getAttribute('width')), value: g.querySelector('.layer-value').textContent,
    })));
    t.log(`${s} layer changes: ${bars.map((b) => `${b.name} ${b.value}`).join(', ')}`);
    assertEq(bars.map((b) => b.name).join(','), 'embeddings,layer 0,layer 1,layer 2,layer 3,layer 4,layer 5,pooler,classifier', `${s}: blocks`);
    const head = bars[bars.length - 1];
    assert(!head.relative && head.value.startsWith('norm ') && head.width > 0, `${s}: the classifier is drawn as its norm: ${JSON.stringify(head)}`);
    const encoder = bars.slice(0, -1);
    if (s === 'frozen') assert(encoder.every((b) => b.change === 0 && b.width === 0), `frozen: only the classifier may change: ${JSON.stringify(encoder)}`);
    else assert(encoder.every((b) => b.change > 0 && b.width > 0), `full: every block should change: ${JSON.stringify(encoder)}`);
  }
  const described = await region('Frozen encoder').getByRole('img', { name: 'Layer changes', exact: true }).evaluate((c) => document.getElementById(c.getAttribute('aria-describedby')).textContent);
  assert(described.startsWith('After epoch 4: No pre-trained weights moved.'), `frozen layer description: ${described}`);
  const sep = await page.locator('#insight-panel [data-strategy="full"] .sep-chart polyline[data-strategy="full"]').getAttribute('points');
  assertEq(sep.trim().split(' ').length, 5, 'full: separation points (epochs 0–4)');

  await page.locator('#insight-panel').screenshot({ path: path.join(TARGET, 'e2e-insight.png') });
}

/// Move the mouse to the middle of cell (row i, column j) of the confusion heat map.
async function hoverCell(page, i, j) {
  const canvas = page.getByRole('img', { name: 'Confusion matrix', exact: true });
  const g = JSON.parse(await canvas.getAttribute('data-geometry'));
  await canvas.scrollIntoViewIfNeeded();
  await canvas.hover({ position: { x: g.left + (j + 0.5) * g.cell, y: g.top + (i + 0.5) * g.cell } });
}

function chartSeriesWithData(chart) {
  // uPlot keeps [x, ...series]; count points per series.
  return chart.data.slice(1).map((ys) => ys.filter((v) => v !== null && v !== undefined).length);
}

export const tests = [
  {
    name: 'model cache key: one function for the page and the worker; a hub source without a revision is main',
    timeout: 10_000,
    async run(t) {
      const hub = { kind: 'hub', hub: 'http://127.0.0.1:1/hub', repo: 'sentence-transformers/all-MiniLM-L6-v2' };
      for (const missing of [{}, { revision: '' }, { revision: undefined }]) {
        const source = { ...hub, ...missing };
        assertEq(sourceKey(source), sourceKey({ ...hub, revision: 'main' }), `key of ${JSON.stringify(missing)}`);
        assertEq(sourceLabel(source), 'sentence-transformers/all-MiniLM-L6-v2 (main)', 'label');
        assertEq(hubFileUrl(source, 'config.json'), 'http://127.0.0.1:1/hub/sentence-transformers/all-MiniLM-L6-v2/resolve/main/config.json', 'URL');
      }
      assert(sourceKey({ ...hub, revision: 'v2' }) !== sourceKey(hub), 'another revision is another model');
      // No module names a source by itself: the page's and the worker's keys come from model-source.js.
      const www = path.join(ROOT, 'www');
      const modules = [path.join(www, 'worker.js'), ...fs.readdirSync(path.join(www, 'js')).map((f) => path.join(www, 'js', f))];
      for (const file of modules.filter((f) => !f.endsWith('model-source.js'))) {
        const text = fs.readFileSync(file, 'utf8');
        assert(!/`hub\|/.test(text) && !/revision \|\| 'main'/.test(text), `${path.relative(ROOT, file)} builds its own model key or revision default`);
      }
      for (const user of ['js/train-driver.js', 'js/training.js', 'js/train-form.js']) {
        assert(/import \{[^}]*\bsourceKey\b[^}]*\} from '\.\/model-source\.js'/.test(fs.readFileSync(path.join(www, user), 'utf8')), `${user} imports sourceKey from model-source.js`);
      }
    },
  },

  {
    name: 'notebook flow: local model via /hub, frozen + full, 4 epochs, defaults',
    timeout: 1_200_000,
    async run(t) {
      const context = await newContext(t.browser, t);
      const page = await openApp(context, t.base, '?hub=/hub');
      // Defaults are the notebook's.
      assertEq(await byRole(page, 'spinbutton', 'Epochs').inputValue(), '4', 'default epochs');
      assertEq(await byRole(page, 'spinbutton', 'Learning rate').inputValue(), '2e-5', 'default learning rate');
      assertEq(await byRole(page, 'spinbutton', 'Batch size').inputValue(), '2', 'default batch size');
      assertEq(await byRole(page, 'spinbutton', 'Seed').inputValue(), '0', 'default seed');
      assertEq(await byRole(page, 'textbox', 'Training data').inputValue(), NOTEBOOK_TSV, 'prefilled training data');
      // Threads (issue 7): served with COOP/COEP, the page is cross-origin isolated and offers every
      // core by default; the worker runs the threaded build (www/pkg-threads).
      const cores = await page.evaluate(() => navigator.hardwareConcurrency);
      assert(cores > 1, `this check needs a machine with more than one core (navigator.hardwareConcurrency = ${cores})`);
      assertEq(await page.evaluate(() => self.crossOriginIsolated), true, 'page cross-origin isolated');
      const threadsBox = byRole(page, 'spinbutton', 'Threads');
      assertEq(await threadsBox.inputValue(), String(cores), 'default Threads (navigator.hardwareConcurrency)');
      assertEq(await threadsBox.isEnabled(), true, 'Threads enabled on an isolated page');
      assertEq(await threadsBox.getAttribute('max'), String(cores), 'Threads max');
      assertEq(await page.evaluate(() => window.__webtune.state.workerThreads), cores, 'threads of the worker\'s wasm (ready message)');
      await configure(page, { model: 'local', frozen: true, top: false, full: true });
      // Record what the embedding maps draw while the Train runs (they update live, per epoch).
      await page.evaluate(() => {
        window.__liveMaps = new Set();
        window.__liveTimer = setInterval(() => {
          if (!window.__webtune.state.running) return;
          for (const s of ['frozen', 'full']) {
            const d = window.__webtune.insight.drawn(s);
            if (d) window.__liveMaps.add(`${s}@${d.epoch}`);
          }
        }, 40);
      });
      const t0 = Date.now();
      const result = await trainAndWait(page);
      t.log(`train (frozen + full, 4 epochs) took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      assert(!result.lastError, `unexpected error: ${result.lastError && result.lastError.message}`);
      assertEq(result.order.join(','), 'frozen,full', 'strategies run');
      const frozen = result.runs.frozen;
      const full = result.runs.full;
      assertEq(frozen.status, 'done', 'frozen status');
      assertEq(full.status, 'done', 'full status');
      t.log(`frozen: train acc ${frozen.done.train_accuracy}, ${frozen.done.steps} steps, ${frozen.done.elapsed_ms.toFixed(0)} ms; ` +
        `full: train acc ${full.done.train_accuracy}, ${full.done.steps} steps, ${full.done.elapsed_ms.toFixed(0)} ms, peak memory ${(full.memory / 1048576).toFixed(0)} MB`);
      t.log(`full losses: ${full.losses.map((l) => l.toFixed(3)).join(' ')}`);
      t.log(`frozen losses: ${frozen.losses.map((l) => l.toFixed(5)).join(' ')}`);
      assertEq(full.done.train_accuracy, 1, 'full fine-tuning training accuracy');
      assert(frozen.done.train_accuracy <= 0.6, `frozen training accuracy should stay ≤ 60 %, got ${frozen.done.train_accuracy}`);
      assertEq(full.epochs.length, 4, 'full: epoch events');
      assertEq(frozen.epochs.length, 4, 'frozen: epoch events');
      assertEq(full.losses.length, 20, 'full: step events (10 sentences / batch 2 × 4 epochs)');
      for (const r of [frozen, full]) {
        assertEq(r.start.threads, cores, `${r.strategy}: threads in the start event`);
        assertEq(r.done.threads, cores, `${r.strategy}: threads in the done event`);
      }
      const wasmFetched = (from) => t.requests.slice(from).map((r) => new URL(r.url).pathname).filter((p) => p.endsWith('_bg.wasm'));
      const firstWasm = wasmFetched(0);
      t.log(`wasm fetched: ${firstWasm.join(', ')}`);
      // Chromium has relaxed SIMD: the threaded package's relaxed module, and nothing else.
      assertEq(firstWasm.join(','), '/pkg-threads/webtune_relaxed_bg.wasm', 'the worker should load only the threaded build\'s relaxed-SIMD module');
      assertEq(await page.evaluate(() => window.__webtune.state.workerSimd), 'relaxed', 'SIMD of the worker\'s wasm (ready message)');

      // Both charts received data for both strategies.
      const charts = await page.evaluate(() => ({
        loss: window.__webtune.charts.loss.data.map((s) => Array.from(s)),
        acc: window.__webtune.charts.acc.data.map((s) => Array.from(s)),
        lossLabels: window.__webtune.charts.loss.series.map((s) => s.label),
        accLabels: window.__webtune.charts.acc.series.map((s) => s.label),
      }));
      const lossPoints = chartSeriesWithData({ data: charts.loss });
      const accPoints = chartSeriesWithData({ data: charts.acc });
      t.log(`loss chart series ${JSON.stringify(charts.lossLabels.slice(1))} points ${JSON.stringify(lossPoints)}; accuracy chart ${JSON.stringify(accPoints)}`);
      assertEq(lossPoints.join(','), '20,20', 'loss chart points per strategy');
      assertEq(accPoints.join(','), '4,4', 'accuracy chart points per strategy');

      // Results table: columns by name, one row per strategy.
      const table = page.getByRole('table', { name: 'Results' });
      const headers = await table.locator('thead th').allTextContents();
      for (const h of ['Strategy', 'Train accuracy', 'Validation accuracy', 'Time']) assert(headers.includes(h), `results column ${h} missing: ${headers}`);
      const col = (h) => headers.indexOf(h);
      const rows = await table.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => Array.from(tr.children).map((c) => c.textContent)));
      t.log(`results: ${JSON.stringify(rows)}`);
      const fullRow = rows.find((r) => r[col('Strategy')] === 'Full fine-tuning');
      assert(fullRow, 'no Full fine-tuning row');
      assertEq(fullRow[col('Train accuracy')], '100.0 %', 'full row train accuracy');
      for (const r of rows) assertEq(r[col('Threads')], String(cores), `Threads column of ${r[col('Strategy')]}`);
      assert(/\d/.test(fullRow[col('Time')]), `full row time: ${fullRow[col('Time')]}`);
      assert(rows.some((r) => r[col('Strategy')] === 'Frozen encoder'), 'no Frozen encoder row');

      await checkLookInside(page, t);

      // Confusion matrix of full: 5/5 on the diagonal — read from the heat map by hover and keyboard.
      await byRole(page, 'combobox', 'Confusion matrix for').selectOption('full');
      const heat = byRole(page, 'img', 'Confusion matrix');
      for (const i of [0, 1]) {
        await hoverCell(page, i, i);
        const read = await page.locator('#confusion-readout').textContent();
        assert(new RegExp(`: 5 \\(100\\.0 % of “${i}”\\) — correct$`).test(read), `full, diagonal cell ${i}: ${read}`);
      }
      await heat.focus();
      await page.keyboard.press('ArrowRight');
      const offDiag = await page.locator('#confusion-readout').textContent();
      assert(offDiag.startsWith('True “0”, predicted “1”: 0'), `keyboard readout of cell (0, 1): ${offDiag}`);
      assertEq(await page.locator('#confusion-top li').allTextContents().then((l) => l.join('|')), 'None: every sentence was classified correctly.', 'largest confusions of full');

      // Try it.
      // A training sentence: full fine-tuning has 100 % training accuracy, so it must get it right
      // (4 epochs at 2e-5 leave small margins: new sentences are close to 50/50).
      await byRole(page, 'textbox', 'Try a sentence').fill('I love this product!');
      await byRole(page, 'button', 'Classify').click();
      await page.waitForFunction(() => window.__webtune.state.predictions, null, { timeout: 60_000 });
      const preds = await page.evaluate(() => window.__webtune.state.predictions.results);
      assertEq(preds.map((p) => p.strategy).join(','), 'frozen,full', 'Try-it strategies');
      for (const p of preds) {
        assert(!p.error, `Try-it error: ${p.error}`);
        const sum = p.prediction.probabilities.reduce((a, b) => a + b, 0);
        assert(Math.abs(sum - 1) < 1e-4, `probabilities sum to ${sum}`);
        assertEq(p.prediction.labels.join(','), '0,1', 'Try-it labels');
      }
      t.log(`Try it: ${JSON.stringify(preds.map((p) => [p.strategy, p.prediction.label, p.prediction.probabilities.map((x) => x.toFixed(3))]))}`);
      assertEq(preds[1].prediction.label, '1', 'full fine-tuning on a training sentence');
      const shown = await page.locator('#predictions').textContent();
      assert(shown.includes('%'), 'Try-it shows probabilities');

      // Download the full model: one tar with the three files.
      await byRole(page, 'combobox', 'Strategy to download').selectOption('full');
      const [download] = await Promise.all([
        page.waitForEvent('download', { timeout: 120_000 }),
        byRole(page, 'button', 'Download model').click(),
      ]);
      const file = await download.path();
      const buf = fs.readFileSync(file);
      const files = readTar(buf);
      t.log(`download ${download.suggestedFilename()}: ${files.map((f) => `${f.name} (${f.size} B)`).join(', ')}`);
      assertEq(download.suggestedFilename(), 'webtune-full.tar', 'download name');
      assertEq(files.map((f) => f.name).join(','), 'webtune-full/config.json,webtune-full/tokenizer.json,webtune-full/model.safetensors', 'tar members');
      for (const f of files) assert(f.size > 0, `${f.name} is empty`);
      const config = JSON.parse(files[0].data.toString('utf8'));
      assert(config.id2label && Object.keys(config.id2label).length === 2, `config.json id2label: ${JSON.stringify(config.id2label)}`);
      try {
        const listing = execFileSync('tar', ['-tvf', file], { encoding: 'utf8' });
        t.log(`tar -tvf:\n${listing.trim()}`);
      } catch (e) {
        throw new Error(`GNU tar cannot read the download: ${e.message}`);
      }
      const out = TARGET;
      fs.mkdirSync(out, { recursive: true });
      fs.copyFileSync(file, path.join(out, 'e2e-webtune-full.tar'));

      await page.screenshot({ path: path.join(out, 'e2e-notebook.png'), fullPage: true });
      t.shared.notebookRan = true;

      // The same Train on one thread: the worker restarts (a rayon pool has one size per wasm
      // instance) with the single-threaded build, reads the model from the Cache API, and gives
      // the same curve: the same accuracies, per-step losses within 1e-5 relative.
      const starts = await page.evaluate(() => window.__webtune.state.workerStarts);
      const mark = t.requests.length;
      await configure(page, { threads: 1 });
      const one = await trainAndWait(page);
      assert(!one.lastError, `one-thread run: ${one.lastError && one.lastError.message}`);
      assertEq(await page.evaluate(() => window.__webtune.state.workerStarts), starts + 1, 'worker restarted for another thread count');
      assertEq(one.model.fromCache, true, 'model from the cache after the restart');
      assert(!t.requests.slice(mark).some((q) => q.url.includes('/resolve/')), 'model files downloaded again for the one-thread run');
      const secondWasm = wasmFetched(mark);
      assertEq(secondWasm.join(','), '/pkg/webtune_relaxed_bg.wasm', 'one thread should load the single-threaded build (its relaxed-SIMD module)');
      const rows1 = await table.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => Array.from(tr.children).map((c) => c.textContent)));
      for (const r of rows1) assertEq(r[col('Threads')], '1', `Threads column of ${r[col('Strategy')]} (one thread)`);
      let worst = 0;
      for (const [name, multi] of [['frozen', frozen], ['full', full]]) {
        const single = one.runs[name];
        assertEq(single.status, 'done', `${name} on one thread`);
        assertEq(single.start.threads, 1, `${name}: threads in the one-thread start event`);
        assertEq(single.done.threads, 1, `${name}: threads in the one-thread done event`);
        assertEq(single.done.train_accuracy, multi.done.train_accuracy, `${name}: final training accuracy, 1 vs ${cores} threads`);
        assertEq(single.epochs.map((e) => e.train_accuracy).join(','), multi.epochs.map((e) => e.train_accuracy).join(','), `${name}: per-epoch training accuracy, 1 vs ${cores} threads`);
        assertEq(single.losses.length, multi.losses.length, `${name}: steps, 1 vs ${cores} threads`);
        for (let i = 0; i < single.losses.length; i++) {
          const rel = Math.abs(multi.losses[i] - single.losses[i]) / Math.max(Math.abs(single.losses[i]), 1e-12);
          worst = Math.max(worst, rel);
          assert(rel <= 1e-5, `${name} step ${i + 1}: loss ${multi.losses[i]} on ${cores} threads vs ${single.losses[i]} on one (relative ${rel.toExponential(2)} > 1e-5)`);
        }
      }
      t.log(`1 vs ${cores} threads: same accuracies, per-step losses within ${worst.toExponential(2)} relative; full run ${one.runs.full.done.elapsed_ms.toFixed(0)} ms on one thread vs ${full.done.elapsed_ms.toFixed(0)} ms on ${cores}`);
      await context.close();
    },
  },

  {
    name: 'LoRA in the page: lora:4 (alpha 16, dropout 0.1, query+key+value) on the notebook data, 2 epochs; every view; merged and PEFT adapter downloads',
    timeout: 600_000,
    async run(t) {
      const context = await newContext(t.browser, t);
      const page = await openApp(context, t.base, '?hub=/hub');
      await configure(page, { model: 'local', frozen: false, top: false, full: false, epochs: 2 });
      // The controls, by accessible name: LoRA + Rank next to the other strategies; the advanced
      // options in a disclosure opened from the keyboard, with PEFT's defaults.
      await byRole(page, 'checkbox', 'LoRA').check();
      await byRole(page, 'spinbutton', 'Rank').fill('4');
      const summary = page.locator('#lora-details summary');
      await summary.focus();
      await page.keyboard.press('Enter');
      assertEq(await page.locator('#lora-details').evaluate((d) => d.open), true, 'LoRA options open from the keyboard');
      assertEq(await byRole(page, 'spinbutton', 'LoRA alpha').inputValue(), '8', 'default alpha');
      assertEq(await byRole(page, 'spinbutton', 'Adapter dropout').inputValue(), '0', 'default adapter dropout');
      assertEq(await byRole(page, 'spinbutton', 'LoRA learning rate').inputValue(), '5e-4', 'default LoRA learning rate');
      const targets = ['query', 'key', 'value', 'attention output', 'intermediate', 'output'];
      const ticked = [];
      for (const name of targets) if (await byRole(page, 'checkbox', name).isChecked()) ticked.push(name);
      assertEq(ticked.join(','), 'query,value', 'default projections');
      // Clear messages for bad values; Train stays disabled until they are fixed.
      await byRole(page, 'spinbutton', 'LoRA alpha').fill('0');
      await byRole(page, 'checkbox', 'query').uncheck();
      await byRole(page, 'checkbox', 'value').uncheck();
      await byRole(page, 'spinbutton', 'Adapter dropout').fill('1');
      const reason = await page.locator('#train-reason').textContent();
      t.log(`reasons: ${reason}`);
      for (const m of ['LoRA alpha must be a number > 0', 'Adapter dropout must be a number from 0 up to (not including) 1', 'Choose at least one projection for the LoRA adapters']) {
        assert(reason.includes(m), `Train's reasons should say "${m}": ${reason}`);
      }
      assertEq(await byRole(page, 'button', 'Train').isDisabled(), true, 'Train disabled with bad LoRA options');
      await byRole(page, 'spinbutton', 'LoRA alpha').fill('16');
      await byRole(page, 'spinbutton', 'Adapter dropout').fill('0.1');
      await byRole(page, 'spinbutton', 'LoRA learning rate').fill('1e-3');
      for (const name of ['query', 'key', 'value']) await byRole(page, 'checkbox', name).check();

      const result = await trainAndWait(page);
      assert(!result.lastError, `unexpected error: ${result.lastError && result.lastError.message}`);
      assertEq(result.order.join(','), 'lora:4', 'strategies run');
      const run = result.runs['lora:4'];
      assertEq(run.status, 'done', 'LoRA status');
      // Trainable parameters from MiniLM's shapes (6 layers, hidden 384, 2 labels) and the options
      // the form sent: 3 projections × 6 layers × (A 4×384 + B 384×4), pooler 384×384 + 384,
      // classifier 384×2 + 2. Without options.lora the core would adapt only query and value.
      const expected = 3 * 6 * (4 * 384 + 384 * 4) + (384 * 384 + 384) + (384 * 2 + 2);
      assertEq(run.start.trainable_parameters, expected, 'trainable parameters of lora:4 on query, key, value');
      assertEq(run.losses.length, 10, 'LoRA step events (10 sentences / batch 2 × 2 epochs)');
      assertEq(run.epochs.length, 2, 'LoRA epoch events');
      t.log(`lora:4: train acc ${run.done.train_accuracy}, losses ${run.losses.map((l) => l.toFixed(3)).join(' ')}, ${run.done.elapsed_ms.toFixed(0)} ms, peak ${run.done.peak_bytes} B`);

      // Curves: named and coloured as LoRA.
      const charts = await page.evaluate(() => ({
        loss: window.__webtune.charts.loss.data.map((s) => Array.from(s)),
        acc: window.__webtune.charts.acc.data.map((s) => Array.from(s)),
        lossLabels: window.__webtune.charts.loss.series.slice(1).map((s) => s.label),
        accLabels: window.__webtune.charts.acc.series.slice(1).map((s) => s.label),
      }));
      assertEq(chartSeriesWithData({ data: charts.loss }).join(','), '10', 'loss chart points');
      assertEq(chartSeriesWithData({ data: charts.acc }).join(','), '2', 'accuracy chart points');
      assertEq(charts.lossLabels.join(','), 'LoRA rank 4', 'loss series label');
      assertEq(charts.accLabels[0], 'LoRA rank 4 (train)', 'accuracy series label');
      const swatch = (await page.locator('#results-body tr[data-strategy="lora:4"] .swatch').evaluate((s) => getComputedStyle(s).backgroundColor));
      assert(swatch !== 'rgb(107, 114, 128)', `LoRA needs its own colour, not the fallback grey: ${swatch}`);

      // Results table.
      const row = await page.locator('#results-body tr[data-strategy="lora:4"]').evaluate((tr) => Array.from(tr.children).map((c) => c.textContent));
      t.log(`results row: ${JSON.stringify(row)}`);
      assertEq(row[0], 'LoRA rank 4', 'results row name');
      assertEq(row[1], 'done', 'results row status');
      assert(/%$/.test(row[2]), `results train accuracy: ${row[2]}`);

      // Look inside: a card of its own, the map drawn, and layer changes: the pre-trained embeddings
      // untouched, every layer (merged adapters), the pooler and the head moved.
      const card = page.getByRole('region', { name: 'LoRA rank 4', exact: true });
      const map = card.getByRole('img', { name: 'Embedding map', exact: true });
      await map.scrollIntoViewIfNeeded();
      assert(await inkedPixels(map) > 200, 'LoRA: the embedding map looks empty');
      const bars = await card.getByRole('img', { name: 'Layer changes', exact: true }).locator('g[data-block]').evaluateAll((gs) => gs.map((g) => ({
        name: g.dataset.block, change: Number(g.dataset.change), relative: g.dataset.relative === 'true',
      })));
      t.log(`LoRA layer changes: ${bars.map((b) => `${b.name} ${b.change.toExponential(2)}`).join(', ')}`);
      assertEq(bars.map((b) => b.name).join(','), 'embeddings,layer 0,layer 1,layer 2,layer 3,layer 4,layer 5,pooler,classifier', 'LoRA: blocks');
      assertEq(bars[0].change, 0, 'LoRA: the embeddings are not adapted');
      assert(bars.slice(1, -1).every((b) => b.change > 0), `LoRA: every layer and the pooler should move: ${JSON.stringify(bars)}`);

      // Try it answers for the LoRA run.
      await byRole(page, 'textbox', 'Try a sentence').fill('I love this product!');
      await byRole(page, 'button', 'Classify').click();
      await page.waitForFunction(() => window.__webtune.state.predictions, null, { timeout: 60_000 });
      const preds = await page.evaluate(() => window.__webtune.state.predictions.results);
      assertEq(preds.map((p) => p.strategy).join(','), 'lora:4', 'Try-it strategies');
      assert(!preds[0].error, `Try-it error: ${preds[0].error}`);
      const sum = preds[0].prediction.probabilities.reduce((a, b) => a + b, 0);
      assert(Math.abs(sum - 1) < 1e-4, `probabilities sum to ${sum}`);
      assert((await page.locator('#predictions [data-strategy="lora:4"]').textContent()).includes('LoRA rank 4'), 'Try it names the LoRA run');

      // Download: the merged model as for other strategies, and the PEFT adapter folder.
      await byRole(page, 'combobox', 'Strategy to download').selectOption('lora:4');
      const save = async (button) => {
        const [download] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), byRole(page, 'button', button).click()]);
        return { name: download.suggestedFilename(), files: readTar(fs.readFileSync(await download.path())) };
      };
      const merged = await save('Download model');
      assertEq(merged.name, 'webtune-lora4.tar', 'merged download name');
      assertEq(merged.files.map((f) => f.name).join(','), 'webtune-lora4/config.json,webtune-lora4/tokenizer.json,webtune-lora4/model.safetensors', 'merged tar members');
      assert(await page.locator('#adapter-hint').isVisible(), 'the adapter hint shows for a LoRA run');
      assert((await page.locator('#adapter-hint').textContent()).includes('PeftModel.from_pretrained('), 'the adapter hint says how to load it');
      const adapter = await save('Download adapter (PEFT)');
      t.log(`adapter download ${adapter.name}: ${adapter.files.map((f) => `${f.name} (${f.size} B)`).join(', ')}`);
      assertEq(adapter.name, 'webtune-lora4-adapter.tar', 'adapter download name');
      assertEq(adapter.files.map((f) => f.name).join(','), 'webtune-lora4-adapter/adapter_config.json,webtune-lora4-adapter/adapter_model.safetensors', 'adapter tar members');
      const config = JSON.parse(adapter.files[0].data.toString('utf8'));
      t.log(`adapter_config.json: ${JSON.stringify(config)}`);
      assertEq(config.peft_type, 'LORA', 'peft_type');
      assertEq(config.r, 4, 'r');
      assertEq(config.lora_alpha, 16, 'lora_alpha');
      assertEq(config.lora_dropout, 0.1, 'lora_dropout');
      assertEq(JSON.stringify([...config.target_modules].sort()), JSON.stringify(['key', 'query', 'value']), 'target_modules');
      // The safetensors header (8-byte little-endian length, then JSON): A is r × in, B out × r.
      const st = adapter.files[1].data;
      const header = JSON.parse(st.subarray(8, 8 + Number(st.readBigUInt64LE(0))).toString('utf8'));
      const loraKeys = Object.keys(header).filter((k) => /lora_[AB]\.weight$/.test(k));
      assertEq(loraKeys.length, 3 * 6 * 2, 'lora_A/lora_B tensors (3 projections × 6 layers)');
      assertEq(JSON.stringify(header['base_model.model.bert.encoder.layer.0.attention.self.key.lora_A.weight'].shape), '[4,384]', 'key lora_A shape');
      assertEq(JSON.stringify(header['base_model.model.bert.encoder.layer.0.attention.self.key.lora_B.weight'].shape), '[384,4]', 'key lora_B shape');

      // Export recipe (issue 28): the run's recipe as a PyTorch script folder, from the page.
      const recipe = await save('Export recipe: LoRA rank 4');
      t.log(`recipe download ${recipe.name}: ${recipe.files.map((f) => `${f.name} (${f.size} B)`).join(', ')}`);
      assertEq(recipe.name, 'webtune-recipe-lora4.tar', 'recipe download name');
      const members = recipe.files.map((f) => f.name.replace('webtune-recipe-lora4/', ''));
      for (const name of ['train.py', 'recipe.json', 'order.json', 'init.safetensors', 'data/train.tsv', 'requirements.txt', 'README.md']) {
        assert(members.includes(name), `recipe tar lacks ${name}: ${members.join(', ')}`);
      }
      const recipeJson = JSON.parse(recipe.files.find((f) => f.name.endsWith('/recipe.json')).data.toString('utf8'));
      assertEq(recipeJson.strategy, 'lora:4', 'recipe strategy');
      assertEq(JSON.stringify([...recipeJson.lora_target_modules].sort()), JSON.stringify(['key', 'query', 'value']), 'recipe LoRA targets');
      const order = JSON.parse(recipe.files.find((f) => f.name.endsWith('/order.json')).data.toString('utf8'));
      assertEq(order.epochs.length, 2, 'recipe: one data order per epoch');
      await context.close();
    },
  },

  {
    name: 'Banking77 from the file picker: frozen with progress and time left, 77-class heat map, sortable per-class table, top-5 Try it',
    timeout: 1_200_000,
    async run(t) {
      const context = await newContext(t.browser, t);
      const page = await openApp(context, t.base, '?hub=/hub');
      const sampleSize = 1000; // the default, set through its field
      // Max length 16 (most intents are shorter; the rest are cut) halves the encoding compute
      // of the 9,003 sentences, which dominates this test's time: 77 classes and all sentences stay.
      await configure(page, { model: 'local', frozen: true, top: false, full: false, epochs: 1, headLr: '1e-2', batch: 16, maxLen: 16, evalSample: sampleSize });

      // A very large paste is kept like a file instead of going through the text box.
      const pasted = ['text\tlabel', ...Array.from({ length: 6000 }, (_, i) => `pasted sentence number ${i} of many\t${i % 3}`), ''].join('\n');
      await byRole(page, 'textbox', 'Training data').evaluate((box, text) => {
        const dt = new DataTransfer();
        dt.setData('text/plain', text);
        box.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
      }, pasted);
      await page.waitForFunction(() => window.__webtune.state.files.train && !window.__webtune.state.parsePending);
      const pastedMeta = await page.locator('#train-file-meta').textContent();
      t.log(`large paste: ${pastedMeta}; ${await page.locator('#train-summary').textContent()}`);
      assert(pastedMeta.startsWith('pasted training data') && pastedMeta.includes('6,001 lines'), `large paste: ${pastedMeta}`);
      await byRole(page, 'button', 'Remove file').click();
      assertEq(await byRole(page, 'textbox', 'Training data').inputValue(), NOTEBOOK_TSV, 'the box after "Remove file"');

      // A file with 30 bad lines, dropped on the training box: at most 20 problems listed, then "and N more".
      const bad = ['text\tlabel', ...Array.from({ length: 30 }, (_, i) => `sentence ${i} without a label\t`), 'fine\ta', 'also fine\tb', ''].join('\n');
      const dataTransfer = await page.evaluateHandle((text) => {
        const dt = new DataTransfer();
        dt.items.add(new File([text], 'bad.tsv', { type: 'text/tab-separated-values' }));
        return dt;
      }, bad);
      await page.dispatchEvent('#train-drop', 'drop', { dataTransfer });
      await page.waitForFunction(() => window.__webtune.state.files.train && !window.__webtune.state.parsePending);
      const listed = await page.locator('#train-errors li').allTextContents();
      t.log(`dropped bad.tsv: ${listed.length} items, last "${listed[listed.length - 1]}"`);
      assertEq(listed.length, 21, 'problems listed (20 + "and N more")');
      assertEq(listed[20], 'and 10 more problems', 'the "and N more" line');
      assert(await byRole(page, 'button', 'Train').isDisabled(), 'Train enabled with bad data');
      // "Edit as text" puts the file into the box; "Remove file" goes back to the box as it was.
      await byRole(page, 'button', 'Edit as text').click();
      assertEq(await byRole(page, 'textbox', 'Training data').inputValue(), bad, 'text after "Edit as text"');
      await setTrainingData(page, NOTEBOOK_TSV);

      // Banking77's train.tsv through the "Training data file" picker: shown as a file, not typed into the box.
      const file = BANKING_TRAIN;
      await page.getByLabel('Training data file', { exact: true }).setInputFiles(file);
      await page.getByRole('radio', { name: /Hold out a fraction/ }).check();
      await byRole(page, 'spinbutton', 'Validation fraction').fill('0.2');
      await page.waitForFunction(() => !window.__webtune.state.parsePending && window.__webtune.state.parse && window.__webtune.state.parse.labels.length === 77, null, { timeout: 60_000 });
      const meta = await page.locator('#train-file-meta').textContent();
      const summary = await page.locator('#train-summary').textContent();
      t.log(`file: ${meta}; summary: ${summary.slice(0, 120)}…`);
      assert(meta.includes('train.tsv') && meta.includes('743.0 kB') && meta.includes('9,017 lines'), `file view: ${meta}`);
      assert(await byRole(page, 'textbox', 'Training data').isHidden(), 'the text box should be replaced by the file view');
      assert((await page.locator('#train-file-head').textContent()).startsWith('text\tlabel\nCould you help'), 'first lines of the file');
      const parsed = await page.evaluate(() => window.__webtune.state.parse);
      assertEq(parsed.train_count + parsed.val_count, 9003, 'Banking77 records (train + validation)');
      assert(summary.includes('77 classes'), `summary: ${summary}`);

      // Train; sample the progress line and bar while it runs.
      await waitTrainEnabled(page);
      const t0 = Date.now();
      await byRole(page, 'button', 'Train').click();
      const samples = [];
      for (;;) {
        const snap = await page.evaluate(() => ({
          running: window.__webtune.state.running,
          text: document.getElementById('progress-text').hidden ? null : document.getElementById('progress-text').textContent,
          value: document.getElementById('progress').hidden ? null : document.getElementById('progress').value,
        }));
        if (snap.text) samples.push({ ...snap, at: Date.now() - t0 });
        if (!snap.running) break;
        await sleep(200);
      }
      const r = await page.evaluate(() => window.__webtune.state);
      t.log(`frozen on Banking77 (cache + 1 epoch at batch 16) took ${((Date.now() - t0) / 1000).toFixed(1)} s; ${samples.length} progress samples`);
      for (const x of samples.filter((_, i) => i % Math.max(1, Math.floor(samples.length / 6)) === 0)) t.log(`  ${(x.at / 1000).toFixed(1)} s: ${x.value === null ? '' : x.value.toFixed(3)} ${x.text}`);
      assert(!r.lastError, `run error: ${r.lastError && r.lastError.message}`);
      const run = r.runs.frozen;
      assertEq(run.status, 'done', 'frozen status');
      const caching = samples.filter((x) => x.text.includes('Encoding sentences for the frozen encoder'));
      assert(caching.length >= 2, `the encoding phase was seen ${caching.length} times`);
      assert(new Set(caching.map((x) => x.text)).size >= 2, 'the encoding progress text did not change');
      assert(new Set(samples.map((x) => x.value)).size >= 3, `the progress bar did not move: ${samples.map((x) => x.value)}`);
      assert(samples.some((x) => /about [\d].* left/.test(x.text)), 'no time-left estimate shown');
      assert(caching.some((x) => /\d+(,\d+)? \/ 9,003/.test(x.text)), `done/total of the encoding: ${caching[0] && caching[0].text}`);
      assert(await page.locator('#progress').isHidden(), 'the progress bar stays after the Train');
      t.log(`frozen: val accuracy ${run.done.val_accuracy}, train accuracy (${run.start.train_eval_size} of ${run.start.train_size}) ${run.done.train_accuracy}; peak ${run.done.peak_bytes} B, kept ${run.done.retained_bytes} B`);
      assertEq(run.start.train_eval_size, sampleSize, 'training accuracy sample');
      const accLabels = await page.evaluate(() => window.__webtune.charts.acc.series.map((x) => x.label));
      const sampleText = sampleSize.toLocaleString('en-US');
      assert(accLabels.includes(`Frozen encoder (training sample of ${sampleText})`), `accuracy chart labels: ${accLabels}`);
      const headers = await page.getByRole('table', { name: 'Results' }).locator('thead th').allTextContents();
      assert(headers.includes(`Train accuracy (sample of ${sampleText})`) && headers.includes('Run peak memory') && headers.includes('Threads'), `results headers: ${headers}`);

      // The heat map: 77 × 77, a hover shows a count; the largest confusions as text.
      const heat = byRole(page, 'img', 'Confusion matrix');
      assert(await heat.isVisible(), 'no heat map');
      const g = JSON.parse(await heat.getAttribute('data-geometry'));
      assertEq(g.n, 77, 'heat map classes');
      const box = await heat.boundingBox();
      assert(box.width > 300 && box.height > 300, `heat map size ${box.width}×${box.height}`);
      const painted = await heat.evaluate((c) => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let colored = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && !(d[i] === d[i + 1] && d[i + 1] === d[i + 2])) colored += 1;
        return colored;
      });
      assert(painted > 1000, `heat map has ${painted} coloured pixels`);
      const labels = run.done.per_class.map((c) => c.label);
      const i = labels.indexOf('card_arrival');
      await hoverCell(page, i, i);
      const readout = await page.locator('#confusion-readout').textContent();
      const expected = run.done.confusion[i][i];
      t.log(`hover on (card_arrival, card_arrival): ${readout}`);
      assert(readout.startsWith(`True “card_arrival”, predicted “card_arrival”: ${expected}`), `hover readout: ${readout}`);
      assert(await page.locator('#confusion-tip').isVisible(), 'no tooltip on hover');
      const top = await page.locator('#confusion-top li').allTextContents();
      t.log(`largest confusions: ${top.slice(0, 3).join(' | ')}`);
      assert(top.length >= 2 && /taken for .*: \d+ times?/.test(top[0]), `largest confusions: ${top}`);

      // The embedding map at scale: the evaluated training sample and the validation set (each at
      // most 2,000), 77 class colours; moving the slider redraws the whole panel quickly.
      const map = await page.evaluate(() => {
        const slider = document.getElementById('insight-epoch');
        const times = [];
        for (const v of ['0', '1', '0', '1']) {
          slider.value = v;
          const a = performance.now();
          slider.dispatchEvent(new Event('input'));
          times.push(performance.now() - a);
        }
        const d = window.__webtune.insight.drawn('frozen');
        return { times, epoch: d.epoch, train: d.points.filter((p) => p.set === 'train').length, val: d.points.filter((p) => p.set === 'validation').length, legend: document.getElementById('insight-legend').textContent };
      });
      t.log(`embedding map: ${map.train} training + ${map.val} validation points; slider redraws took ${map.times.map((x) => x.toFixed(0)).join(', ')} ms`);
      assertEq(map.epoch, 1, 'epoch drawn after the slider moves');
      assertEq(map.train, Math.min(2000, sampleSize), 'training points on the map (the evaluated sample)');
      assertEq(map.val, Math.min(2000, parsed.val_count), 'validation points on the map');
      assert(map.legend.includes('77 classes'), `legend: ${map.legend}`);
      assert(Math.max(...map.times) < 1000, `a slider move took ${Math.max(...map.times).toFixed(0)} ms to redraw`);

      // The per-class table: sort by F1, then by support (both directions for F1).
      const classTable = page.getByRole('table', { name: /Per-class metrics/ });
      assertEq(await classTable.locator('tbody tr').count(), 77, 'per-class rows');
      const column = async (n) => (await classTable.locator(`tbody tr > :nth-child(${n})`).allTextContents()).map((x) => Number(x.replace(/[ %,]/g, '')));
      const sorted = (xs, desc) => xs.every((x, k) => k === 0 || (desc ? xs[k - 1] >= x : xs[k - 1] <= x));
      const header = (name) => classTable.locator('thead th').filter({ has: page.getByRole('button', { name, exact: true }) });
      await classTable.getByRole('button', { name: 'F1', exact: true }).click();
      assertEq(await header('F1').getAttribute('aria-sort'), 'descending', 'aria-sort after one press on F1');
      const f1 = await column(4);
      assert(sorted(f1, true) && f1[0] > f1[76], `F1 not descending: ${f1.slice(0, 5)} … ${f1.slice(-5)}`);
      await classTable.getByRole('button', { name: 'F1', exact: true }).click();
      assertEq(await header('F1').getAttribute('aria-sort'), 'ascending', 'aria-sort after two presses on F1');
      assert(sorted(await column(4), false), 'F1 not ascending');
      await classTable.getByRole('button', { name: 'Support', exact: true }).click();
      assertEq(await header('Support').getAttribute('aria-sort'), 'descending', 'aria-sort on Support');
      assertEq(await header('F1').getAttribute('aria-sort'), 'none', 'aria-sort on F1 after sorting by Support');
      const support = await column(5);
      assert(sorted(support, true) && support[0] > support[76], `support not descending: ${support.slice(0, 5)} … ${support.slice(-5)}`);
      assertEq(support.reduce((a, b) => a + b, 0), parsed.val_count, 'support adds up to the validation set');

      // Try it: the 5 most likely of 77 classes.
      await byRole(page, 'textbox', 'Try a sentence').fill('My new card has still not arrived');
      await byRole(page, 'button', 'Classify').click();
      await page.waitForFunction(() => window.__webtune.state.predictions);
      const bars = await page.locator('#predictions .pred[data-strategy="frozen"] ul.probs li').allTextContents();
      const more = await page.locator('#predictions .pred[data-strategy="frozen"] p.more').textContent();
      t.log(`Try it: ${bars.join(' | ')} — ${more}`);
      assertEq(bars.length, 5, 'classes shown in Try it');
      assert(more.startsWith('and 72 more classes'), `Try it rest: ${more}`);
      await page.screenshot({ path: path.join(TARGET, 'e2e-banking77.png'), fullPage: true });
      await context.close();
    },
  },

  {
    name: 'reload: model files come from the Cache API, no second request',
    timeout: 600_000,
    async run(t) {
      const context = await newContext(t.browser, t);
      const page = await openApp(context, t.base, '?hub=/hub');
      await configure(page, { model: 'local', frozen: true, top: false, full: false, epochs: 1 });
      const first = await trainAndWait(page);
      assert(!first.lastError, `first run error: ${first.lastError && first.lastError.message}`);
      const modelRequests = () => t.requests.filter((r) => /\/resolve\/[^/]+\/(model\.safetensors|config\.json|tokenizer\.json)$/.test(r.url));
      const firstFetch = modelRequests();
      t.log(`first load requested: ${firstFetch.map((r) => new URL(r.url).pathname).join(', ')}`);
      // The worker's requests are visible: otherwise "no request" below would prove nothing.
      assert(firstFetch.some((r) => r.url.endsWith('/model.safetensors')), 'the first load did not show a model.safetensors request');
      assertEq(first.model.fromCache, false, 'first load fromCache');
      const cached = await cacheEntries(page);
      t.log(`cache after first load: ${cached.map((c) => `${new URL(c.url).pathname} ${c.size}`).join(', ')}`);
      assert(cached.some((c) => c.url.endsWith('/model.safetensors') && c.size === MODEL_BYTES), 'model.safetensors not cached at full size');

      const mark = t.requests.length;
      await page.reload();
      await page.waitForFunction(() => window.__webtune && window.__webtune.state.ready && !window.__webtune.state.parsePending, null, { timeout: 60_000 });
      await configure(page, { model: 'local', frozen: true, top: false, full: false, epochs: 1 });
      const second = await trainAndWait(page);
      assert(!second.lastError, `second run error: ${second.lastError && second.lastError.message}`);
      assertEq(second.runs.frozen.status, 'done', 'second run status');
      const after = t.requests.slice(mark).map((r) => new URL(r.url).pathname);
      t.log(`requests after reload: ${after.join(', ')}`);
      assert(!after.some((p) => p.endsWith('/model.safetensors')), 'model.safetensors was requested again after the reload');
      assert(!after.some((p) => /\/resolve\//.test(p)), 'a model file was requested again after the reload');
      assertEq(second.model.fromCache, true, 'second load fromCache');
      const info = await page.locator('#model-info').textContent();
      assert(info.includes('from the browser cache'), `model info should say it came from the cache: ${info}`);
      await context.close();
    },
  },

  {
    name: 'bad input: line-level messages, Train disabled or refused, worker alive',
    timeout: 600_000,
    async run(t) {
      const context = await newContext(t.browser, t);
      const page = await openApp(context, t.base, '?hub=/hub');
      await configure(page, { model: 'local', frozen: true, top: false, full: false, epochs: 1 });
      const trainBtn = byRole(page, 'button', 'Train');
      const errors = () => page.locator('#train-errors li').allTextContents();
      const reason = () => page.locator('#train-reason').textContent();

      // Malformed lines: line 2 has no tab, line 4 has an empty text.
      await setTrainingData(page, '1\tgood one\nthis line has no tab\n0\tbad one\n0\t  \n');
      let msgs = await errors();
      t.log(`malformed: ${JSON.stringify(msgs)}`);
      assert(msgs.some((m) => m.startsWith('Line 2:') && m.includes('tab')), 'no message naming line 2');
      assert(msgs.some((m) => m.startsWith('Line 4:')), 'no message naming line 4');
      assert(await trainBtn.isDisabled(), 'Train should be disabled with malformed data');
      assert((await reason()).includes('line 2'), `the reason should name the line: ${await reason()}`);
      assertEq(await byRole(page, 'textbox', 'Training data').getAttribute('aria-invalid'), 'true', 'aria-invalid');

      // One class only.
      await setTrainingData(page, '1\tgreat\n1\tsuper\n1\tlovely\n');
      msgs = await errors();
      t.log(`one class: ${JSON.stringify(msgs)}`);
      assert(msgs.some((m) => m.includes('only one class')), 'no "only one class" message');
      assert(await trainBtn.isDisabled(), 'Train should be disabled with one class');

      // Empty box.
      await setTrainingData(page, '');
      msgs = await errors();
      t.log(`empty: ${JSON.stringify(msgs)}`);
      assert(msgs.some((m) => m.includes('empty')), 'no "empty" message');
      assert(await trainBtn.isDisabled(), 'Train should be disabled with an empty box');

      // Validation data with an unknown label names the validation line.
      await setTrainingData(page, NOTEBOOK_TSV);
      await page.getByRole('radio', { name: /Paste separate validation data/ }).check();
      await byRole(page, 'textbox', 'Validation data').fill('1\tnice\n2\tunknown class here\n');
      await page.waitForFunction(() => !window.__webtune.state.parsePending);
      const valMsgs = await page.locator('#val-errors li').allTextContents();
      t.log(`validation: ${JSON.stringify(valMsgs)}`);
      assert(valMsgs.some((m) => m.startsWith('Line 2:') && m.includes('`2`')), 'no validation message naming line 2');
      assert(await trainBtn.isDisabled(), 'Train should be disabled with bad validation data');
      await page.getByRole('radio', { name: /^None/ }).check();
      await page.waitForFunction(() => !window.__webtune.state.parsePending);

      // Options only the model can check: top:99 on a 6-layer model → refused with a reason.
      await configure(page, { frozen: false, top: 99 });
      await waitTrainEnabled(page);
      const bad = await trainAndWait(page);
      t.log(`top:99 → ${bad.lastError && bad.lastError.message}`);
      assert(bad.lastError && /99/.test(bad.lastError.message) && /6/.test(bad.lastError.message), 'no clear error for top:99');
      assert(await page.locator('#error-box').isVisible(), 'error box hidden');
      // Now the page knows the layer count and disables Train itself.
      assert(await trainBtn.isDisabled(), 'Train should be disabled for 99 layers once the model is known');
      assert((await reason()).includes('at most 6'), `reason: ${await reason()}`);

      // The worker refuses bad data itself too (a request that bypasses the page's checks).
      const refused = await page.evaluate(({ hub, train, error }) => new Promise((resolve) => {
        const w = window.__webtune.worker;
        const onMessage = (e) => {
          if (e.data.type === error) {
            w.removeEventListener('message', onMessage);
            resolve(e.data.message);
          }
        };
        w.addEventListener('message', onMessage);
        w.postMessage({ type: train, source: { kind: 'hub', hub, repo: 'all-MiniLM-L6-v2', revision: 'main' }, strategies: ['frozen'], train: 'no tab on this line', val: null, valFraction: null, options: { epochs: 1 } });
      }), { hub: new URL('/hub', t.base).href, train: ToWorker.TRAIN, error: FromWorker.ERROR });
      t.log(`worker refused: ${refused}`);
      assert(/line 1/.test(refused), `the worker's refusal should name the line: ${refused}`);
      await page.waitForFunction(() => !window.__webtune.state.running);

      // The worker is alive: a good run works.
      await configure(page, { frozen: true, top: false });
      const good = await trainAndWait(page);
      assert(!good.lastError, `good run error: ${good.lastError && good.lastError.message}`);
      assertEq(good.runs.frozen.status, 'done', 'good run after errors');
      assert(await page.locator('#error-box').isHidden(), 'the old error should be cleared by a new Train');
      await context.close();
    },
  },

  {
    name: 'faults: hub 404, connection cut mid-file, unreachable hub → clear message, nothing cached, retry works',
    timeout: 600_000,
    async run(t) {
      const errorOf = async (page) => (await page.locator('#error-text').textContent()) || '';
      // 404: a plain message naming the file and the status; nothing cached.
      {
        const context = await newContext(t.browser, t);
        const page = await openApp(context, t.base, '?hub=/faulty-hub/404&repo=all-MiniLM-L6-v2');
        await configure(page, { frozen: true, full: false, epochs: 1 });
        const r = await trainAndWait(page);
        const msg = await errorOf(page);
        t.log(`404 → ${msg}`);
        assert(r.lastError && /404/.test(msg) && /(config\.json|tokenizer\.json|model\.safetensors)/.test(msg), `unclear 404 message: ${msg}`);
        assert(await page.locator('#error-box').isVisible(), 'error box not shown');
        assertEq((await cacheEntries(page)).length, 0, 'cache entries after 404');
        // Retry after fixing the hub address works (same page, same worker).
        if (!(await page.locator('#hub-details').evaluate((d) => d.open))) await page.locator('#hub-details summary').click();
        await byRole(page, 'textbox', 'Hub URL').fill('/hub');
        const ok = await trainAndWait(page);
        assert(!ok.lastError, `retry after 404: ${ok.lastError && ok.lastError.message}`);
        await context.close();
      }
      // Cut mid-file: full Content-Length, half the bytes.
      {
        const context = await newContext(t.browser, t);
        const page = await openApp(context, t.base, '?hub=/faulty-hub/cut&repo=all-MiniLM-L6-v2');
        await configure(page, { frozen: true, full: false, epochs: 1 });
        const r = await trainAndWait(page);
        const msg = await errorOf(page);
        t.log(`cut → ${msg}`);
        assert(r.lastError && /(cut off|ended early)/.test(msg) && /Nothing was saved/.test(msg), `unclear cut message: ${msg}`);
        assertEq((await cacheEntries(page)).length, 0, 'cache entries after a cut download');
        await context.close();
      }
      // 404-once / cut-once: the first attempt fails, pressing Train again works and caches all
      // three files. The server fails only the first request per mode and repository over its
      // lifetime, so on a reused server the second repo spelling is tried; when both are used up,
      // restart the server.
      for (const mode of ['404-once', 'cut-once']) {
        let done = false;
        for (const repo of ['all-MiniLM-L6-v2', 'sentence-transformers/all-MiniLM-L6-v2']) {
          const context = await newContext(t.browser, t);
          const page = await openApp(context, t.base, `?hub=/faulty-hub/${mode}&repo=${encodeURIComponent(repo)}`);
          await configure(page, { frozen: true, full: false, epochs: 1 });
          const r = await trainAndWait(page);
          if (!r.lastError) {
            t.log(`${mode} ${repo}: the first try succeeded (this server already served these URLs once)`);
            await context.close();
            continue;
          }
          const msg = await errorOf(page);
          t.log(`${mode}, first try → ${msg}`);
          assert(mode === '404-once' ? /404/.test(msg) : /(cut off|ended early)/.test(msg), `unclear ${mode} message: ${msg}`);
          const partial = await cacheEntries(page);
          assert(!partial.some((c) => c.url.endsWith('/model.safetensors')), 'a failed model.safetensors was cached');
          const ok = await trainAndWait(page);
          assert(!ok.lastError, `retry after ${mode}: ${ok.lastError && ok.lastError.message}`);
          assertEq(ok.runs.frozen.status, 'done', `retry run after ${mode}`);
          const cached = await cacheEntries(page);
          t.log(`cache after retry: ${cached.map((c) => `${new URL(c.url).pathname} ${c.size}`).join(', ')}`);
          assert(cached.some((c) => c.url.endsWith('/model.safetensors') && c.size === MODEL_BYTES), `model.safetensors not cached in full after the ${mode} retry`);
          assertEq(cached.length, 3, 'cached files after the retry');
          await context.close();
          done = true;
          break;
        }
        assert(done, `${mode}: the server's one-time faults are used up for both repo spellings; restart webtune serve --test-faults`);
      }
      // Hub unreachable (DNS blocked): say so plainly and offer the local model.
      {
        t.allowForeign = true; // this sub-test deliberately tries huggingface.co (no DNS: nothing leaves)
        const context = await newContext(t.browser, t);
        const page = await openApp(context, t.base, '');
        await configure(page, { model: 'bert-base-uncased', frozen: true, full: false, epochs: 1 });
        const r = await trainAndWait(page);
        const msg = await errorOf(page);
        t.log(`unreachable → ${msg}`);
        assert(r.lastError && /Could not reach the model hub/.test(msg) && /local offline copy/.test(msg), `unclear unreachable message: ${msg}`);
        const useLocal = byRole(page, 'button', 'Use the local model');
        assert(await useLocal.isVisible(), 'no "Use the local model" button');
        await useLocal.click();
        assertEq(await byRole(page, 'combobox', 'Model').inputValue(), 'local', 'model after "Use the local model"');
        const ok = await trainAndWait(page);
        assert(!ok.lastError, `local model after unreachable hub: ${ok.lastError && ok.lastError.message}`);
        await context.close();
        t.allowForeign = false;
      }
    },
  },

  {
    name: 'Stop inside a long step (full, batch 5 × 128 tokens, one thread): the bar moves within the step, the worker stops within a second',
    timeout: 300_000,
    async run(t) {
      const context = await newContext(t.browser, t);
      const page = await openApp(context, t.base, '?hub=/hub');
      // The notebook's ten sentences padded to 128 tokens, two steps of five per epoch.
      await configure(page, { model: 'local', frozen: false, top: false, full: true, epochs: 3, batch: 5, maxLen: 128, padMax: true, threads: 1 });
      await setTrainingData(page, NOTEBOOK_TSV);
      await waitTrainEnabled(page);
      await byRole(page, 'button', 'Train').click();
      await page.waitForFunction(() => {
        const r = window.__webtune.state.runs.full;
        return r && r.losses.length >= 2;
      }, null, { timeout: 240_000, polling: 50 });
      // Step 2 right after step 1: its duration.
      const stepMs = await page.evaluate(() => {
        const r = window.__webtune.state.runs.full;
        return r.lastStep.elapsed_ms - r.firstStep.elapsed_ms;
      });
      // Within step 3 (after the first epoch's evaluation): the bar, the line and the time left
      // at two points of the same step.
      const inStep = async (minFraction) => {
        await page.waitForFunction((min) => {
          const r = window.__webtune.state.runs.full;
          return r.unit && r.unit.step === 3 && r.unit.fraction >= min;
        }, minFraction, { timeout: 120_000, polling: 20 });
        return page.evaluate(() => {
          const r = window.__webtune.state.runs.full;
          return { fraction: r.unit.fraction, steps: r.losses.length, bar: document.getElementById('progress').value, line: document.getElementById('progress-text').textContent };
        });
      };
      const early = await inStep(0.05);
      const later = await inStep(early.fraction + 0.2);
      t.log(`a step takes ${Math.round(stepMs)} ms; within step 3: "${early.line}" (bar ${early.bar.toFixed(4)}) → "${later.line}" (bar ${later.bar.toFixed(4)})`);
      assertEq(later.steps, 2, 'steps finished while step 3 ran');
      assert(later.bar > early.bar, `the progress bar did not move within a step: ${early.bar} → ${later.bar}`);
      assert(/step 3: \d+ % done/.test(later.line) && later.line !== early.line, `the progress line did not follow the step: "${early.line}" → "${later.line}"`);
      const clicked = Date.now();
      await byRole(page, 'button', 'Stop').click();
      await page.waitForFunction(() => !window.__webtune.state.running, null, { timeout: 60_000, polling: 10 });
      const endedMs = Date.now() - clicked;
      const stopped = await page.evaluate(() => window.__webtune.state.runs.full);
      t.log(`stopped ${endedMs} ms after the click (a step takes ${Math.round(stepMs)} ms), after ${stopped.losses.length} steps`);
      // The step under way is dropped: the worker stops within a unit (at most about one
      // layer's work of one batch), not at the step's end.
      assert(endedMs < 1500 && endedMs < stepMs / 2, `the worker took ${endedMs} ms to stop inside a step of ${Math.round(stepMs)} ms`);
      assertEq(stopped.status, 'stopped', 'status after Stop');
      assertEq(stopped.stopped && stopped.stopped.steps, 2, 'steps in the stopped event (step 3 dropped)');
      assertEq(stopped.losses.length, 2, 'losses after Stop');
      assert((await statusText(page)).startsWith('Stopped'), `status text: ${await statusText(page)}`);
      // The record keeps events only, no progress within a step.
      const record = await page.evaluate(() => window.__webtune.record());
      assert(record.events.length > 0 && record.events.every((e) => e.type !== 'unit'), 'the results record holds progress within a step');
      await context.close();
    },
  },

  {
    name: 'Stop during the first epoch of full fine-tuning on Banking77: the page answers at once, the worker within a step; train again',
    timeout: 600_000,
    async run(t) {
      const context = await newContext(t.browser, t);
      const page = await openApp(context, t.base, '?hub=/hub');
      await configure(page, { model: 'local', frozen: false, top: false, full: true, epochs: 1, batch: 16 });
      await page.getByLabel('Training data file', { exact: true }).setInputFiles(BANKING_TRAIN);
      await page.waitForFunction(() => !window.__webtune.state.parsePending && window.__webtune.state.parse.ok, null, { timeout: 60_000 });
      await waitTrainEnabled(page);
      await byRole(page, 'button', 'Train').click();
      await page.waitForFunction(() => {
        const r = window.__webtune.state.runs.full;
        return r && r.losses.length >= 2;
      }, null, { timeout: 300_000, polling: 50 });
      const progress = await page.locator('#progress-text').textContent();
      const before = await page.evaluate(() => {
        const r = window.__webtune.state.runs.full;
        return { steps: r.losses.length, stepMs: r.losses.length > 1 ? (r.lastStep.elapsed_ms - r.firstStep.elapsed_ms) / (r.lastStep.step - r.firstStep.step) : r.lastStep.elapsed_ms };
      });
      t.log(`before Stop: ${progress}`);
      assert(/step \d+ \/ 563 · [\d.]+ steps\/s/.test(progress), `progress line during training: ${progress}`);
      const clicked = Date.now();
      await byRole(page, 'button', 'Stop').click();
      const answered = await page.evaluate(() => ({ status: document.getElementById('status').textContent, stopDisabled: document.getElementById('stop-btn').disabled, stopping: window.__webtune.state.stopping, running: window.__webtune.state.running }));
      const answerMs = Date.now() - clicked;
      t.log(`the page answered in ${answerMs} ms: "${answered.status}"`);
      // Stopping…, or already stopped: the worker stops within a unit of the step (a fraction
      // of a second), often before this look.
      const answeredStop = (answered.stopping && /^Stopping/.test(answered.status)) || (!answered.running && /^Stopped/.test(answered.status));
      assert(answerMs < 1000 && answeredStop && answered.stopDisabled, `no answer to Stop within 1 s: ${JSON.stringify(answered)} after ${answerMs} ms`);
      await page.waitForFunction(() => !window.__webtune.state.running, null, { timeout: 60_000, polling: 50 });
      const endedMs = Date.now() - clicked;
      await waitTrainEnabled(page, 10_000);
      const stopped = await page.evaluate(() => window.__webtune.state.runs.full);
      t.log(`stopped by the worker ${endedMs} ms after the click, after ${stopped.losses.length} steps (${stopped.stopped && stopped.stopped.steps} in its stopped event), keeps ${stopped.stopped && stopped.stopped.retained_bytes} B`);
      // The worker stops between two units of the step in progress, and finishes no other step
      // (a full step at batch 16 takes seconds in wasm, longer on a loaded machine).
      assert(stopped.losses.length <= before.steps + 1, `${stopped.losses.length - before.steps} steps ran after the click`);
      assert(endedMs < Math.max(8000, 3 * before.stepMs), `the worker took ${endedMs} ms to stop (a step takes ${Math.round(before.stepMs)} ms)`);
      assertEq(stopped.status, 'stopped', 'status after Stop');
      assert(stopped.stopped && stopped.stopped.steps === stopped.losses.length, 'the stopped event counts the steps');
      assert(stopped.epochs.length === 0, 'Stop should take effect within the first epoch');
      assert((await statusText(page)).startsWith('Stopped'), `status text: ${await statusText(page)}`);
      assert(await byRole(page, 'button', 'Stop').isDisabled(), 'Stop enabled after stopping');
      const row = await page.getByRole('table', { name: 'Results' }).locator('tbody tr[data-strategy="full"]').textContent();
      assert(row.includes('stopped early') && /\d+ MB$/.test(row), `results row of the stopped run: ${row}`);
      // Train again in the same page and worker, on the notebook data typed in the box.
      await byRole(page, 'button', 'Remove file').click();
      await setTrainingData(page, NOTEBOOK_TSV);
      await configure(page, { frozen: true, full: false, epochs: 1, batch: 2 });
      const again = await trainAndWait(page);
      assert(!again.lastError, `run after Stop: ${again.lastError && again.lastError.message}`);
      assertEq(again.runs.frozen.status, 'done', 'run after Stop');
      assertEq(await page.evaluate(() => window.__webtune.state.workerStarts), 1, 'the worker was not restarted');
      await context.close();
    },
  },

  {
    name: 'fail fast: a Train that cannot fit in memory is refused before model.safetensors downloads; a smaller one then trains',
    timeout: 300_000,
    async run(t) {
      const context = await newContext(t.browser, t);
      const page = await openApp(context, t.base, '?hub=/hub');
      await configure(page, { model: 'local', frozen: false, top: false, full: true, epochs: 1, batch: 512, maxLen: 512, padMax: true });
      const mark = t.requests.length;
      const r = await trainAndWait(page);
      const msg = (await page.locator('#error-text').textContent()) || '';
      t.log(`full, batch 512, max length 512 → ${msg}`);
      assert(r.lastError && /cannot start/.test(msg) && /GiB/.test(msg) && /smaller batch size or max length/.test(msg), `unclear refusal: ${msg}`);
      assert(await page.locator('#error-box').isVisible(), 'error box hidden');
      const files = t.requests.slice(mark).filter((q) => q.url.includes('/resolve/')).map((q) => new URL(q.url).pathname.split('/').pop());
      t.log(`model files requested: ${files.join(', ')}`);
      assert(files.includes('config.json') && files.includes('tokenizer.json'), 'config.json and tokenizer.json should be read to plan');
      assert(!files.includes('model.safetensors'), 'model.safetensors was requested for a Train that cannot fit');
      assertEq(r.runs.full.status, 'skipped', 'the refused run');
      // What the message says to change works.
      await configure(page, { batch: 2, maxLen: 128, padMax: false, full: false, frozen: true });
      const ok = await trainAndWait(page);
      assert(!ok.lastError, `smaller Train: ${ok.lastError && ok.lastError.message}`);
      assertEq(ok.runs.frozen.status, 'done', 'frozen after the refusal');
      assert(t.requests.slice(mark).some((q) => q.url.endsWith('/model.safetensors')), 'the smaller Train downloaded the model');
      await context.close();
    },
  },

  {
    name: 'fail fast: a repository whose config.json is not a BERT is refused before model.safetensors is requested',
    timeout: 120_000,
    async run(t) {
      const context = await newContext(t.browser, t);
      const repo = 'someone/not-a-bert';
      const served = [];
      // A fake repository on the local hub mirror: a GPT-2 config beside a real tokenizer.
      await context.route(`**/hub/${repo}/resolve/main/*`, (route) => {
        const name = new URL(route.request().url()).pathname.split('/').pop();
        served.push(name);
        if (name === 'config.json') {
          return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], n_embd: 768, n_layer: 12, n_head: 12, vocab_size: 50257 }) });
        }
        if (name === 'tokenizer.json') return route.fulfill({ status: 200, contentType: 'application/json', path: path.join(ROOT, 'models/all-MiniLM-L6-v2/tokenizer.json') });
        return route.fulfill({ status: 200, contentType: 'application/octet-stream', body: Buffer.alloc(1 << 20) });
      });
      const page = await openApp(context, t.base, `?hub=/hub&repo=${encodeURIComponent(repo)}`);
      await configure(page, { frozen: true, full: false, epochs: 1 });
      const r = await trainAndWait(page);
      const msg = (await page.locator('#error-text').textContent()) || '';
      t.log(`${repo} → ${msg}; files served: ${served.join(', ')}`);
      assert(r.lastError && /config\.json/.test(msg) && /bert/i.test(msg) && /gpt2/.test(msg), `unclear refusal: ${msg}`);
      assert(served.includes('config.json'), `config.json was not requested (route not hit?): ${served}`);
      assert(!served.includes('model.safetensors'), 'model.safetensors was requested for a repository that is not a BERT');
      assert(!t.requests.some((q) => q.url.endsWith(`${repo}/resolve/main/model.safetensors`)), 'model.safetensors in the request log');
      assertEq((await cacheEntries(page)).filter((c) => c.url.includes(repo)).length, 0, 'files of the refused repository kept in the cache');
      await context.close();
    },
  },

  {
    name: 'other architectures: DistilBERT- and RoBERTa-shaped random checkpoints (another hub repository) train frozen + full with every view drawn',
    timeout: 1_200_000,
    async run(t) {
      // Full-size random checkpoints with the real base models' configs and parameter names,
      // served by a second `webtune serve` whose hub mirror holds them as the repositories
      // random/distilbert and random/roberta (the first run writes them under target/).
      const shapes = [['distilbert', 'distilbert-base-uncased', 6], ['roberta', 'roberta-base', 12]];
      const models = path.join(TARGET, 'e2e-arch-models');
      for (const [arch] of shapes) {
        const dir = path.join(models, 'random', arch);
        if (!fs.existsSync(path.join(dir, 'model.safetensors'))) {
          execFileSync(path.join(TARGET, 'release/webtune'), ['random-checkpoint', '--arch', arch, '--out', dir], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
        }
      }
      const server = await startServer(ROOT, [], { models });
      t.shared.ownOrigins = [...(t.shared.ownOrigins || []), new URL(server.url).origin];
      try {
        const context = await newContext(t.browser, t);
        const page = await openApp(context, server.url, '?hub=/hub');
        const hubOptions = await byRole(page, 'combobox', 'Model').locator('option').allTextContents();
        for (const name of ['bert-base-uncased', 'distilbert-base-uncased', 'roberta-base', 'distilroberta-base', 'all-MiniLM-L6-v2']) {
          assert(hubOptions.some((o) => o.startsWith(name)), `the model picker has no ${name}: ${hubOptions.join(' | ')}`);
        }
        for (const [arch, shape, layers] of shapes) {
          await configure(page, { model: 'other', frozen: true, full: true, epochs: 2, batch: 5, maxLen: 32 });
          await page.locator('#repo-id').fill(`random/${arch}`);
          const r = await trainAndWait(page);
          assert(!r.lastError, `${shape}: ${r.lastError && r.lastError.message}`);
          assertEq(r.runs.frozen.status, 'done', `${shape}: frozen`);
          assertEq(r.runs.full.status, 'done', `${shape}: full`);
          assertEq(r.model.info.num_layers, layers, `${shape}: layers`);
          const info = await page.locator('#model-info').textContent();
          t.log(`${shape}: ${info}`);
          assert(/dense layer/.test(info), `${shape}: the model note should say the head's dense layer was drawn: ${info}`);
          const region = (name) => page.getByRole('region', { name, exact: true });
          for (const name of ['Frozen encoder', 'Full fine-tuning']) {
            const map = region(name).getByRole('img', { name: 'Embedding map', exact: true });
            assert(await map.isVisible(), `${shape} ${name}: no visible Embedding map`);
            assert((await inkedPixels(map)) > 200, `${shape} ${name}: the embedding map looks empty`);
            const blocks = await region(name).getByRole('img', { name: 'Layer changes', exact: true }).locator('g[data-block]').evaluateAll((gs) => gs.map((g) => g.dataset.block));
            assertEq(blocks.length, layers + 3, `${shape} ${name}: layer-change blocks (${blocks.join(',')})`);
          }
          assert(await page.getByRole('table', { name: 'Results' }).isVisible(), `${shape}: no Results table`);
        }
        // A model_type webtune does not train is refused naming the supported ones.
        await context.route('**/hub/random/t5/resolve/main/*', (route) => {
          const name = new URL(route.request().url()).pathname.split('/').pop();
          if (name === 'config.json') return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ model_type: 't5', d_model: 512 }) });
          if (name === 'tokenizer.json') return route.fulfill({ status: 200, contentType: 'application/json', path: path.join(ROOT, 'models/all-MiniLM-L6-v2/tokenizer.json') });
          return route.fulfill({ status: 500, body: 'model.safetensors must not be requested' });
        });
        await page.locator('#repo-id').fill('random/t5');
        const refused = await trainAndWait(page);
        const msg = (await page.locator('#error-text').textContent()) || '';
        t.log(`t5 → ${msg}`);
        assert(refused.lastError && /t5/.test(msg) && /distilbert/.test(msg) && /roberta/.test(msg), `the refusal should name t5 and the supported model types: ${msg}`);
        assert(!t.requests.some((q) => q.url.endsWith('random/t5/resolve/main/model.safetensors')), 'model.safetensors of the t5 repository was requested');
        await context.close();
      } finally {
        await server.stop();
      }
    },
  },

  {
    name: 'worker crash: the page restarts the worker, the next Train works (model from the cache)',
    timeout: 300_000,
    async run(t) {
      const context = await newContext(t.browser, t);
      const page = await openApp(context, t.base, '?hub=/hub');
      await configure(page, { model: 'local', frozen: true, full: false, epochs: 1 });
      const first = await trainAndWait(page);
      assert(!first.lastError, `first run: ${first.lastError && first.lastError.message}`);
      // A real crash: the worker calls the wasm export crash_for_tests(), a Rust panic that traps
      // the instance (RuntimeError: unreachable), and its own crash path reports it.
      await page.evaluate((type) => window.__webtune.worker.postMessage({ type }), ToWorker.CRASH_FOR_TESTS);
      try {
        await page.waitForFunction(() => window.__webtune.state.workerStarts === 2 && window.__webtune.state.ready, null, { timeout: 60_000 });
      } catch {
        const s = await page.evaluate(() => ({ starts: window.__webtune.state.workerStarts, error: window.__webtune.state.lastError }));
        throw new AssertionError(`the worker was not restarted within 60 s (worker starts: ${s.starts}, last error: ${JSON.stringify(s.error)})`);
      }
      const shown = await page.locator('#error-text').textContent();
      t.log(`crash → ${shown}`);
      assert(shown.includes('crashed'), 'crash message not shown');
      assert(/crashed \(.*unreachable.*\)/.test(shown), `the message should name the trap: ${shown}`);
      assertEq(await page.evaluate(() => window.__webtune.state.lastError.code), ErrorCode.CRASH, 'error code');
      // console_error_panic_hook in the worker logged the Rust panic (Playwright forwards worker consoles).
      const panic = t.console.find((line) => line.includes('crash_for_tests: a deliberate panic'));
      assert(panic, 'the Rust panic message is not in the console');
      t.log(`worker console: ${panic.split('\n').slice(0, 2).join(' ')}`);
      // The crashed worker itself refuses further work (it must not touch the trapped instance):
      // checked on a worker of our own, which no page logic terminates after the crash.
      const refusal = await page.evaluate(({ crash, parse, error }) => new Promise((resolve, reject) => {
        const w = new Worker(new URL('/worker.js', location.href), { type: 'module' });
        const timer = setTimeout(() => { w.terminate(); reject(new Error('no answer from the crashed worker')); }, 60_000);
        let crashed = null;
        w.onmessage = (e) => {
          const m = e.data;
          if (!crashed && m.type === error) {
            crashed = m;
            w.postMessage({ type: parse, id: 1, train: '1\tgood\n0\tbad\n', val: null, valFraction: null, seed: 0 });
          } else if (crashed && m.id === 1) {
            clearTimeout(timer);
            w.terminate();
            resolve({ crash: crashed, answer: m });
          }
        };
        w.postMessage({ type: crash });
      }), { crash: ToWorker.CRASH_FOR_TESTS, parse: ToWorker.PARSE, error: FromWorker.ERROR });
      t.log(`own worker: crash → ${refusal.crash.code}; then parse → ${refusal.answer.type} ${refusal.answer.code || ''} ${refusal.answer.message || ''}`);
      assertEq(refusal.crash.code, ErrorCode.CRASH, 'the crashed worker\'s error code');
      assertEq(refusal.answer.type, FromWorker.ERROR, 'answer of the crashed worker to a parse request');
      assertEq(refusal.answer.code, ErrorCode.CRASH, 'code of the crashed worker\'s refusal');
      const mark = t.requests.length;
      const again = await trainAndWait(page);
      assert(!again.lastError, `run after the restart: ${again.lastError && again.lastError.message}`);
      assertEq(again.model.fromCache, true, 'model from the cache after the restart');
      assert(!t.requests.slice(mark).some((q) => q.url.includes('/resolve/')), 'model files downloaded again after the restart');
      await context.close();
    },
  },

  // Issue 25: a fault on a pool thread (where every step runs, kernels::on_pool) leaves the
  // worker waiting for it for ever; the page must notice — the panic hook's message or the
  // refused allocation in the shared memory, or (a thread that just never returns) the worker's
  // silence for much longer than its steps take (at least 60 s) — and restart it. On one thread
  // (www/pkg) the same panic traps the worker's own thread, whose crash path reports it.
  ...[['panic', 'pool'], ['out-of-memory', 'pool'], ['hang', 'pool'], ['panic', 'single']].map(([fault, build]) => ({
    name: build === 'pool'
      ? `pool thread ${fault} in a training step: the page notices, says what to try, restarts the worker, keeps the finished run`
      : `single-threaded build: a ${fault} in a training step reaches the page through the worker's crash path, which restarts it and keeps the finished run`,
    timeout: 600_000,
    async run(t) {
      const context = await newContext(t.browser, t);
      const page = await openApp(context, t.base, build === 'pool' ? '?hub=/hub' : '?hub=/hub&threads=1');
      const threads = await page.evaluate(() => window.__webtune.state.workerThreads);
      if (build === 'pool') assert(threads > 1, `this check needs the threaded build on more than one thread (the worker runs ${threads})`);
      else assertEq(threads, 1, 'threads of the worker started with ?threads=1');
      await configure(page, { model: 'local', frozen: true, top: false, full: true });
      await waitTrainEnabled(page);
      await byRole(page, 'button', 'Train').click();
      // Frozen finishes; once full trains, its next step fails on a pool thread (the step runs
      // there: kernels::on_pool), and the worker's own thread waits for it for ever (one
      // thread: the step runs on the worker's thread, which traps).
      await page.waitForFunction(() => {
        const r = window.__webtune.state.runs;
        return r.frozen && r.frozen.status === 'done' && r.full && r.full.status === 'running' && r.full.losses.length > 0;
      }, null, { timeout: 300_000, polling: 50 });
      const stepsBefore = await page.evaluate(() => window.__webtune.state.runs.full.losses.length);
      await page.evaluate(({ type, inStep }) => window.__webtune.worker.postMessage({ type, inStep }), { type: ToWorker.CRASH_FOR_TESTS, inStep: fault });
      const t0 = Date.now();
      const within = fault === 'hang' ? 120_000 : 30_000;
      try {
        await page.waitForFunction(() => window.__webtune.state.workerStarts === 2 && window.__webtune.state.ready, null, { timeout: within, polling: 100 });
      } catch {
        const s = await page.evaluate(() => ({ starts: window.__webtune.state.workerStarts, running: window.__webtune.state.running, error: window.__webtune.state.lastError }));
        throw new AssertionError(`the page did not restart the stuck worker within ${within / 1000} s (worker starts: ${s.starts}, running: ${s.running}, last error: ${JSON.stringify(s.error)})`);
      }
      const shown = await page.locator('#error-text').textContent();
      t.log(`${fault} in a step of full (after ${stepsBefore} of its steps) → restarted after ${((Date.now() - t0) / 1000).toFixed(1)} s: ${shown}`);
      assertEq(await page.evaluate(() => window.__webtune.state.lastError.code), ErrorCode.CRASH, 'error code');
      if (build === 'single') {
        // The worker's own crash path, naming the trap and the panic (read from the fault block).
        assert(/crashed \(unreachable: panicked at src\/kernels\.rs:\d+:\d+: a deliberate panic in a training step, requested by a test\)/.test(shown), `the message should name the trap and the panic: ${shown}`);
        assert(shown.includes('The worker has been restarted'), `the message should say the worker was restarted: ${shown}`);
        assert(shown.includes('smaller batch size'), `the message should say what to try: ${shown}`);
        assert(!shown.includes('fewer threads'), `one thread: the message should not suggest fewer threads: ${shown}`);
      } else if (fault === 'panic') {
        // The panic hook's message, from the pool thread, read by the page from the shared memory.
        assert(shown.includes('A thread of the WebAssembly training pool panicked'), `the message should say a pool thread panicked: ${shown}`);
        assert(shown.includes('a deliberate panic in a training step, requested by a test'), `the message should quote the panic: ${shown}`);
        assert(/src\/kernels\.rs:\d+/.test(shown), `the message should name where it panicked: ${shown}`);
      } else if (fault === 'out-of-memory') {
        // No panic hook runs for an allocation failure: the counting allocator kept its size.
        assert(/The WebAssembly memory ran out: an allocation of [\d.]+ MB failed/.test(shown), `the message should say the memory ran out: ${shown}`);
      } else {
        const silent = /stopped answering: nothing from it for (\d+) s/.exec(shown);
        assert(silent && Number(silent[1]) >= 60, `the message should say how long the worker was silent (at least 60 s): ${shown}`);
      }
      if (build === 'pool') {
        assert(shown.includes('It has been restarted.'), `the message should say the worker was restarted: ${shown}`);
        assert(shown.includes('results of the finished run (Frozen encoder) are kept'), `the message should say what was kept: ${shown}`);
        for (const advice of ['smaller batch size', 'fewer threads', 'single-threaded build (Threads 1)']) {
          assert(shown.includes(advice), `the message should suggest "${advice}": ${shown}`);
        }
      }
      // The finished run's row is still there, done; the interrupted one failed.
      const rows = await page.evaluate(() => [...document.querySelectorAll('#results-body tr')].map((tr) => ({ strategy: tr.dataset.strategy, status: tr.querySelector('td').textContent, train: tr.querySelectorAll('td')[1].textContent })));
      t.log(`results after the restart: ${JSON.stringify(rows)}`);
      assertEq(rows.map((r) => `${r.strategy}:${r.status}`).join(','), 'frozen:done,full:failed', 'results rows after the restart');
      assert(/%$/.test(rows[0].train), `frozen's row keeps its training accuracy (${rows[0].train})`);
      const frozen = await page.evaluate(() => window.__webtune.state.runs.frozen);
      assert(frozen.done && frozen.losses.length > 0, 'frozen keeps its done event and losses');
      // Its model was in the stuck worker: Try it and Download no longer offer it.
      assertEq(await byRole(page, 'button', 'Classify').isDisabled(), true, 'Classify after the restart (no model left)');
      assertEq(await page.locator('#download-btn').isDisabled(), true, 'Download after the restart (no model left)');
      // The new worker trains, and Try it works on what it trained.
      await configure(page, { full: false });
      const again = await trainAndWait(page);
      assert(!again.lastError, `Train after the restart: ${again.lastError && again.lastError.message}`);
      assertEq(again.runs.frozen.status, 'done', 'frozen after the restart');
      assertEq(again.model.fromCache, true, 'model from the cache after the restart');
      await byRole(page, 'textbox', 'Try a sentence').fill('I love it');
      await byRole(page, 'button', 'Classify').click();
      await page.locator('#predictions .pred[data-strategy="frozen"]').waitFor({ timeout: 60_000 });
      await context.close();
    },
  })),

  {
    name: `"${XSS}" shows as text everywhere and no dialog fires`,
    timeout: 600_000,
    async run(t) {
      const context = await newContext(t.browser, t);
      const page = await openApp(context, t.base, '?hub=/hub');
      await configure(page, { model: 'local', frozen: true, top: false, full: false, epochs: 1, headLr: '1e-2' });
      const data = [
        `pos\tGreat stuff ${XSS} really`,
        'pos\tI love it',
        `${XSS}\tAwful ${XSS}`,
        `${XSS}\tI hate it`,
        '',
      ].join('\n');
      // A data error quoting the text: validation label not in the training classes.
      await setTrainingData(page, data);
      await page.getByRole('radio', { name: /Paste separate validation data/ }).check();
      await byRole(page, 'textbox', 'Validation data').fill(`${XSS}x\tsomething`);
      await page.waitForFunction(() => !window.__webtune.state.parsePending);
      const valError = await page.locator('#val-errors').textContent();
      assert(valError.includes(`${XSS}x`), `validation error should quote the label as text: ${valError}`);
      await byRole(page, 'textbox', 'Validation data').fill(`${XSS}\tterrible ${XSS}\npos\tnice`);
      await page.waitForFunction(() => !window.__webtune.state.parsePending);
      const summary = await page.locator('#train-summary').textContent();
      assert(summary.includes(XSS), `summary should list the class as text: ${summary}`);
      const r = await trainAndWait(page);
      assert(!r.lastError, `run error: ${r.lastError && r.lastError.message}`);
      // Confusion matrix labels: the per-class table, and the heat map's readout on hover.
      await byRole(page, 'combobox', 'Confusion matrix for').selectOption('frozen');
      const perClass = await page.getByRole('table', { name: /Per-class metrics/ }).textContent();
      assert(perClass.includes(XSS), 'the per-class table should show the label as text');
      const xssRow = r.runs.frozen.done.per_class.findIndex((c) => c.label === XSS);
      await hoverCell(page, xssRow, xssRow);
      const readout = await page.locator('#confusion-readout').textContent();
      assert(readout.includes(`True “${XSS}”`), `the heat map readout should show the label as text: ${readout}`);
      // The embedding map's readout of the first training sentence, from the keyboard.
      await page.getByRole('region', { name: 'Frozen encoder', exact: true }).getByRole('img', { name: 'Embedding map', exact: true }).focus();
      const mapText = await page.locator('#insight-panel [data-strategy="frozen"] .readout').textContent();
      assert(mapText.includes(`“Great stuff ${XSS} really”`), `the embedding map should show the sentence as text: ${mapText}`);
      // Try it with the string itself.
      await byRole(page, 'textbox', 'Try a sentence').fill(XSS);
      await byRole(page, 'button', 'Classify').click();
      await page.waitForFunction(() => window.__webtune.state.predictions);
      const preds = await page.locator('#predictions').textContent();
      assert(preds.split(XSS).length - 1 >= 2, `Try-it should show the sentence and the label as text: ${preds}`);
      const results = await page.getByRole('table', { name: 'Results' }).textContent();
      assert(results.includes('Frozen encoder'), 'results table');
      await sleep(500);
      assertEq(await page.locator('img').count(), 0, '<img> elements in the page');
      assertEq(t.dialogs.length, 0, `dialogs fired: ${t.dialogs.join('; ')}`);
      assert(!t.requests.some((q) => new URL(q.url).pathname === '/x'), 'an <img src=x> was requested');
      await context.close();
    },
  },

  {
    name: 'local model files from the file picker, validation split',
    timeout: 600_000,
    async run(t) {
      const context = await newContext(t.browser, t);
      const page = await openApp(context, t.base, '');
      await configure(page, { model: 'files', frozen: true, full: false, epochs: 2, headLr: '1e-2' });
      const dir = path.join(ROOT, 'models/all-MiniLM-L6-v2');
      await page.getByLabel('Model files', { exact: false }).setInputFiles(['config.json', 'tokenizer.json', 'model.safetensors'].map((f) => path.join(dir, f)));
      await page.getByRole('radio', { name: /Hold out a fraction/ }).check();
      await byRole(page, 'spinbutton', 'Validation fraction').fill('0.2');
      await page.waitForFunction(() => !window.__webtune.state.parsePending && window.__webtune.state.parse.ok);
      const summary = await page.locator('#train-summary').textContent();
      t.log(`summary: ${summary}`);
      assert(summary.includes('8 training sentences') && summary.includes('2 for validation'), `split summary: ${summary}`);
      const mark = t.requests.length;
      const r = await trainAndWait(page);
      assert(!r.lastError, `run error: ${r.lastError && r.lastError.message}`);
      assertEq(r.model.label, 'local files', 'model source label');
      const run = r.runs.frozen;
      t.log(`frozen with head rate 1e-2: train ${run.done.train_accuracy}, validation ${run.done.val_accuracy}; losses ${run.losses.map((l) => l.toFixed(3)).join(' ')}`);
      assert(run.done.val_accuracy !== null, 'validation accuracy missing');
      assert(run.epochs.every((e) => e.val_accuracy !== null), 'validation accuracy per epoch missing');
      const acc = await page.evaluate(() => window.__webtune.charts.acc.series.map((s) => s.label));
      assert(acc.includes('Frozen encoder (validation)'), `accuracy chart series: ${acc}`);
      const after = t.requests.slice(mark).map((q) => new URL(q.url).pathname);
      assert(!after.some((p) => p.includes('/resolve/')), `model files were requested: ${after}`);
      await page.screenshot({ path: path.join(TARGET, 'e2e-files-validation.png'), fullPage: true });
      await context.close();
    },
  },

  ...keepTests, // saved models, results records, phone widths and keyboard (keep-tests.mjs)
  ...gpuTests, // the Device control: WebGPU on SwiftShader, no adapter, a device lost mid-run (gpu-tests.mjs)

  {
    name: 'no COOP/COEP (webtune serve --no-isolation): the page trains on one thread and says so',
    timeout: 300_000,
    async run(t) {
      const server = await startServer(ROOT, ['--no-isolation']);
      t.shared.ownOrigins = [...(t.shared.ownOrigins || []), new URL(server.url).origin];
      try {
        const context = await newContext(t.browser, t);
        // (?threads=2 asks for two threads: without isolation the page still offers only one.)
        const page = await openApp(context, server.url, '?hub=/hub&threads=2');
        assertEq(await page.evaluate(() => self.crossOriginIsolated), false, 'page cross-origin isolated');
        const threadsBox = byRole(page, 'spinbutton', 'Threads');
        assertEq(await threadsBox.inputValue(), '1', 'Threads value');
        assertEq(await threadsBox.isDisabled(), true, 'Threads disabled');
        const hint = await page.locator('#threads-hint').textContent();
        t.log(`Threads hint: ${hint}`);
        assert(/one thread/.test(hint) && /not cross-origin isolated/.test(hint) && /COOP\/COEP/.test(hint), `the Threads note should say why: ${hint}`);
        await configure(page, { model: 'local', frozen: false, top: false, full: true, epochs: 1 });
        const r = await trainAndWait(page);
        assert(!r.lastError, `run error: ${r.lastError && r.lastError.message}`);
        const full = r.runs.full;
        assertEq(full.status, 'done', 'full status');
        assertEq(full.start.threads, 1, 'threads in the start event');
        assertEq(full.done.threads, 1, 'threads in the done event');
        const row = await page.getByRole('table', { name: 'Results' }).locator('tbody tr[data-strategy="full"] td').allTextContents();
        const headers = await page.getByRole('table', { name: 'Results' }).locator('thead th').allTextContents();
        assertEq(row[headers.indexOf('Threads') - 1], '1', 'Threads column'); // (the row's first cell is a th)
        const wasm = t.requests.map((q) => new URL(q.url)).filter((u) => u.origin === new URL(server.url).origin).map((u) => u.pathname).filter((p) => p.includes('/pkg'));
        t.log(`module files: ${[...new Set(wasm)].join(', ')}`);
        assert(wasm.includes('/pkg/webtune_relaxed_bg.wasm'), 'the single-threaded build (relaxed-SIMD module) was not loaded');
        assert(!wasm.some((p) => p.startsWith('/pkg-threads/')), 'the threaded build was requested on a page that is not isolated');
        assertEq((await page.evaluate(() => window.__webtune.state.warnings)).length, 0, 'warnings (one thread is expected here, not a fallback)');
        t.log(`full, 1 epoch on one thread: train accuracy ${full.done.train_accuracy}, ${full.done.elapsed_ms.toFixed(0)} ms`);
        await context.close();
      } finally {
        await server.stop();
      }
    },
  },

  {
    name: 'threaded build fails to load: a warning, one thread, Train works',
    timeout: 300_000,
    async run(t) {
      const context = await newContext(t.browser, t);
      // The worker cannot fetch the threaded package's wasm, either module (as with a broken
      // deployment).
      let refused = 0;
      await context.route('**/pkg-threads/webtune*_bg.wasm', (route) => { refused += 1; return route.abort('failed'); });
      const page = await openApp(context, t.base, '?hub=/hub');
      assert(refused > 0, 'the threaded module was not requested (route not hit?)');
      assertEq(await page.evaluate(() => window.__webtune.state.workerThreads), 1, 'threads of the worker\'s wasm');
      const warnings = await page.evaluate(() => window.__webtune.state.warnings);
      t.log(`warning: ${warnings.join(' | ')}`);
      assert(warnings.length === 1 && /multi-threaded/.test(warnings[0]) && /one thread/.test(warnings[0]), `one clear warning expected: ${JSON.stringify(warnings)}`);
      assert((await page.locator('#warning-box').textContent()).includes('one thread'), 'the warning is not shown');
      assertEq(await page.evaluate(() => window.__webtune.state.lastError), null, 'an error was shown for a fallback');
      const threadsBox = byRole(page, 'spinbutton', 'Threads');
      assertEq(await threadsBox.inputValue(), '1', 'Threads value after the fallback');
      assertEq(await threadsBox.isDisabled(), true, 'Threads disabled after the fallback');
      await configure(page, { model: 'local', frozen: true, top: false, full: false, epochs: 1 });
      const r = await trainAndWait(page);
      assert(!r.lastError, `run error: ${r.lastError && r.lastError.message}`);
      assertEq(r.runs.frozen.status, 'done', 'frozen status');
      assertEq(r.runs.frozen.done.threads, 1, 'threads in the done event');
      assertEq(await page.evaluate(() => window.__webtune.state.workerStarts), 1, 'worker starts (no restart for the fallback)');
      await context.close();
    },
  },

  {
    name: 'relaxed-SIMD module fails to load: the plain module trains on every thread',
    timeout: 300_000,
    async run(t) {
      const context = await newContext(t.browser, t);
      // The engine validates relaxed SIMD, but the module cannot be fetched (a deployment
      // without it): the worker falls back to the same package's plain simd128 module.
      let refused = 0;
      await context.route('**/webtune_relaxed_bg.wasm', (route) => { refused += 1; return route.abort('failed'); });
      const page = await openApp(context, t.base, '?hub=/hub');
      assert(refused > 0, 'the relaxed-SIMD module was not requested (route not hit?)');
      const cores = await page.evaluate(() => navigator.hardwareConcurrency);
      assertEq(await page.evaluate(() => window.__webtune.state.workerSimd), 'simd128', 'SIMD of the worker\'s wasm');
      assertEq(await page.evaluate(() => window.__webtune.state.workerThreads), cores, 'threads: still the threaded package');
      assertEq((await page.evaluate(() => window.__webtune.state.warnings)).length, 0, 'warnings (same speed class, nothing for the user to do)');
      await configure(page, { model: 'local', frozen: true, top: false, full: false, epochs: 1 });
      const r = await trainAndWait(page);
      assert(!r.lastError, `run error: ${r.lastError && r.lastError.message}`);
      assertEq(r.runs.frozen.status, 'done', 'frozen status');
      assertEq(r.runs.frozen.done.threads, cores, 'threads in the done event');
      await context.close();
    },
  },

  {
    name: 'network: only same-origin requests, none carries the training sentences',
    timeout: 900_000,
    async run(t) {
      if (!t.shared.notebookRan) {
        // Run alone: make a small complete run to have something to check.
        const context = await newContext(t.browser, t);
        const page = await openApp(context, t.base, '?hub=/hub');
        await configure(page, { model: 'local', frozen: true, full: false, epochs: 1 });
        const r = await trainAndWait(page);
        assert(!r.lastError, `run error: ${r.lastError && r.lastError.message}`);
        await byRole(page, 'button', 'Classify').click();
        await page.waitForFunction(() => window.__webtune.state.predictions);
        await context.close();
      }
      const origin = new URL(t.base).origin;
      // Servers of our own that tests started (e.g. one without COOP/COEP) count as same-origin.
      const own = [origin, ...(t.shared.ownOrigins || [])];
      const all = t.allRequests();
      assert(all.length > 0, 'no requests were logged');
      // (blob: URLs of our origin: wasm-bindgen-rayon starts each pool worker from one.)
      const ours = (r) => own.some((o) => r.url.startsWith(o + '/') || r.url.startsWith(`blob:${o}/`));
      const foreign = all.filter((r) => !r.allowForeign && !ours(r));
      const kinds = new Map();
      for (const r of all) {
        const u = new URL(r.url);
        const key = u.protocol === 'blob:' ? 'blob:' : u.pathname.replace(/\/resolve\/.*$/, '/resolve/…').replace(/^\/pkg\/.*/, '/pkg/…');
        kinds.set(key, (kinds.get(key) || 0) + 1);
      }
      t.log(`${all.length} requests by ${new Set(all.map((r) => r.test)).size} tests: ${[...kinds].map(([k, n]) => `${k} ×${n}`).join(', ')}`);
      const deliberate = all.filter((r) => r.allowForeign && !ours(r));
      if (deliberate.length) t.log(`deliberate unreachable-hub attempts: ${[...new Set(deliberate.map((r) => r.url))].join(', ')}`);
      assert(foreign.length === 0, `cross-origin requests: ${foreign.map((r) => `${r.test}: ${r.url}`).join('\n')}`);
      for (const r of deliberate) assert(/\/resolve\/main\/(config\.json|tokenizer\.json|model\.safetensors)$/.test(r.url), `unexpected foreign request ${r.url}`);
      const secrets = [...NOTEBOOK_SENTENCES, 'Great stuff', 'unknown class here', 'good one'];
      for (const r of all) {
        let decoded = r.url;
        try { decoded = decodeURIComponent(r.url.replace(/\+/g, ' ')); } catch { /* keep raw */ }
        for (const s of secrets) {
          assert(!decoded.includes(s) && !(r.postData || '').includes(s), `request ${r.method} ${r.url} carries "${s}"`);
        }
      }
      const posts = all.filter((r) => r.method !== 'GET');
      assertEq(posts.length, 0, `non-GET requests: ${posts.map((r) => `${r.method} ${r.url}`).join(', ')}`);
    },
  },
];
