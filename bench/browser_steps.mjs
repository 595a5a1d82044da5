#!/usr/bin/env node
// `webtune bench` in the browser next to the native one, with the forward / backward /
// optimizer split of each, and the ratio browser ÷ native per case and thread count (with
// --gemm: the encoder's forward matrix products instead, ms and GFLOPS, as `webtune bench --gemm`):
//
//   node bench/browser_steps.mjs http://127.0.0.1:PORT [--model all-MiniLM-L6-v2] [--seq 32]
//        [--batch 16] [--strategy full,lora:8] [--rounds 5] [--threads 1,2] [--no-native] [--gemm]
//        [--simd relaxed|simd128]   (which module of the package; default: the app's choice)
//        [--device cpu|gpu]         (gpu: the page's steps on WebGPU, Chromium with
//                                    --enable-unsafe-webgpu; the native column stays the CPU)
//   ./build.sh bench-steps [same options]     # builds, serves the repository root, runs this
//
// The page (bench/steps/) runs in headless /usr/bin/chromium (playwright-core) against
// `webtune serve --root . --models models`; the model comes from its hub mirror (models/NAME;
// models/bert-base-random is written with `webtune random-checkpoint` when missing).
// Native: `target/release/webtune bench --json` on models/NAME with the same cases, run after
// each browser job so that both see similar machine load. In the browser the cases of one job
// alternate step by step (so a strategy ratio such as lora:8 ÷ full is taken side by side). Output: a table, then the JSON
// (also written to target/bench-steps.json).
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { launchBrowser } from '../tests/e2e/helpers.mjs';

function parseArgs(argv) {
  const opts = { model: 'all-MiniLM-L6-v2', seq: [32], batch: [16], strategy: ['full'], rounds: 5, threads: [1], native: true, device: 'cpu' };
  const list = (v) => v.split(',').filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => { if (i + 1 >= argv.length) throw new Error(`${a} needs a value`); return argv[++i]; };
    if (a === '--model') opts.model = value();
    else if (a === '--seq') opts.seq = list(value()).map(Number);
    else if (a === '--batch') opts.batch = list(value()).map(Number);
    else if (a === '--strategy') opts.strategy = list(value());
    else if (a === '--rounds') opts.rounds = Number(value());
    else if (a === '--threads') opts.threads = list(value()).map(Number);
    else if (a === '--no-native') opts.native = false;
    else if (a === '--gemm') opts.gemm = true;
    else if (a === '--simd') opts.simd = value();
    else if (a === '--device') opts.device = value();
    else if (!opts.base && /^https?:\/\//.test(a)) opts.base = a.replace(/\/+$/, '');
    else throw new Error(`unknown argument ${a}`);
  }
  if (!opts.base) throw new Error('usage: node bench/browser_steps.mjs http://127.0.0.1:PORT [options]');
  if (opts.simd && !['relaxed', 'simd128'].includes(opts.simd)) throw new Error(`--simd: relaxed or simd128, not ${opts.simd}`);
  if (!['cpu', 'gpu'].includes(opts.device)) throw new Error(`--device: cpu or gpu, not ${opts.device}`);
  if (opts.device === 'gpu' && opts.gemm) throw new Error('--gemm times the CPU kernels: leave out --device gpu (webtune bench --device gpu times the WGSL kernels natively)');
  for (const n of [...opts.seq, ...opts.batch, ...opts.threads, opts.rounds]) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`not a positive whole number: ${n}`);
  }
  return opts;
}

function nativeTimings(opts, threads) {
  const out = execFileSync('target/release/webtune', ['bench', '--json', '--model', `models/${opts.model}`, '--seq', opts.seq.join(','), '--batch', opts.batch.join(','),
    '--strategy', opts.strategy.join(','), '--rounds', String(opts.rounds), '--threads', String(threads), '--device', 'cpu', ...(opts.gemm ? ['--gemm'] : [])], { encoding: 'utf8', maxBuffer: 1 << 24 });
  return out.trim().split('\n').map((line) => JSON.parse(line));
}

const opts = parseArgs(process.argv.slice(2));
if (!existsSync(`models/${opts.model}/model.safetensors`)) {
  if (opts.model !== 'bert-base-random') throw new Error(`models/${opts.model} has no model.safetensors (run from the repository root; ./build.sh model fetches all-MiniLM-L6-v2)`);
  console.log('writing the random bert-base checkpoint models/bert-base-random …');
  execFileSync('target/release/webtune', ['random-checkpoint'], { stdio: ['ignore', 'inherit', 'inherit'] });
}
const cases = opts.strategy.flatMap((strategy) => opts.batch.flatMap((batch) => opts.seq.map((seq) => ({ strategy, batch, seq }))));
const browser = await launchBrowser({ webgpu: opts.device === 'gpu' });
const chromium = browser.version();
console.log(`step benchmark: ${opts.model}, ${cases.length} case(s), ${opts.rounds} rounds, threads ${opts.threads.join(',')}, the page's encoder on the ${opts.device.toUpperCase()}; Chromium ${chromium}`);
const rows = [];
try {
  for (const threads of opts.threads) {
    const page = await browser.newPage();
    await page.goto(`${opts.base}/bench/steps/`);
    const outcome = await page.evaluate((job) => window.__benchSteps(job), { model: opts.model, threads, cases, rounds: opts.rounds, gemm: !!opts.gemm, simd: opts.simd, device: opts.device });
    console.log((await page.locator('#log').textContent()).trim());
    await page.close();
    if (outcome.type !== 'result') throw new Error(`browser, ${threads} thread(s): ${outcome.message}`);
    const native = opts.native ? nativeTimings(opts, threads) : [];
    for (const b of outcome.results) {
      if (opts.gemm) {
        const n = native.find((t) => t.product === b.product && t.batch === b.batch && t.seq_len === b.seq_len) ?? null;
        rows.push({ model: opts.model, product: b.product, m: b.m, n: b.n, k: b.k, threads, browser: b, native: n, browser_over_native: n ? b.ms / n.ms : null });
        continue;
      }
      const n = native.find((t) => t.strategy === b.strategy && t.batch === b.batch && t.seq_len === b.seq_len) ?? null;
      rows.push({ model: opts.model, strategy: b.strategy, batch: b.batch, seq_len: b.seq_len, threads, browser: b, native: n, browser_over_native: n ? b.step_ms / n.step_ms : null });
    }
  }
} finally {
  await browser.close();
}

// Strategies side by side: each case against the first strategy at the same batch × seq and
// thread count, as the ratio of the medians and as the median of the step-by-step ratios (the
// cases alternate step by step, so step i of each saw the same machine load).
const WARM_UP = 3;
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
if (!opts.gemm) {
  for (const r of rows) {
    const first = rows.find((o) => o.threads === r.threads && o.batch === r.batch && o.seq_len === r.seq_len);
    if (first === r) continue;
    const [mine, theirs] = [r.browser.step_ms_each.slice(WARM_UP), first.browser.step_ms_each.slice(WARM_UP)];
    r.browser_vs_first = {
      strategy: first.strategy,
      ratio_of_medians: r.browser.step_ms / first.browser.step_ms,
      median_of_step_ratios: mine.length && theirs.length ? median(mine.map((ms, i) => ms / theirs[i])) : null,
      native_ratio_of_medians: r.native && first.native ? r.native.step_ms / first.native.step_ms : null,
    };
  }
}
const f = (x) => (x == null ? '—' : x.toFixed(1));
const g = (t) => (t ? `${t.ms.toFixed(2)} ms, ${t.gflops.toFixed(1)} GFLOPS` : '—');
if (opts.gemm) {
  console.log('\nmedian of one forward product (kernels::gemm)');
  console.log(['product', 'm × n × k', 'threads', 'browser', 'native', 'browser÷native'].join(' | '));
  for (const r of rows) console.log([r.product, `${r.m} × ${r.n} × ${r.k}`, r.threads, g(r.browser), g(r.native), r.browser_over_native?.toFixed(2) ?? '—'].join(' | '));
  // What a full step's linear products take at these rates (per_full_step: see bench::GemmTiming).
  const floor = (list) => (list.every(Boolean) ? list.reduce((ms, t) => ms + t.per_full_step * t.ms, 0) : null);
  for (const key of [...new Set(rows.map((r) => `${r.m}|${r.threads}`))]) {
    const group = rows.filter((r) => `${r.m}|${r.threads}` === key);
    const [b, n] = [floor(group.map((r) => r.browser)), floor(group.map((r) => r.native))];
    console.log(`${group[0].m} rows, ${group[0].threads} thread(s): a full step's linear products take ${f(b)} ms in the browser, ${f(n)} ms natively at these rates`);
  }
}
const parts = (t) => (t ? `${f(t.step_ms)} (${f(t.forward_ms)} / ${f(t.backward_ms)} / ${f(t.optimizer_ms)})` : '—');
if (!opts.gemm) console.log('\nmedian ms per step (forward / backward / optimizer)');
if (!opts.gemm) console.log(['strategy', 'batch×seq', 'threads', `browser (${opts.device})`, 'native (cpu)', 'browser÷native'].join(' | '));
for (const r of opts.gemm ? [] : rows) {
  console.log([r.strategy, `${r.batch}×${r.seq_len}`, r.threads, parts(r.browser), parts(r.native), r.browser_over_native?.toFixed(2) ?? '—'].join(' | '));
}
for (const r of rows.filter((o) => o.browser_vs_first)) {
  const v = r.browser_vs_first;
  console.log(`${r.strategy} ÷ ${v.strategy} (${r.batch}×${r.seq_len}, ${r.threads} thread(s)): browser ${v.ratio_of_medians.toFixed(2)} (median of step ratios ${v.median_of_step_ratios?.toFixed(2) ?? '—'}), native ${v.native_ratio_of_medians?.toFixed(2) ?? '—'}`);
}
const json = JSON.stringify({ model: opts.model, rounds: opts.rounds, gemm: !!opts.gemm, simd: opts.simd || 'auto', device: opts.device, chromium, rows }, null, 2);
writeFileSync('target/bench-steps.json', json);
console.log(json);
