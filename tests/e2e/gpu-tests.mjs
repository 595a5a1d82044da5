// The page's "Device" control (issue 26) in headless Chromium: WebGPU on SwiftShader (a CPU
// implementation of WebGPU, only with --enable-unsafe-webgpu: ../shared/notes/webgpu.md), a
// browser without an adapter, and a real device.destroy() in the middle of a GPU run. SwiftShader
// is slow (its Adam over MiniLM's 22 M weights takes most of a 25-second `full` step), so these
// train `top:1`: the page's wiring is the same for every strategy, every WGSL kernel is compiled
// when the device is set up, and each strategy's GPU run is checked against the CPU natively
// (tests/gpu_training.rs).
import { ToWorker } from '../../www/js/protocol.js';
import { assert, assertEq, byRole, configure, launchBrowser, newContext, NOTEBOOK_TSV, openApp, setTrainingData, trainAndWait } from './helpers.mjs';

/** A browser with WebGPU on SwiftShader, for one test; closed after it. */
async function withWebGpuBrowser(run) {
  const browser = await launchBrowser({ webgpu: true });
  try {
    return await run(browser);
  } finally {
    await browser.close().catch(() => {});
  }
}

/** The Results table's row of `strategy` as {column header: text}; the status cell's title too. */
/** The strategy these tests train: MiniLM's top layer, pooler and head. */
const STRATEGY = 'top:1';

async function resultsRow(page, strategy) {
  const table = page.getByRole('table', { name: 'Results' });
  const headers = await table.locator('thead th').allTextContents();
  const row = table.locator(`tbody tr[data-strategy="${strategy}"]`);
  const cells = await row.locator('th, td').allTextContents();
  const statusTitle = await row.locator('td').first().getAttribute('title');
  return { ...Object.fromEntries(headers.map((h, i) => [h, cells[i]])), statusTitle };
}

/** Largest |a − b| / max(|b|, 1e-6) over two loss curves of the same length. */
function largestRelative(a, b) {
  assertEq(a.length, b.length, 'loss curve lengths');
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]) / Math.max(Math.abs(b[i]), 1e-6)));
}

export const gpuTests = [
  {
    name: 'Device GPU (WebGPU on SwiftShader): the notebook flow gives the CPU run\'s losses (1e-4) and says GPU in the results, record and saved model; Auto says which it chose and why',
    timeout: 900_000,
    async run(t) {
      await withWebGpuBrowser(async (browser) => {
        const context = await newContext(browser, t);
        const page = await openApp(context, t.base, '?hub=/hub');
        const device = byRole(page, 'combobox', 'Device');
        assertEq(await device.inputValue(), 'auto', 'Device default');
        assertEq((await device.locator('option').allTextContents()).join('|'), 'Auto|GPU (WebGPU)|CPU', 'Device choices');
        // Unpadded batches (about a dozen tokens a sentence, not 128): SwiftShader is WebGPU on the CPU.
        await configure(page, { model: 'local', frozen: false, top: 1, full: false, epochs: 1, padMax: false });

        await device.selectOption('cpu');
        const cpu = await trainAndWait(page);
        assert(!cpu.lastError, `CPU run: ${cpu.lastError && cpu.lastError.message}`);
        assertEq(cpu.runs[STRATEGY].start.device, 'cpu', 'start event device of the CPU run');
        const cpuLosses = cpu.runs[STRATEGY].losses;

        await device.selectOption('gpu');
        const t0 = Date.now();
        const gpu = await trainAndWait(page);
        t.log(`GPU run (SwiftShader, ${STRATEGY}, 1 epoch) took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        assert(!gpu.lastError, `GPU run: ${gpu.lastError && gpu.lastError.message}`);
        const run = gpu.runs[STRATEGY];
        assertEq(run.status, 'done', `GPU run status (${run.stopped ? run.stopped.reason : run.error})`);
        t.log(`device: ${run.start.device}`);
        assert(/^gpu: /.test(run.start.device), `start event device of the GPU run: ${run.start.device}`);
        t.log(`CPU losses: ${cpuLosses.map((l) => l.toFixed(6)).join(' ')}`);
        t.log(`GPU losses: ${run.losses.map((l) => l.toFixed(6)).join(' ')}`);
        assertEq(run.losses.length, 5, 'steps (10 sentences / batch 2)');
        const worst = largestRelative(run.losses, cpuLosses);
        t.log(`largest relative loss difference GPU vs CPU: ${worst.toExponential(2)}`);
        assert(worst <= 1e-4, `GPU losses differ from the CPU's by ${worst} relative (at most 1e-4)`);
        assertEq(run.done.train_accuracy, cpu.runs[STRATEGY].done.train_accuracy, 'training accuracy GPU vs CPU');

        const row = await resultsRow(page, STRATEGY);
        t.log(`results row: ${JSON.stringify(row)}`);
        assert(/^GPU/.test(row.Device), `Device column: ${row.Device}`);
        const record = await page.evaluate(() => window.__webtune.record());
        const start = record.events.find((e) => e.type === 'start');
        assertEq(start.device, run.start.device, 'the results record keeps the device');
        assertEq(record.events.find((e) => e.type === 'stopped'), undefined, 'no stopped event in a finished GPU run');

        // Save model: its metadata names the device.
        await byRole(page, 'button', 'Save model').click();
        await page.waitForFunction(() => /^Saved /.test(document.getElementById('saved-message').textContent), null, { timeout: 60_000 });
        const metas = await page.evaluate(async () => {
          const out = [];
          for (const name of await caches.keys()) {
            const cache = await caches.open(name);
            for (const req of await cache.keys()) if (req.url.endsWith('/meta.json')) out.push(await (await cache.match(req)).json());
          }
          return out;
        });
        assert(metas.some((m) => m.device === run.start.device), `saved model metadata: ${JSON.stringify(metas.map((m) => m.device))}`);

        // Auto: a short calibration on both picks one and says which and why.
        await device.selectOption('auto');
        const auto = await trainAndWait(page);
        assert(!auto.lastError, `Auto run: ${auto.lastError && auto.lastError.message}`);
        const verdict = await page.locator('#device-note').textContent();
        t.log(`Auto: ${verdict} → ${auto.runs[STRATEGY].start.device}`);
        assert(/^Auto chose the (GPU|CPU): /.test(verdict), `Auto's verdict: ${verdict}`);
        assertEq(auto.runs[STRATEGY].start.device === 'cpu', verdict.startsWith('Auto chose the CPU'), 'Auto trains where it said');
        assertEq(largestRelative(auto.runs[STRATEGY].losses, cpuLosses) <= 1e-4, true, 'Auto run losses');

        await context.close();
      });
    },
  },
  {
    name: 'Device GPU in a browser without a WebGPU adapter: trains on the CPU and says so once',
    timeout: 300_000,
    async run(t) {
      const context = await newContext(t.browser, t); // the suite's browser: no --enable-unsafe-webgpu
      const page = await openApp(context, t.base, '?hub=/hub');
      await configure(page, { model: 'local', frozen: true, top: false, full: false, epochs: 1 });
      await byRole(page, 'combobox', 'Device').selectOption('gpu');
      for (let i = 0; i < 2; i++) {
        const r = await trainAndWait(page);
        assert(!r.lastError, `run ${i + 1}: ${r.lastError && r.lastError.message}`);
        assertEq(r.runs.frozen.status, 'done', `run ${i + 1} status`);
        assertEq(r.runs.frozen.start.device, 'cpu', `run ${i + 1} device`);
      }
      const notes = await page.evaluate(() => window.__webtune.state.deviceNotes);
      t.log(`device notes: ${JSON.stringify(notes)}`);
      assertEq(notes.length, 1, 'the fallback is said once, not per run');
      assert(/GPU/.test(notes[0]) && /CPU/.test(notes[0]), `note: ${notes[0]}`);
      assertEq(await page.locator('#device-note').textContent(), notes[0], 'the note under Device');
      assertEq((await resultsRow(page, 'frozen')).Device, 'CPU', 'Device column');
      await context.close();
    },
  },
  {
    name: 'GPU lost mid-run (a real device.destroy()): the run stops with its reason, keeps epoch 1, the worker answers; then Stop in a GPU run',
    timeout: 900_000,
    async run(t) {
      await withWebGpuBrowser(async (browser) => {
        const context = await newContext(browser, t);
        const page = await openApp(context, t.base, '?hub=/hub');
        // Four of the notebook's sentences (two steps an epoch): SwiftShader is slow.
        await setTrainingData(page, `${NOTEBOOK_TSV.split('\n').slice(0, 5).join('\n')}\n`);
        await configure(page, { model: 'local', frozen: false, top: 1, full: false, epochs: 3, padMax: false });
        await byRole(page, 'combobox', 'Device').selectOption('gpu');
        const before = await page.evaluate(() => window.__webtune.state.trainsFinished);
        await byRole(page, 'button', 'Train').click();
        // After epoch 1 (steps 1–2), within epoch 2 (of 3): destroy the device for real.
        await page.waitForFunction((strategy) => {
          const r = window.__webtune.state.runs[strategy];
          return r && r.losses.filter((l) => l !== undefined).length >= 3;
        }, STRATEGY, { timeout: 600_000, polling: 50 });
        await page.evaluate((type) => window.__webtune.worker.postMessage({ type }), ToWorker.DESTROY_GPU_FOR_TESTS);
        await page.waitForFunction((n) => window.__webtune.state.trainsFinished > n && !window.__webtune.state.running, before, { timeout: 120_000, polling: 100 });
        const run = await page.evaluate((strategy) => window.__webtune.state.runs[strategy], STRATEGY);
        t.log(`stopped: ${JSON.stringify(run.stopped)}`);
        assertEq(run.status, 'stopped', 'run status');
        assert(run.stopped.reason && /GPU was lost/.test(run.stopped.reason), `reason: ${run.stopped.reason}`);
        assertEq(run.stopped.steps, 2, 'the run keeps the model of the last finished epoch (step 2)');
        const warning = await page.locator('#warning-box').textContent();
        assert(warning.includes(run.stopped.reason), `the reason is shown: ${warning}`);
        const row = await resultsRow(page, STRATEGY);
        assertEq(row.Status, 'stopped early', 'results status');
        assertEq(row.statusTitle, run.stopped.reason, 'the status cell\'s title gives the reason');
        // Nothing finished is lost and the worker answers: Try it classifies with the kept model.
        await byRole(page, 'textbox', 'Try a sentence').fill('I love this product!');
        await byRole(page, 'button', 'Classify').click();
        await page.waitForFunction(() => window.__webtune.state.predictions, null, { timeout: 60_000 });
        const preds = await page.evaluate(() => window.__webtune.state.predictions.results);
        assertEq(preds.length, 1, 'Try it answers from the stopped run');
        assert(!preds[0].error, `Try it: ${preds[0].error}`);
        t.log(`Try it after the loss: ${JSON.stringify(preds[0].prediction.probabilities)}`);

        // Stop during a GPU run (begin_stop, then the weights of the last finished step come back).
        const again = await page.evaluate(() => window.__webtune.state.trainsFinished);
        await byRole(page, 'button', 'Train').click();
        await page.waitForFunction((strategy) => {
          const r = window.__webtune.state.runs[strategy];
          return r && r.start && r.losses.filter((l) => l !== undefined).length >= 1;
        }, STRATEGY, { timeout: 600_000, polling: 50 });
        assert(/^gpu: /.test(await page.evaluate((strategy) => window.__webtune.state.runs[strategy].start.device, STRATEGY)), 'the second run trains on a new GPU device');
        await byRole(page, 'button', 'Stop').click();
        await page.waitForFunction((n) => window.__webtune.state.trainsFinished > n && !window.__webtune.state.running, again, { timeout: 300_000, polling: 100 });
        const stopped = await page.evaluate((strategy) => window.__webtune.state.runs[strategy], STRATEGY);
        t.log(`Stop: ${JSON.stringify(stopped.stopped)}`);
        assertEq(stopped.status, 'stopped', 'status after Stop');
        assertEq(stopped.stopped.reason ?? null, null, 'a Stop has no reason');
        assert(stopped.stopped.steps >= 1, `steps kept after Stop: ${stopped.stopped.steps}`);
        await context.close();
      });
    },
  },
];
