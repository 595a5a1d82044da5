#!/usr/bin/env node
// The threaded-build check: node tests/threads/run.mjs http://127.0.0.1:PORT
//
// Needs `webtune serve --root . --models models` (the repository root, so both
// /tests/threads/ and /www/pkg-threads/ are served, with COOP/COEP; the model from the local
// hub mirror) and a built www/pkg-threads (./build.sh wasm). Opens /tests/threads/ in headless
// /usr/bin/chromium (playwright-core): its worker loads the threaded module, starts rayon's pool
// on navigator.hardwareConcurrency (at least 2) threads and trains MiniLM for a few steps.
// Checks: page and worker cross-origin isolated, the wasm memory a SharedArrayBuffer, the run's
// `start` event reports the pool's thread count (> 1), the steps give finite losses; then the
// same steps on the single-threaded www/pkg (1 thread) give the same losses (≤ 1e-5 relative).
// Prints one line per check and, last, `N passed, N failed`; exits non-zero on any failure.
import { launchBrowser } from '../e2e/helpers.mjs';

const TIMEOUT_MS = 5 * 60 * 1000;
const STEPS = 4;

const base = (process.argv[2] || process.env.WEBTUNE_URL || '').replace(/\/+$/, '');
if (!/^https?:\/\//.test(base)) {
  console.error('usage: node tests/threads/run.mjs http://127.0.0.1:PORT');
  console.log('0 passed, 1 failed');
  process.exit(2);
}

let passed = 0;
let failed = 0;
function check(ok, what, detail = '') {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'}  ${what}${detail ? ` — ${detail}` : ''}`);
}

const browser = await launchBrowser();
console.log(`webtune threads check against ${base} with Chromium ${browser.version()}`);

// One fresh page per package: its worker loads `pkg`, trains STEPS steps and reports.
async function runPage(pkg) {
  const consoleLines = [];
  const page = await browser.newPage();
  page.on('console', (msg) => consoleLines.push(`[${msg.type()}] ${msg.text()}`));
  page.on('pageerror', (err) => consoleLines.push(`[pageerror] ${err.message}`));
  const workers = [];
  page.on('worker', (w) => workers.push(w.url().replace(base, '')));
  const start = Date.now();
  try {
    await page.goto(`${base}/tests/threads/?pkg=${pkg}&steps=${STEPS}`);
    const outcome = await Promise.race([
      page.evaluate(() => window.__threadsCheck),
      new Promise((resolve) => setTimeout(() => resolve({ type: 'error', message: `no result within ${TIMEOUT_MS / 1000} s (a hang in initThreadPool?)` }), TIMEOUT_MS)),
    ]);
    console.log(`${pkg} (${((Date.now() - start) / 1000).toFixed(1)} s): workers seen by the page: ${workers.length} (${workers.join(', ')})`);
    console.log(`  ${(await page.locator('#log').textContent()).trim().split('\n').join('\n  ')}`);
    if (outcome.type !== 'result' && consoleLines.length) console.log(`  console:\n    ${consoleLines.join('\n    ')}`);
    return outcome;
  } finally {
    await page.close();
  }
}

let threaded;
let single;
try {
  threaded = await runPage('pkg-threads');
  single = await runPage('pkg');
} finally {
  await browser.close();
}

if (threaded.type !== 'result') {
  check(false, 'the worker trained with the threaded module', threaded.message);
} else {
  const r = threaded.result;
  check(threaded.pageIsolated === true, 'page is cross-origin isolated (COOP/COEP)');
  check(r.workerIsolated === true, 'worker is cross-origin isolated');
  check(r.sharedMemory === true, 'the wasm memory is a SharedArrayBuffer (a threaded build)');
  check(r.threads === r.requestedThreads, 'the start event reports the pool size', `threads ${r.threads}, initThreadPool(${r.requestedThreads}), hardwareConcurrency ${r.hardwareConcurrency}`);
  check(r.threads > 1, 'rayon has more than one thread', `${r.threads}`);
  check(r.losses.length === STEPS && r.losses.every(Number.isFinite), `${STEPS} training steps with finite losses`, `${r.losses.map((l) => l.toFixed(6)).join(' ')}; step ms ${r.stepMs.join(' ')}`);
  check(r.stoppedEvent === 'stopped', 'the run stops cleanly');
}
if (single.type !== 'result') {
  check(false, 'the worker trained with the single-threaded module', single.message);
} else {
  const r = single.result;
  check(r.sharedMemory === false && r.hasInitThreadPool === false && r.threads === 1, 'the single-threaded build: unshared memory, no initThreadPool, 1 thread', `threads ${r.threads}; step ms ${r.stepMs.join(' ')}`);
  if (threaded.type === 'result') {
    const a = threaded.result.losses;
    const b = r.losses;
    const worst = Math.max(...a.map((x, i) => Math.abs(x - b[i]) / Math.max(Math.abs(b[i]), 1e-12)));
    check(a.length === b.length && worst <= 1e-5, 'same losses on both builds (relative difference ≤ 1e-5)', `worst ${worst.toExponential(2)}`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
