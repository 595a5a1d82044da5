// End-to-end tests of keeping and sharing the work (issue 11): saved models that survive a
// reload, the results record (Export results / Load results, the JSON schema), and the page at
// phone widths driven by the keyboard alone. tests.mjs runs them (before the network check).
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { validate } from '../../www/js/json-schema.js';
import {
  assert, assertEq, byRole, cacheEntries, configure, newContext, openApp, readTar, trainAndWait, waitTrainEnabled,
} from './helpers.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SCHEMA = JSON.parse(fs.readFileSync(path.join(ROOT, 'www/record.schema.json'), 'utf8'));
const SAVED_CACHE = 'webtune-saved-v1';
const SENTENCE = 'I love this product!';

const sha = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

/** The cells of a results-like table, by column header: [{Strategy: …, Status: …}, …]. */
async function tableRows(page, name) {
  const table = page.getByRole('table', { name, exact: true });
  const headers = await table.locator('thead th').allTextContents();
  const rows = await table.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => Array.from(tr.children).map((c) => c.textContent)));
  return rows.map((cells) => Object.fromEntries(headers.map((h, i) => [h, cells[i]])));
}

async function savedItems(page) {
  return page.locator('#saved-list li.saved').evaluateAll((lis) => lis.map((li) => ({ id: li.dataset.savedId, text: li.textContent })));
}

async function download(page, click) {
  const [d] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), click()]);
  return { name: d.suggestedFilename(), buf: fs.readFileSync(await d.path()) };
}

async function savedCacheUrls(page) {
  return (await cacheEntries(page)).filter((c) => c.cache === SAVED_CACHE).map((c) => new URL(c.url).pathname);
}

async function classifyWithRuns(page, text) {
  await byRole(page, 'textbox', 'Try a sentence').fill(text);
  await page.evaluate(() => { window.__webtune.state.predictions = null; });
  await byRole(page, 'button', 'Classify').click();
  await page.waitForFunction(() => window.__webtune.state.predictions, null, { timeout: 60_000 });
  return page.evaluate(() => window.__webtune.state.predictions.results);
}

/** Press a saved model's Try it and wait for its prediction. */
async function trySaved(page, id, text) {
  await byRole(page, 'textbox', 'Try a sentence').fill(text);
  await page.evaluate(() => { window.__webtune.state.predictions = null; });
  await page.locator(`#saved-list li[data-saved-id="${id}"] button.try`).click();
  await page.waitForFunction(() => window.__webtune.state.predictions || /Could not/.test(document.getElementById('saved-message').textContent), null, { timeout: 120_000 });
  const results = await page.evaluate(() => window.__webtune.state.predictions && window.__webtune.state.predictions.results);
  assert(results, `Try it on the saved model failed: ${await page.locator('#saved-message').textContent()}`);
  return results;
}

async function chartData(page, which) {
  return page.evaluate((w) => {
    const c = w === 'loaded' ? window.__webtune.loaded.charts : window.__webtune.charts;
    return { loss: c.loss.data.map((s) => Array.from(s)), acc: c.acc.data.map((s) => Array.from(s)) };
  }, which);
}

/** Page wider than the viewport? (sideways scrolling) */
async function widths(page) {
  return page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, viewport: window.innerWidth }));
}

/** Press Tab (Esc first inside a text box, whose Tab types a tab, as its hint says) until `id` has the focus; returns the ids passed. */
async function tabTo(page, id, max = 120) {
  const passed = [];
  for (let i = 0; i < max; i++) {
    const active = await page.evaluate(() => ({ id: document.activeElement && document.activeElement.id, tag: document.activeElement && document.activeElement.tagName }));
    if (active.id === id) return passed;
    if (active.id) passed.push(active.id);
    if (active.tag === 'TEXTAREA') await page.keyboard.press('Escape');
    await page.keyboard.press('Tab');
  }
  throw new Error(`Tab never reached #${id}; passed ${passed.join(' → ')}`);
}

export const keepTests = [
  {
    name: 'saved models and results records: train, save (and a simulated full quota), export, reload → listed, same Try it probabilities, Download, Load results shows the same table and curves, delete',
    timeout: 900_000,
    async run(t) {
      const context = await newContext(t.browser, t);
      let page = await openApp(context, t.base, '?hub=/hub');
      await configure(page, { model: 'local', frozen: true, top: false, full: true, epochs: 1, headLr: '1e-2' });
      await page.getByRole('radio', { name: /Hold out a fraction/ }).check();
      await byRole(page, 'spinbutton', 'Validation fraction').fill('0.2');
      await page.waitForFunction(() => !window.__webtune.state.parsePending);
      const trained = await trainAndWait(page);
      assert(!trained.lastError, `training error: ${trained.lastError && trained.lastError.message}`);
      assertEq(trained.order.map((s) => trained.runs[s].status).join(','), 'done,done', 'run statuses');

      // Before the reload: Try it, the table, the charts, a Download of full.
      const before = await classifyWithRuns(page, SENTENCE);
      const fullBefore = before.find((r) => r.strategy === 'full').prediction;
      const rowsBefore = await tableRows(page, 'Results');
      const chartsBefore = await chartData(page, 'live');
      await byRole(page, 'combobox', 'Strategy to download').selectOption('full');
      const tarBefore = readTar((await download(page, () => byRole(page, 'button', 'Download model').click())).buf);

      // Save full: stored in the Cache API, with persistent storage asked for.
      assertEq((await savedItems(page)).length, 0, 'saved models before Save');
      await byRole(page, 'button', 'Save model').click();
      await page.waitForFunction(() => document.querySelectorAll('#saved-list li.saved').length === 1, null, { timeout: 120_000 });
      const savedMsg = await page.locator('#saved-message').textContent();
      t.log(`save: ${savedMsg}`);
      assert(/^Saved Full fine-tuning/.test(savedMsg), `save message: ${savedMsg}`);
      const [saved] = await savedItems(page);
      assert(!/in memory only/.test(saved.text), `stored model listed as memory only: ${saved.text}`);
      for (const want of ['Full fine-tuning', 'all-MiniLM-L6-v2', '8 training sentences', '2 validation', '2 classes', 'max length 128', 'MB']) {
        assert(saved.text.includes(want), `saved model entry lacks "${want}": ${saved.text}`);
      }
      const stored = await savedCacheUrls(page);
      assertEq(stored.length, 4, `saved cache entries (${stored.join(', ')})`);

      // A simulated full quota (navigator.storage.estimate overridden in the page: a reading,
      // not a real full disk): frozen is kept in memory only, with the message; nothing stored.
      await page.evaluate(() => { navigator.storage.estimate = async () => ({ quota: 200e6, usage: 199.5e6 }); });
      await byRole(page, 'combobox', 'Strategy to download').selectOption('frozen');
      await byRole(page, 'button', 'Save model').click();
      await page.waitForFunction(() => document.querySelectorAll('#saved-list li.saved').length === 2, null, { timeout: 120_000 });
      const quotaMsg = await page.locator('#saved-message').textContent();
      t.log(`simulated full quota: ${quotaMsg}`);
      assert(/Not enough browser storage/.test(quotaMsg) && /kept in memory only/.test(quotaMsg), `quota message: ${quotaMsg}`);
      const memoryItem = (await savedItems(page)).find((s) => /in memory only/.test(s.text));
      assert(memoryItem && memoryItem.text.includes('Frozen encoder'), `memory-only entry: ${JSON.stringify(await savedItems(page))}`);
      assertEq((await savedCacheUrls(page)).length, 4, 'saved cache entries after the refused save');
      const frozenBefore = before.find((r) => r.strategy === 'frozen').prediction;
      const frozenMem = (await trySaved(page, memoryItem.id, SENTENCE))[0].prediction;
      assertEq(JSON.stringify(frozenMem.probabilities), JSON.stringify(frozenBefore.probabilities), 'memory-only model: Try it probabilities');

      // Export the record (JSON, valid against the schema) and the curves (CSV).
      const exported = await download(page, () => byRole(page, 'button', 'Export results').click());
      const record = JSON.parse(exported.buf.toString('utf8'));
      const problems = validate(record, SCHEMA);
      assertEq(problems.join('; '), '', `exported record against www/record.schema.json (${exported.name})`);
      const kinds = [...new Set(record.events.map((e) => e.type))];
      t.log(`record ${exported.name}: ${exported.buf.length} bytes, ${record.events.length} events (${kinds.join(', ')}), model ${record.model.name}, data ${JSON.stringify({ ...record.data, labels: undefined })}`);
      for (const k of ['start', 'step', 'epoch', 'done']) assert(kinds.includes(k), `record has no ${k} event`);
      assertEq(record.options.epochs, 1, 'record options.epochs');
      assertEq(record.data.validation, 'split', 'record data.validation');
      assertEq(record.model.info.num_layers, 6, 'record model info');
      const done = record.events.filter((e) => e.type === 'done');
      assertEq(done.map((e) => e.strategy).join(','), 'frozen,full', 'done events');
      assert(done.every((e) => e.threads >= 1 && e.confusion.length === 2 && e.per_class.length === 2), 'done events carry threads, confusion, per-class metrics');
      // The validator catches what it should (a step without its loss).
      const broken = JSON.parse(JSON.stringify(record));
      delete broken.events.find((e) => e.type === 'step').loss;
      assert(validate(broken, SCHEMA).some((p) => p.includes('missing "loss"')), 'a step without loss passed the schema');
      const csv = await download(page, () => byRole(page, 'button', 'Export curves (CSV)').click());
      const csvLines = csv.buf.toString('utf8').trim().split('\n');
      assertEq(csvLines[0], 'strategy,curve,x,value', 'CSV header');
      const steps = record.events.filter((e) => e.type === 'step');
      assertEq(csvLines.filter((l) => l.includes(',loss,')).length, steps.length, 'CSV loss rows');
      assert(csvLines.includes(`full,loss,1,${steps.find((e) => e.strategy === 'full' && e.step === 1).loss}`), 'CSV has full\'s first loss');

      // Reload (same browser profile): the stored model is listed, the memory-only one is gone.
      await page.reload();
      await page.waitForFunction(() => window.__webtune && window.__webtune.state.ready && document.querySelectorAll('#saved-list li.saved').length > 0, null, { timeout: 60_000 });
      const afterReload = await savedItems(page);
      assertEq(afterReload.map((s) => s.id).join(','), saved.id, 'saved models after the reload');
      assertEq(await byRole(page, 'button', 'Classify').isDisabled(), true, 'no trained run after the reload');
      const fullAfter = (await trySaved(page, saved.id, SENTENCE))[0];
      t.log(`Try it before: ${JSON.stringify(fullBefore.probabilities)}; saved model after the reload: ${JSON.stringify(fullAfter.prediction.probabilities)}`);
      assertEq(fullAfter.prediction.label, fullBefore.label, 'label after the reload');
      const diff = Math.max(...fullAfter.prediction.probabilities.map((p, i) => Math.abs(p - fullBefore.probabilities[i])));
      assert(diff <= 1e-6, `probabilities differ by ${diff} after the reload`);
      const shown = await page.locator('#predictions').textContent();
      assert(shown.includes('Saved: Full fine-tuning'), `Try it does not name the saved model: ${shown}`);

      // Download of the saved model: the same three files as the Download before the reload.
      const savedTar = await download(page, () => page.locator(`#saved-list li[data-saved-id="${saved.id}"] button.download`).click());
      const files = readTar(savedTar.buf);
      assertEq(savedTar.name, 'webtune-full.tar', 'saved download name');
      assertEq(files.map((f) => f.name).join(','), tarBefore.map((f) => f.name).join(','), 'saved download members');
      for (let i = 0; i < files.length; i++) assertEq(sha(files[i].data), sha(tarBefore[i].data), `${files[i].name} of the saved download`);

      // While a Train runs, a saved model's Try it is off: it would load a second model that the
      // Train's memory plan does not count.
      await configure(page, { model: 'local', frozen: false, top: false, full: true, epochs: 2 });
      await waitTrainEnabled(page);
      const trainsBefore = await page.evaluate(() => window.__webtune.state.trainsFinished);
      await byRole(page, 'button', 'Train').click();
      await page.waitForFunction(() => window.__webtune.state.running, null, { polling: 50 });
      const tryButton = page.locator(`#saved-list li[data-saved-id="${saved.id}"] button.try`);
      assertEq(await tryButton.isDisabled(), true, "a saved model's Try it during a Train");
      await page.waitForFunction((n) => window.__webtune.state.trainsFinished > n && !window.__webtune.state.running, trainsBefore, { timeout: 300_000, polling: 100 });
      assertEq(await tryButton.isDisabled(), false, "a saved model's Try it after the Train");

      // Load results: a broken file is refused with a reason; the exported record shows the same numbers.
      await page.locator('#load-results').setInputFiles({ name: 'broken.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(broken)) });
      await page.waitForFunction(() => document.querySelectorAll('#load-errors li').length > 0);
      const loadErrors = await page.locator('#load-errors').textContent();
      t.log(`broken record → ${loadErrors}`);
      assert(/missing "loss"/.test(loadErrors), `broken record message: ${loadErrors}`);
      assertEq(await page.locator('#loaded-panel').isHidden(), true, 'loaded panel after a broken record');
      await page.locator('#load-results').setInputFiles({ name: exported.name, mimeType: 'application/json', buffer: exported.buf });
      await page.waitForFunction(() => window.__webtune.loaded.record);
      const rowsLoaded = await tableRows(page, 'Loaded results');
      t.log(`results before: ${JSON.stringify(rowsBefore)}\nloaded: ${JSON.stringify(rowsLoaded)}`);
      assertEq(rowsLoaded.length, rowsBefore.length, 'loaded rows');
      for (let i = 0; i < rowsBefore.length; i++) {
        for (const [h, v] of Object.entries(rowsLoaded[i])) {
          if (h in rowsBefore[i]) assertEq(v, rowsBefore[i][h], `loaded row ${i} ${h}`);
        }
      }
      const chartsLoaded = await chartData(page, 'loaded');
      assertEq(JSON.stringify(chartsLoaded.loss), JSON.stringify(chartsBefore.loss), 'loaded loss chart data');
      assertEq(JSON.stringify(chartsLoaded.acc), JSON.stringify(chartsBefore.acc), 'loaded accuracy chart data');

      // A record from the CLI (`webtune train --record`) opens in the page too.
      const cliRecord = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'webtune-e2e-')), 'cli.json');
      execFileSync(path.join(ROOT, 'target/release/webtune'), ['train', '--model', path.join(ROOT, 'models/all-MiniLM-L6-v2'), '--data', path.join(ROOT, 'data/notebook.tsv'),
        '--strategy', 'frozen', '--epochs', '1', '--threads', '1', '--record', cliRecord], { stdio: 'pipe' });
      await page.locator('#load-results').setInputFiles(cliRecord);
      await page.waitForFunction(() => window.__webtune.loaded.record && window.__webtune.loaded.record.producer.startsWith('webtune CLI'));
      const cliRows = await tableRows(page, 'Loaded results');
      t.log(`CLI record loaded: ${JSON.stringify(cliRows)}`);
      assertEq(cliRows.map((r) => `${r.Strategy}: ${r.Status}`).join(', '), 'Frozen encoder: done', 'the CLI record\'s runs');
      assertEq(await page.locator('#load-errors li').count(), 0, 'load errors for the CLI record');

      // Delete: gone from the list and from the browser's storage.
      await page.locator(`#saved-list li[data-saved-id="${saved.id}"] button.delete`).click();
      await page.waitForFunction(() => document.querySelectorAll('#saved-list li.saved').length === 0);
      assertEq((await savedCacheUrls(page)).length, 0, 'saved cache entries after Delete');
      page = await context.newPage();
      await page.goto(`${t.base}/?hub=/hub`);
      await page.waitForFunction(() => window.__webtune && window.__webtune.state.ready);
      await page.waitForTimeout(500);
      assertEq((await savedItems(page)).length, 0, 'saved models in a new tab after Delete');
      await context.close();
    },
  },

  {
    name: 'phone widths (360 × 740, 390 × 844): no sideways scrolling before and after a run, charts fit; keyboard only (Tab/Enter/Space, Esc out of the data box) from an unreachable hub to the local model, Train, Classify, Save',
    timeout: 600_000,
    async run(t) {
      const context = await t.browser.newContext({ viewport: { width: 390, height: 844 }, acceptDownloads: true });
      context.on('request', (req) => t.requests.push({ test: t.name, url: req.url(), method: req.method(), postData: req.postData(), resourceType: req.resourceType(), at: Date.now() }));
      const page = await context.newPage();
      page.on('console', (msg) => t.console.push(`[${msg.type()}] ${msg.text()}`));
      page.on('pageerror', (err) => t.console.push(`[pageerror] ${err.message}`));
      await page.goto(`${t.base}/`);
      await page.waitForFunction(() => window.__webtune && window.__webtune.state.ready && !window.__webtune.state.parsePending, null, { timeout: 60_000 });
      for (const [w, h] of [[360, 740], [390, 844]]) {
        await page.setViewportSize({ width: w, height: h });
        const before = await widths(page);
        t.log(`${w} px before a run: scrollWidth ${before.scroll}`);
        assertEq(before.scroll, before.viewport, `scrollWidth at ${w} px before a run`);
      }

      // Keyboard only, in page order: the data box (Esc, Tab out), strategies, epochs, Train.
      const order = [];
      order.push(...await tabTo(page, 's-full'));
      await page.keyboard.press('Space'); // full off: one cheap frozen run
      order.push(...await tabTo(page, 'epochs'));
      await page.keyboard.press('Control+A');
      await page.keyboard.type('1');
      order.push(...await tabTo(page, 'head-lr'));
      await page.keyboard.type('1e-2');
      order.push(...await tabTo(page, 'train-btn'));
      t.log(`Tab order: ${order.join(' → ')}`);
      const at = (id) => order.indexOf(id);
      assert(at('train-text') >= 0 && at('train-text') < at('model-select') && at('model-select') < at('s-frozen') && at('s-frozen') < at('epochs'), `Tab order is not the page order: ${order.join(' → ')}`);
      assertEq(await page.locator('#s-full').isChecked(), false, 'Space unchecked Full fine-tuning');
      // The default hub is unreachable here (no DNS): the error offers the local model.
      t.allowForeign = true; // a deliberate try of huggingface.co, which cannot leave this machine
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => !document.getElementById('use-local-btn').hidden && !window.__webtune.state.running, null, { timeout: 60_000 });
      t.allowForeign = false;
      await tabTo(page, 'use-local-btn', 80);
      await page.keyboard.press('Enter');
      assertEq(await page.evaluate(() => document.activeElement.id), 'train-btn', 'focus after "Use the local model"');
      const n = await page.evaluate(() => window.__webtune.state.trainsFinished);
      await page.keyboard.press('Enter');
      await page.waitForFunction((k) => window.__webtune.state.trainsFinished > k && !window.__webtune.state.running, n, { timeout: 300_000 });
      const run = await page.evaluate(() => window.__webtune.state.runs.frozen);
      assertEq(run && run.status, 'done', 'keyboard-started frozen run');
      assertEq(run.epochs.length, 1, 'epochs typed with the keyboard');
      assertEq(run.firstStep.head_lr, 0.01, 'head rate typed with the keyboard');
      // Announced: the status line is a live region and says the Train is done.
      assertEq(await page.locator('#status').getAttribute('role'), 'status', '#status role');
      assert(/^Done:/.test(await page.locator('#status').textContent()), 'status after the run');

      await tabTo(page, 'classify-btn');
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => window.__webtune.state.predictions, null, { timeout: 60_000 });
      assertEq(await page.locator('#predictions').getAttribute('aria-live'), 'polite', 'predictions live region');
      await tabTo(page, 'save-btn');
      await page.keyboard.press('Space');
      await page.waitForFunction(() => document.querySelectorAll('#saved-list li.saved').length === 1, null, { timeout: 120_000 });
      await tabTo(page, 'export-json-btn');

      for (const [w, h] of [[390, 844], [360, 740]]) {
        await page.setViewportSize({ width: w, height: h });
        await page.waitForTimeout(400); // the charts follow a resize after 100 ms
        const after = await widths(page);
        const fit = await page.evaluate(() => ['loss', 'acc'].map((k) => {
          const chart = window.__webtune.charts[k];
          const box = document.getElementById(`${k}-chart`);
          return { chart: chart.width, box: box.clientWidth };
        }));
        t.log(`${w} px after a run: scrollWidth ${after.scroll}; charts ${JSON.stringify(fit)}`);
        assertEq(after.scroll, after.viewport, `scrollWidth at ${w} px after a run`);
        for (const f of fit) assert(f.chart <= f.box, `a chart (${f.chart} px) is wider than its box (${f.box} px) at ${w} px`);
      }
      await page.screenshot({ path: path.join(ROOT, 'target/e2e-phone-360.png'), fullPage: true });
      // The system's dark mode: dark page and panels, light text.
      const luminance = (rgb) => {
        const [r, g, b] = rgb.match(/\d+/g).map(Number);
        return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
      };
      const look = async () => page.evaluate(() => {
        const css = (el) => getComputedStyle(el);
        return { bg: css(document.documentElement).backgroundColor, panel: css(document.getElementById('train-panel')).backgroundColor, fg: css(document.body).color };
      });
      const light = await look();
      await page.emulateMedia({ colorScheme: 'dark' });
      const dark = await look();
      t.log(`light ${JSON.stringify(light)}; dark ${JSON.stringify(dark)}`);
      assert(luminance(light.bg) > 0.8 && luminance(dark.bg) < 0.2 && luminance(dark.panel) < 0.2 && luminance(dark.fg) > 0.7, 'the page does not follow the dark mode');
      await page.screenshot({ path: path.join(ROOT, 'target/e2e-phone-360-dark.png') });
      await context.close();
    },
  },
];
