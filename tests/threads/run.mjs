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
// Each package runs twice, on its plain simd128 module and on its relaxed-SIMD one (fused
// multiply-add): all four give the same losses within 1e-5. The relaxed-SIMD probe the app's
// worker uses (www/js/wasm-features.js) must agree with the engine: true in Chromium, and in
// Node exactly when Node validates the relaxed module.
// Prints one line per check and, last, `N passed, N failed`; exits non-zero on any failure.
import { readFileSync } from 'node:fs';
import { launchBrowser } from '../e2e/helpers.mjs';
import { hasRelaxedSimd, WASM_MODULE_FILES } from '../../www/js/wasm-features.js';

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
async function runPage(pkg, simd) {
  const consoleLines = [];
  const page = await browser.newPage();
  page.on('console', (msg) => consoleLines.push(`[${msg.type()}] ${msg.text()}`));
  page.on('pageerror', (err) => consoleLines.push(`[pageerror] ${err.message}`));
  const workers = [];
  page.on('worker', (w) => workers.push(w.url().replace(base, '')));
  const start = Date.now();
  try {
    await page.goto(`${base}/tests/threads/?pkg=${pkg}&simd=${simd}&steps=${STEPS}`);
    const outcome = await Promise.race([
      page.evaluate(() => window.__threadsCheck),
      new Promise((resolve) => setTimeout(() => resolve({ type: 'error', message: `no result within ${TIMEOUT_MS / 1000} s (a hang in initThreadPool?)` }), TIMEOUT_MS)),
    ]);
    console.log(`${pkg}, ${simd} (${((Date.now() - start) / 1000).toFixed(1)} s): workers seen by the page: ${workers.length} (${workers.join(', ')})`);
    console.log(`  ${(await page.locator('#log').textContent()).trim().split('\n').join('\n  ')}`);
    if (outcome.type !== 'result' && consoleLines.length) console.log(`  console:\n    ${consoleLines.join('\n    ')}`);
    return outcome;
  } finally {
    await page.close();
  }
}

// Node's answer first (no browser needed): the probe agrees with validating the real module.
for (const pkg of ['pkg', 'pkg-threads']) {
  const bytes = (simd) => readFileSync(new URL(`../../www/${pkg}/${WASM_MODULE_FILES[simd]}`, import.meta.url));
  const [plain, relaxed] = [bytes('simd128'), bytes('relaxed')];
  check(!plain.equals(relaxed), `www/${pkg}: the relaxed-SIMD module is its own build`);
  check(WebAssembly.validate(plain), `www/${pkg}: Node ${process.version} validates the plain module`);
  const nodeRelaxed = WebAssembly.validate(relaxed);
  check(hasRelaxedSimd() === nodeRelaxed, `www/${pkg}: the relaxed-SIMD probe agrees with Node validating the relaxed module`, `both ${nodeRelaxed}`);
}

let threaded;
let single;
let others;
try {
  threaded = await runPage('pkg-threads', 'relaxed');
  single = await runPage('pkg', 'simd128');
  others = [await runPage('pkg-threads', 'simd128'), await runPage('pkg', 'relaxed')];
} finally {
  await browser.close();
}

if (threaded.type !== 'result') {
  check(false, 'the worker trained with the threaded relaxed-SIMD module', threaded.message);
} else {
  const r = threaded.result;
  check(threaded.pageIsolated === true, 'page is cross-origin isolated (COOP/COEP)');
  check(r.workerIsolated === true, 'worker is cross-origin isolated');
  check(r.sharedMemory === true, 'the wasm memory is a SharedArrayBuffer (a threaded build)');
  check(r.threads === r.requestedThreads, 'the start event reports the pool size', `threads ${r.threads}, initThreadPool(${r.requestedThreads}), hardwareConcurrency ${r.hardwareConcurrency}`);
  check(r.threads > 1, 'rayon has more than one thread', `${r.threads}`);
  check(r.losses.length === STEPS && r.losses.every(Number.isFinite), `${STEPS} training steps with finite losses`, `${r.losses.map((l) => l.toFixed(6)).join(' ')}; step ms ${r.stepMs.join(' ')}`);
  check(r.stoppedEvent === 'stopped', 'the run stops cleanly');
  check(r.relaxedProbe === true, 'Chromium has relaxed SIMD (the probe says so, and the relaxed module ran)');
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
  for (const other of others) {
    if (other.type !== 'result') {
      check(false, 'the worker trained with the other module', other.message);
      continue;
    }
    const o = other.result;
    const worst = Math.max(...o.losses.map((x, i) => Math.abs(x - r.losses[i]) / Math.max(Math.abs(r.losses[i]), 1e-12)));
    check(o.losses.length === r.losses.length && worst <= 1e-5, `${o.pkg} on its ${o.simd} module: the same losses (relative difference ≤ 1e-5)`, `threads ${o.threads}; worst ${worst.toExponential(2)}; step ms ${o.stepMs.join(' ')}`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
