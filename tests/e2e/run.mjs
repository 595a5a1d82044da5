#!/usr/bin/env node
// webtune end-to-end runner: node tests/e2e/run.mjs http://127.0.0.1:PORT [--only SUBSTRING]...
//
// Drives /usr/bin/chromium with playwright-core against a running `webtune serve --test-faults`.
// Prints one line per test and, last, `N passed, N failed`; exits non-zero on any failure.
// Screenshot: target/e2e-notebook.png. Env: CHROMIUM (browser path), E2E_ONLY (like --only).
import { launchBrowser } from './helpers.mjs';
import { tests } from './tests.mjs';

const args = process.argv.slice(2);
const only = [];
let base = null;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--only') only.push(args[++i]);
  else if (args[i].startsWith('--only=')) only.push(args[i].slice(7));
  else if (!base) base = args[i];
}
if (process.env.E2E_ONLY) only.push(...process.env.E2E_ONLY.split(','));
base = (base || process.env.WEBTUNE_URL || '').replace(/\/+$/, '');
if (!/^https?:\/\//.test(base)) {
  console.error('usage: node tests/e2e/run.mjs http://127.0.0.1:PORT [--only SUBSTRING]');
  console.log('0 passed, 1 failed');
  process.exit(2);
}

const selected = tests.filter((t) => only.length === 0 || only.some((o) => t.name.includes(o)));
const allRequests = [];
const shared = {};
let passed = 0;
let failed = 0;

function withTimeout(promise, ms, name) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s: ${name}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

const browser = await launchBrowser();
console.log(`webtune e2e: ${selected.length} test(s) against ${base} with ${browser.version ? `Chromium ${browser.version()}` : 'chromium'}`);
const startAll = Date.now();
for (const test of selected) {
  const t = {
    name: test.name,
    base,
    browser,
    shared,
    console: [],
    dialogs: [],
    allowForeign: false,
    requests: [],
    lines: [],
    log(line) { this.lines.push(line); console.log(`    ${line.split('\n').join('\n    ')}`); },
    allRequests: () => allRequests,
  };
  // Tag each request as it is logged (tests may allow foreign hosts for a while).
  t.requests.push = function push(...items) {
    for (const r of items) {
      r.allowForeign = t.allowForeign;
      allRequests.push(r);
    }
    return Array.prototype.push.apply(this, items);
  };
  const start = Date.now();
  console.log(`• ${test.name}`);
  try {
    await withTimeout(test.run(t), test.timeout || 600_000, test.name);
    passed += 1;
    console.log(`  ok (${((Date.now() - start) / 1000).toFixed(1)} s)`);
  } catch (err) {
    failed += 1;
    console.log(`  FAILED (${((Date.now() - start) / 1000).toFixed(1)} s): ${err && err.stack ? err.stack : err}`);
    const tail = t.console.slice(-30);
    if (tail.length) console.log(`  browser console (last ${tail.length}):\n    ${tail.join('\n    ')}`);
  }
  for (const context of browser.contexts()) await context.close().catch(() => {});
}
await browser.close();
console.log(`e2e total ${((Date.now() - startAll) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
