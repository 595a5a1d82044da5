#!/usr/bin/env node
// A Banking77 `full` epoch in the page (issue 12), next to bench/banking.py's CLI and PyTorch
// figures. Not a test:
//
//   node bench/banking_page.mjs http://127.0.0.1:PORT [--threads N] [--timeout-min 120]
//   ./build.sh bench-banking-page [--threads N]      # builds, serves www/, runs this
//
// Against `webtune serve --root www --models models`, in headless /usr/bin/chromium
// (playwright-core): the app with all-MiniLM-L6-v2 from the local hub mirror,
// ../shared/data/banking/train.tsv loaded as the training data file and test.tsv as the
// separate validation data file, `full` only, 1 epoch, lr 5e-5, head lr 1e-3, batch 16, max length
// 128 (batches padded to their longest sentence), seed 0, training-accuracy sample 1000, Threads
// N (default: the page's default, every core). That is banking.py's `full` recipe except its
// linear schedule with 10 % warm-up, which the page's form does not offer (the page trains at a
// constant rate): the time per step is the same, the accuracy may differ a little.
// Reported: training time (the last Step event's elapsed_ms), evaluation time (Done − last
// Step: the test set and the training sample), test accuracy, threads, peak wasm memory, the
// mean ms per step in each tenth of the run (from the last Step event, read every 20 s) — and
// the wall time from the Train click, which includes loading the model. Output: lines, then the
// JSON (also written to target/bench-banking-page.json).
import { existsSync, writeFileSync } from 'node:fs';
import { configure, launchBrowser, openApp, trainAndWait } from '../tests/e2e/helpers.mjs';

/** Mean ms per step in each tenth of the run's steps, from (step, elapsed ms) samples. */
function byTenth(samples, steps) {
  return Array.from({ length: 10 }, (_, i) => {
    const inside = samples.filter(([step]) => step > (i * steps) / 10 && step <= ((i + 1) * steps) / 10);
    if (inside.length < 2) return null;
    const [[s0, t0], [s1, t1]] = [inside[0], inside[inside.length - 1]];
    return s1 > s0 ? (t1 - t0) / (s1 - s0) : null;
  });
}

const opts = { threads: null, timeoutMin: 120, train: '../shared/data/banking/train.tsv', test: '../shared/data/banking/test.tsv' };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const value = () => { if (i + 1 >= args.length) throw new Error(`${a} needs a value`); return args[++i]; };
  if (a === '--threads') opts.threads = Number(value());
  else if (a === '--timeout-min') opts.timeoutMin = Number(value());
  else if (a === '--train') opts.train = value();
  else if (a === '--test') opts.test = value();
  else if (!opts.base && /^https?:\/\//.test(a)) opts.base = a.replace(/\/+$/, '');
  else throw new Error(`unknown argument ${a}`);
}
if (!opts.base) throw new Error('usage: node bench/banking_page.mjs http://127.0.0.1:PORT [--threads N]');

for (const file of [opts.train, opts.test]) {
  if (!existsSync(file)) throw new Error(`${file} does not exist (the shared data sets are expected in ../shared/data; --train/--test choose others)`);
}
const browser = await launchBrowser();
const chromium = browser.version();
let result;
try {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const page = await openApp(context, opts.base, `?hub=/hub${opts.threads ? `&threads=${opts.threads}` : ''}`);
  await configure(page, { model: 'local', frozen: false, top: false, full: true, epochs: 1, lr: '5e-5', headLr: '1e-3', batch: 16, maxLen: 128, padMax: false, seed: 0, evalSample: 1000 });
  if (opts.threads) await configure(page, { threads: opts.threads });
  // As a user brings 9,003 sentences: as files (pasting 0.7 MB into the textarea through
  // Playwright takes longer than its 30 s limit).
  await page.locator('#train-file').setInputFiles(opts.train);
  await page.waitForFunction(() => !window.__webtune.state.parsePending, null, { timeout: 60_000 });
  await page.locator('input[name="val-mode"][value="text"]').check();
  await page.locator('#val-file').setInputFiles(opts.test);
  await page.waitForFunction(() => !window.__webtune.state.parsePending, null, { timeout: 60_000 });
  console.log(`Banking77 in the page: ${opts.train} and ${opts.test}; Chromium ${chromium}; training …`);
  const clickAt = Date.now();
  // The last Step event every 20 s, to see whether steps slow down along the run.
  const progress = [];
  const poll = setInterval(() => {
    page.evaluate(() => window.__webtune.state.runs.full?.lastStep).then((s) => s && progress.push([s.step, s.elapsed_ms]), () => {});
  }, 20_000);
  const state = await trainAndWait(page, opts.timeoutMin * 60_000).finally(() => clearInterval(poll));
  const wallMs = Date.now() - clickAt;
  const run = state.runs.full;
  if (!run?.done) throw new Error(`the run did not finish: status ${run?.status}, error ${run?.error ?? state.lastError}`);
  const trainMs = run.lastStep.elapsed_ms;
  result = {
    chromium, threads: run.start.threads, steps: run.done.steps,
    train_s: trainMs / 1000, eval_s: (run.done.elapsed_ms - trainMs) / 1000, total_s: run.done.elapsed_ms / 1000, wall_from_click_s: wallMs / 1000,
    test_accuracy: run.done.val_accuracy, train_accuracy: run.done.train_accuracy, peak_bytes: run.done.peak_bytes,
    ms_per_step_by_tenth: byTenth(progress, run.done.steps),
  };
  await context.close();
} finally {
  await browser.close();
}
console.log(`ms per step, by tenth of the run: ${result.ms_per_step_by_tenth.map((ms) => (ms == null ? '—' : ms.toFixed(0))).join(' ')}`);
console.log(`page, ${result.threads} thread(s): ${result.steps} steps, train ${result.train_s.toFixed(0)} s + evaluation ${result.eval_s.toFixed(0)} s = ${result.total_s.toFixed(0)} s (wall from the click ${result.wall_from_click_s.toFixed(0)} s); test accuracy ${(100 * result.test_accuracy).toFixed(2)} %`);
writeFileSync('target/bench-banking-page.json', JSON.stringify(result, null, 2));
console.log(JSON.stringify(result, null, 2));
