#!/usr/bin/env node
// webtune browser benchmark (not a test): node tests/e2e/bench.mjs http://127.0.0.1:PORT [options]
//
// Against a running `target/release/webtune serve --root www --models models` (build first with
// ./build.sh build), in headless Chromium (playwright-core, /usr/bin/chromium):
//
//   notebook  the page's notebook flow: local all-MiniLM-L6-v2 through the hub mirror (?hub=/hub),
//             the prefilled notebook sentences, frozen + full, 4 epochs, defaults (batch 2,
//             lr 2e-5, seed 0). Reports the median `full` step time (deltas of the Step events'
//             elapsed_ms within an epoch: a delta across an epoch boundary also holds the
//             epoch's evaluation and is left out), the first step, the wall time from the Train
//             click to both Done events (with the model download + load into wasm), and peak
//             WebAssembly memory (the worker sends memory.buffer.byteLength with every message).
//   native    the same run natively: target/release/webtune train --model models/all-MiniLM-L6-v2
//             --data data/notebook.tsv --strategy full --json (same data, seed, batches), median
//             step time the same way, with the default thread count and with RAYON_NUM_THREADS=1
//             (wasm is single-threaded); reports the browser/native ratios.
//   notebook and native run --runs times (3), interleaved (browser, native, native 1-thread, …)
//   so that load from elsewhere hits both alike; step medians pool every run's steps.
//   base      a random bert-base-uncased-shaped checkpoint (models/bert-base-random, written with
//             `webtune random-checkpoint` when missing; 440 MB) loaded in the page through the hub
//             mirror (?hub=/hub&repo=bert-base-random), `full` for 1 epoch on 4 sentences with
//             batch 2 = 2 steps. Reports both steps' times and peak wasm memory (must stay under
//             4 GiB; target ≤ 2 GiB). On failure: the message, the phase and the last memory size.
//             --base-sentences N: N sentences (N/2 steps); --base-max-len L: every batch padded
//             to L tokens (the page's "Pad to max length" with Max length L).
//             --base-strategy S,T,…: train these strategies instead of `full` (full, frozen,
//             top:K, lora:R — LoRA chosen in the form: the "LoRA" checkbox and its "Rank", other
//             LoRA options at their defaults: alpha 8, dropout 0, query + value, LoRA lr 5e-4),
//             each as its own Train in a fresh browser context (fresh worker, so every strategy's
//             peak wasm memory is its own, model load included). Reports per strategy the median
//             step after the first, peak wasm memory, wasm memory at the `start` event and the
//             `done` event's peak_bytes, and the ratios S ÷ full of step time and peak memory
//             (`base_strategies` in the JSON; `base` holds the first strategy's run).
//
// Threads (issue 7): --threads 1,2 runs each browser part once per thread count (the page's
// Threads control; default: not set, i.e. every core on an isolated page) and reports the step
// time ratio 1 thread ÷ N threads; the JSON's `threads` section has every count's numbers (the
// legacy `notebook`/`base` sections hold the first count). The whole comparison in one command:
//   ./build.sh bench-threads   (= bench-browser --only notebook,base --threads 1,2
//                                 --base-sentences 8 --base-max-len 128)
// i.e. MiniLM at the notebook's lengths and bert-base-shaped, full, batch 2, 128 tokens.
// LoRA vs full in the page (issue 10), bert-base-shaped, batch 2, 128 tokens, one thread:
//   ./build.sh bench-lora      (= bench-browser --only base --base-strategy full,lora:8
//                                 --base-sentences 8 --base-max-len 128 --threads 1)
// With --threads and --base-strategy together, every thread count trains every strategy.
//
// Every browser part uses a fresh browser context (fresh worker, empty Cache API), so the model
// is fetched from the mirror each time. Also reported: peak RSS of the Chromium renderer
// process (the worker lives in it) and of the native process.
//
// Output: progress lines, a readable table, then the JSON (also written to --out, default
// target/bench-browser.json). Exit status 1 when a part failed (e.g. out of memory), else 0.
//
// Options: --only notebook,native,base   --runs N (3)   --base-sentences N (4)
//          --base-max-len L (none: batches padded to their longest sentence)   --threads N,M,…
//          --base-strategy S,T,… (full)   --base-batch B (2)
//          --base-model NAME (bert-base-random; any model folder `webtune serve` mirrors, e.g.
//          all-MiniLM-L6-v2 — issue 12's batch-16 cases: --base-model all-MiniLM-L6-v2
//          --base-batch 16 --base-max-len 32 --base-sentences 64)
//          --webtune PATH (target/release/webtune)   --out FILE   --timeout-min N (30 per part)
import fs from 'node:fs';
import path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { byRole, configure, launchBrowser, NOTEBOOK_TSV, openApp, setTrainingData, waitTrainEnabled } from './helpers.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

// ---------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------
const argv = process.argv.slice(2);
const opts = {
  base: null,
  only: ['notebook', 'native', 'base'],
  runs: 3,
  baseSentences: 4,
  baseMaxLen: null,
  baseStrategies: ['full'],
  baseStrategiesGiven: false,
  baseModel: 'bert-base-random',
  baseBatch: 2,
  threads: null,
  webtune: path.join(ROOT, 'target/release/webtune'),
  out: path.join(ROOT, 'target/bench-browser.json'),
  timeoutMin: 30,
};
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const val = () => {
    if (a.includes('=')) return a.slice(a.indexOf('=') + 1);
    return argv[++i];
  };
  if (a.startsWith('--only')) opts.only = val().split(',').map((s) => s.trim()).filter(Boolean);
  else if (a.startsWith('--runs')) opts.runs = Number(val());
  else if (a.startsWith('--base-sentences')) opts.baseSentences = Number(val());
  else if (a.startsWith('--base-max-len')) opts.baseMaxLen = Number(val());
  else if (a.startsWith('--base-model')) opts.baseModel = val();
  else if (a.startsWith('--base-batch')) opts.baseBatch = Number(val());
  else if (a.startsWith('--base-strategy')) {
    opts.baseStrategies = val().split(',').map((x) => x.trim()).filter(Boolean);
    opts.baseStrategiesGiven = true;
  }
  else if (a.startsWith('--threads')) opts.threads = val().split(',').map((x) => Number(x.trim()));
  else if (a.startsWith('--webtune')) opts.webtune = path.resolve(val());
  else if (a.startsWith('--out')) opts.out = path.resolve(val());
  else if (a.startsWith('--timeout-min')) opts.timeoutMin = Number(val());
  else if (a === '-h' || a === '--help') {
    console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n'));
    process.exit(0);
  } else if (!opts.base) opts.base = a;
  else {
    console.error(`unknown argument ${a}`);
    process.exit(2);
  }
}
opts.base = (opts.base || process.env.WEBTUNE_URL || '').replace(/\/+$/, '');
if (!/^https?:\/\//.test(opts.base)) {
  console.error('usage: node tests/e2e/bench.mjs http://127.0.0.1:PORT [--only notebook,native,base] [--runs N] [--out FILE]');
  process.exit(2);
}
const TIMEOUT = opts.timeoutMin * 60_000;
if (opts.threads && !opts.threads.every((n) => Number.isInteger(n) && n >= 1)) {
  console.error(`--threads wants whole numbers ≥ 1, e.g. --threads 1,2 (got ${opts.threads.join(',')})`);
  process.exit(2);
}
{
  const bad = opts.baseStrategies.filter((st) => parseStrategy(st) === null);
  if (!opts.baseStrategies.length || bad.length || new Set(opts.baseStrategies).size !== opts.baseStrategies.length) {
    console.error(`--base-strategy wants distinct strategies out of full, frozen, top:K, lora:R (K, R whole numbers ≥ 1), e.g. --base-strategy full,lora:8 (got ${opts.baseStrategies.join(',') || 'nothing'}${bad.length ? `; not a strategy: ${bad.join(', ')}` : ''})`);
    process.exit(2);
  }
}
if (!(Number.isInteger(opts.baseBatch) && opts.baseBatch >= 1)) {
  console.error(`--base-batch wants a whole number ≥ 1 (got ${opts.baseBatch})`);
  process.exit(2);
}
if (opts.baseMaxLen !== null && !(Number.isInteger(opts.baseMaxLen) && opts.baseMaxLen >= 2)) {
  console.error('--base-max-len wants a whole number ≥ 2');
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------
/// A strategy name as the core spells it (full, frozen, top:K, lora:R) → {kind, n}; null if not one.
function parseStrategy(name) {
  if (name === 'full' || name === 'frozen') return { kind: name, n: null };
  const m = /^(top|lora):([1-9][0-9]*)$/.exec(name);
  if (!m || Number(m[2]) < 1) return null;
  return { kind: m[1], n: Number(m[2]) };
}
const log = (line) => console.log(line);
const median = (xs) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x, d = 1) => (x === null || x === undefined || Number.isNaN(x) ? null : Math.round(x * 10 ** d) / 10 ** d);
const fmtMs = (x) => (x === null || x === undefined ? '—' : `${x.toFixed(1)} ms`);
const fmtS = (ms) => (ms === null || ms === undefined ? '—' : `${(ms / 1000).toFixed(1)} s`);
const fmtMiB = (b) => (b === null || b === undefined ? '—' : `${(b / MIB).toFixed(0)} MiB`);

/// Step times from Step events [{epoch, step, elapsed_ms}] (elapsed since the run started).
function stepStats(steps) {
  const sorted = [...steps].sort((a, b) => a.step - b.step);
  const within = [];
  const all = [];
  for (let i = 1; i < sorted.length; i++) {
    const d = sorted[i].elapsed_ms - sorted[i - 1].elapsed_ms;
    all.push(d);
    if (sorted[i].epoch === sorted[i - 1].epoch) within.push(d);
  }
  return {
    steps: sorted.length,
    first_step_ms: sorted.length ? round(sorted[0].elapsed_ms) : null,
    median_step_ms: round(median(within)),
    min_step_ms: within.length ? round(Math.min(...within)) : null,
    max_step_ms: within.length ? round(Math.max(...within)) : null,
    deltas_within_epochs: within.length,
    median_all_deltas_ms: round(median(all)),
    step_deltas_ms: all.map((d) => round(d)),
    within_epoch_deltas_ms: within.map((d) => round(d)),
  };
}

// Peak RSS of the Chromium processes we launched (descendants of this node process), from
// /proc/PID/status VmHWM, sampled until the process goes away.
class ProcessWatch {
  constructor() {
    this.peak = new Map(); // pid → {type, hwmKiB}
    this.timer = setInterval(() => this.sample(), 500);
  }
  sample() {
    let pids;
    try {
      pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
    } catch {
      return;
    }
    const parent = new Map();
    for (const pid of pids) {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        parent.set(pid, stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      } catch { /* gone */ }
    }
    const me = String(process.pid);
    for (const pid of parent.keys()) {
      let p = parent.get(pid);
      let mine = false;
      for (let hops = 0; p && p !== '0' && hops < 12; hops++) {
        if (p === me) { mine = true; break; }
        p = parent.get(p);
      }
      if (!mine) continue;
      try {
        const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
        const hwm = Number((/VmHWM:\s+(\d+)/.exec(status) || [])[1] || 0);
        const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        const type = (/--type=([\w-]+)/.exec(cmd) || [])[1] || (cmd.includes('chrom') ? 'browser' : path.basename(cmd.split('\0')[0]));
        const prev = this.peak.get(pid);
        if (!prev || hwm > prev.hwmKiB) this.peak.set(pid, { type, hwmKiB: hwm });
      } catch { /* gone */ }
    }
  }
  /// Largest peak RSS of a process of this type seen since `reset()`.
  max(type) {
    let best = 0;
    for (const v of this.peak.values()) if (v.type === type) best = Math.max(best, v.hwmKiB);
    return best ? best * 1024 : null;
  }
  reset() { this.sample(); this.peak.clear(); }
  stop() { clearInterval(this.timer); }
}

function gitState() {
  const git = (...a) => {
    try {
      return execFileSync('git', a, { cwd: ROOT, encoding: 'utf8' }).trim();
    } catch {
      return null;
    }
  };
  const mtime = (p) => {
    try {
      return fs.statSync(path.join(ROOT, p)).mtime.toISOString();
    } catch {
      return null;
    }
  };
  return {
    commit: git('rev-parse', '--short', 'HEAD'),
    uncommitted: (git('status', '--short', '--', 'src', 'Cargo.toml', 'Cargo.lock', 'www') || '').split('\n').filter(Boolean),
    wasm_built: mtime('www/pkg/webtune_bg.wasm'),
    native_built: mtime('target/release/webtune'),
  };
}

// ---------------------------------------------------------------------------------------------
// Browser runs
// ---------------------------------------------------------------------------------------------
async function newBenchContext(browser, notes) {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  context.on('page', (page) => {
    page.on('console', (msg) => { if (msg.type() === 'error' || msg.type() === 'warning') notes.push(`[console.${msg.type()}] ${msg.text()}`); });
    page.on('pageerror', (err) => notes.push(`[pageerror] ${err.message}`));
    page.on('crash', () => notes.push('[page crashed]'));
    page.on('worker', (w) => w.on('close', () => notes.push(`[worker closed] ${w.url()}`)));
  });
  return context;
}

/// Record every worker → page message (time, type, memory, event) in window.__bench; each core
/// event of an `events` message is recorded on its own, as {type: 'event', event}.
async function installRecorder(page) {
  await page.evaluate(() => {
    const bench = { msgs: [], clickAt: null };
    window.__bench = bench;
    const listen = (worker) => worker.addEventListener('message', (e) => {
      const m = e.data || {};
      if (m.type === 'events') {
        const t = performance.now();
        for (const ev of m.events) {
          const event = ev.type === 'done'
            ? { type: 'done', strategy: ev.strategy, steps: ev.steps, elapsed_ms: ev.elapsed_ms, train_accuracy: ev.train_accuracy, peak_bytes: ev.peak_bytes, retained_bytes: ev.retained_bytes }
            : ev;
          bench.msgs.push({ t, type: 'event', memory: m.memory ?? null, event });
        }
        return;
      }
      const rec = { t: performance.now(), type: m.type, memory: m.memory ?? null };
      if (m.type === 'plan') rec.plans = m.plans;
      if (m.type === 'model') Object.assign(rec, { info: m.info, fromCache: m.fromCache });
      if (m.type === 'error' || m.type === 'warning' || m.type === 'status') Object.assign(rec, { message: m.message, code: m.code });
      if (m.type === 'train-done') Object.assign(rec, { stopped: m.stopped, failed: m.failed });
      if (m.type === 'progress') { rec.loaded = m.loaded; rec.total = m.total; }
      bench.msgs.push(rec);
    });
    // Train may restart the worker (a Threads count other than its pool's): follow every
    // worker the page starts. Checked right after the click (before the new worker can have
    // posted anything: it has to load its wasm first) and every 20 ms as a backstop.
    let attached = null;
    const attach = () => {
      const w = window.__webtune.worker;
      if (w && w !== attached) { attached = w; listen(w); }
    };
    attach();
    setInterval(attach, 20);
    document.getElementById('train-btn').addEventListener('click', () => { bench.clickAt = performance.now(); setTimeout(attach, 0); }, { capture: true });
  });
}

/// Press Train, wait for the end of the whole Train, return the recorded messages + page state.
async function trainAndRecord(page) {
  await waitTrainEnabled(page, 60_000);
  const before = await page.evaluate(() => window.__webtune.state.trainsFinished);
  await byRole(page, 'button', 'Train').click();
  let timedOut = false;
  try {
    await page.waitForFunction((n) => window.__webtune.state.trainsFinished > n && !window.__webtune.state.running, before, { timeout: TIMEOUT, polling: 250 });
  } catch (e) {
    if (page.isClosed()) throw new Error(`the page closed or crashed while training (${e.message})`);
    timedOut = true;
  }
  const got = await page.evaluate(() => {
    const s = window.__webtune.state;
    return {
      clickAt: window.__bench.clickAt,
      msgs: window.__bench.msgs,
      workerStarts: s.workerStarts,
      lastError: s.lastError,
      warnings: s.warnings,
      runs: Object.fromEntries(Object.entries(s.runs).map(([k, r]) => [k, { status: r.status, memory: r.memory, error: r.error, done: r.done && { steps: r.done.steps, elapsed_ms: r.done.elapsed_ms, train_accuracy: r.done.train_accuracy } }])),
      status: document.getElementById('status').textContent,
    };
  });
  got.timedOut = timedOut;
  return got;
}

/// Summarise one Train: per strategy step stats, phase times, memory.
function analyse(rec) {
  const msgs = rec.msgs.filter((m) => m.t >= (rec.clickAt ?? 0));
  const memories = msgs.map((m) => m.memory).filter((x) => typeof x === 'number');
  const at = (pred) => { const m = msgs.find(pred); return m ? m.t - rec.clickAt : null; };
  const out = {
    model_loaded_ms: round(at((m) => m.type === 'model')),
    model_from_cache: (msgs.find((m) => m.type === 'model') || {}).fromCache ?? null,
    model_info: (msgs.find((m) => m.type === 'model') || {}).info ?? null,
    train_done_ms: round(at((m) => m.type === 'train-done')),
    peak_wasm_memory_bytes: memories.length ? Math.max(...memories) : null,
    last_wasm_memory_bytes: memories.length ? memories[memories.length - 1] : null,
    worker_restarts: rec.workerStarts - 1,
    errors: msgs.filter((m) => m.type === 'error' || (m.type === 'event' && m.event.type === 'error')).map((m) => ({
      at_ms: round(m.t - rec.clickAt), message: m.message ?? m.event.message, code: m.code ?? null, last_memory_bytes: lastMemoryBefore(msgs, m.t),
    })),
    warnings: msgs.filter((m) => m.type === 'warning').map((m) => m.message),
    timed_out: rec.timedOut,
    status_text: rec.status,
    // Wasm memory only grows: where it grew tells what needed it.
    memory_timeline: memoryTimeline(msgs, rec.clickAt),
    strategies: {},
  };
  for (const [strategy, run] of Object.entries(rec.runs)) {
    const events = msgs.filter((m) => m.type === 'event' && m.event.strategy === strategy);
    const steps = events.filter((m) => m.event.type === 'step').map((m) => m.event);
    const start = events.find((m) => m.event.type === 'start');
    const done = events.find((m) => m.event.type === 'done');
    const mem = events.filter((m) => m && typeof m.memory === 'number').map((m) => m.memory);
    out.strategies[strategy] = {
      status: run.status,
      error: run.error,
      total_steps: start ? start.event.total_steps : null,
      threads: start ? start.event.threads : null,
      trainable_parameters: start ? start.event.trainable_parameters ?? null : null,
      estimated_peak_bytes: start ? start.event.estimated_peak_bytes : null,
      wasm_memory_at_start_bytes: start ? start.memory : null,
      run_peak_bytes: done ? done.event.peak_bytes : null,
      retained_bytes: done ? done.event.retained_bytes : null,
      started_at_ms: start ? round(start.t - rec.clickAt) : null,
      done_at_ms: done ? round(done.t - rec.clickAt) : null,
      run_elapsed_ms: done ? round(done.event.elapsed_ms) : null,
      train_accuracy: done ? done.event.train_accuracy : null,
      peak_wasm_memory_bytes: mem.length ? Math.max(...mem) : null,
      ...stepStats(steps),
    };
  }
  return out;
}

function memoryTimeline(msgs, t0) {
  const out = [];
  let last = null;
  for (const m of msgs) {
    if (typeof m.memory !== 'number' || m.type === 'progress') continue;
    const what = m.type === 'event' ? `${m.event.strategy || ''} ${m.event.type}${m.event.step ? ` ${m.event.step}` : m.event.epoch ? ` ${m.event.epoch}` : ''}`.trim()
      : m.type;
    if (m.memory !== last) out.push({ at_ms: round(m.t - t0), after: what, memory_mib: round(m.memory / MIB, 0) });
    last = m.memory;
  }
  return out;
}

function lastMemoryBefore(msgs, t) {
  let last = null;
  for (const m of msgs) if (m.t <= t && typeof m.memory === 'number') last = m.memory;
  return last;
}

/// The page's URL query for `threads` (null: the default), so that its first worker already has
/// that many threads (a later change of the control would restart the worker at Train).
const threadsQuery = (threads) => (threads === null ? '' : `&threads=${threads}`);

/// Checks that the page's Threads control reads `threads` (null: left at its default), else sets it.
async function setThreads(page, threads) {
  if (threads === null) return;
  const max = await page.evaluate(() => Number(document.getElementById('threads').max));
  const disabled = await page.evaluate(() => document.getElementById('threads').disabled);
  if (disabled && threads !== 1) throw new Error(`the page's Threads control is disabled (not cross-origin isolated?): cannot train on ${threads} threads`);
  if (threads > max) throw new Error(`--threads ${threads}: the page offers at most ${max} (navigator.hardwareConcurrency)`);
  const value = await page.evaluate(() => document.getElementById('threads').value);
  if (!disabled && value !== String(threads)) await configure(page, { threads });
}

const threadsLabel = (threads) => (threads === null ? '' : ` [${threads} thread${threads === 1 ? '' : 's'}]`);

async function benchNotebook(browser, watch, threads = null) {
  const notes = [];
  watch.reset();
  const context = await newBenchContext(browser, notes);
  try {
    const page = await openApp(context, opts.base, `?hub=/hub${threadsQuery(threads)}`);
    await configure(page, { model: 'local', frozen: true, top: false, full: true, epochs: 4, lr: '2e-5', batch: 2, seed: 0 });
    await setThreads(page, threads);
    const data = await byRole(page, 'textbox', 'Training data').inputValue();
    if (data !== NOTEBOOK_TSV) await setTrainingData(page, NOTEBOOK_TSV);
    await installRecorder(page);
    log(`notebook${threadsLabel(threads)}: training frozen + full (4 epochs, batch 2) on all-MiniLM-L6-v2 from /hub …`);
    const rec = await trainAndRecord(page);
    const r = analyse(rec);
    const full = r.strategies.full || {};
    r.wall_click_to_both_done_ms = full.done_at_ms ?? null;
    r.renderer_peak_rss_bytes = watch.max('renderer');
    r.notes = notes;
    r.ok = !rec.timedOut && r.errors.length === 0 && Object.values(r.strategies).every((s) => s.status === 'done');
    r.requested_threads = threads;
    log(`notebook${threadsLabel(threads)}: ${r.ok ? 'done' : 'FAILED'} (${full.threads ?? '?'} thread(s) per the start event) — full median step ${fmtMs(full.median_step_ms)}, wall ${fmtS(r.wall_click_to_both_done_ms)}, peak wasm memory ${fmtMiB(r.peak_wasm_memory_bytes)}`);
    return r;
  } finally {
    await context.close().catch(() => {});
  }
}

async function ensureBaseCheckpoint() {
  if (opts.baseModel !== 'bert-base-random') return { generated: false };
  const url = `${opts.base}/hub/bert-base-random/resolve/main/config.json`;
  const head = async () => (await fetch(url, { method: 'HEAD' })).status;
  if ((await head()) === 200) return { generated: false };
  const out = path.join(ROOT, 'models/bert-base-random');
  log(`base: ${url} is not served: writing a random bert-base checkpoint to ${out} …`);
  const t0 = Date.now();
  execFileSync(opts.webtune, ['random-checkpoint', '--out', out], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  const status = await head();
  if (status !== 200) throw new Error(`wrote ${out}, but the server still answers ${status} for ${url}: is it serving --models ${path.join(ROOT, 'models')}?`);
  return { generated: true, generate_ms: Date.now() - t0 };
}

/// Ticks the form's strategy checkboxes so that exactly `strategy` trains (LoRA: the "LoRA"
/// checkbox and its "Rank"; the other LoRA options stay at their defaults).
async function chooseStrategy(page, strategy) {
  const { kind, n } = parseStrategy(strategy);
  await configure(page, { frozen: kind === 'frozen', top: kind === 'top' ? n : false, full: kind === 'full' });
  await byRole(page, 'checkbox', 'LoRA').setChecked(kind === 'lora');
  if (kind === 'lora') await byRole(page, 'spinbutton', 'Rank').fill(String(n));
}

async function benchBase(browser, watch, threads = null, strategy = 'full') {
  const notes = [];
  const r = { ok: false, strategy, requested_threads: threads };
  try {
    Object.assign(r, { checkpoint: await ensureBaseCheckpoint() });
  } catch (e) {
    return { ok: false, strategy, requested_threads: threads, error: `could not provide models/${opts.baseModel}: ${e.message}` };
  }
  watch.reset();
  const context = await newBenchContext(browser, notes);
  try {
    const page = await openApp(context, opts.base, `?hub=/hub&repo=${encodeURIComponent(opts.baseModel)}${threadsQuery(threads)}`);
    const n = opts.baseSentences;
    const [header, ...sentences] = NOTEBOOK_TSV.split('\n').filter(Boolean);
    // The notebook's sentences in turn (it alternates 1, 0), repeated past its ten: n sentences,
    // both labels present.
    const data = [header, ...Array.from({ length: n }, (_, i) => sentences[i % sentences.length]), ''].join('\n');
    await configure(page, { epochs: 1, lr: '2e-5', batch: opts.baseBatch, seed: 0 });
    await chooseStrategy(page, strategy);
    if (opts.baseMaxLen !== null) await configure(page, { maxLen: opts.baseMaxLen, padMax: true });
    await setThreads(page, threads);
    await setTrainingData(page, data);
    await installRecorder(page);
    r.max_len = opts.baseMaxLen;
    r.sentences = n;
    r.model = opts.baseModel;
    r.batch = opts.baseBatch;
    log(`base${threadsLabel(threads)}: training ${strategy}, 1 epoch, ${n} sentences, batch ${opts.baseBatch}${opts.baseMaxLen !== null ? `, padded to ${opts.baseMaxLen} tokens` : ''} on ${opts.baseModel} from /hub …`);
    const rec = await trainAndRecord(page);
    Object.assign(r, analyse(rec));
    r.renderer_peak_rss_bytes = watch.max('renderer');
    r.notes = notes;
    const run = r.strategies[strategy] || {};
    const others = Object.keys(r.strategies).filter((k) => k !== strategy);
    if (others.length) r.errors.push({ message: `the page trained ${Object.keys(r.strategies).join(', ')}, not just ${strategy}` });
    r.ok = !rec.timedOut && r.errors.length === 0 && run.status === 'done';
    r.under_4_gib = r.peak_wasm_memory_bytes !== null && r.peak_wasm_memory_bytes < 4 * GIB;
    r.within_2_gib_target = r.peak_wasm_memory_bytes !== null && r.peak_wasm_memory_bytes <= 2 * GIB;
    if (!r.ok) {
      const where = run.status === 'running' || run.status === 'failed'
        ? `during ${strategy} training (after ${(run.step_deltas_ms || []).length + (run.steps ? 1 : 0)} step(s))`
        : r.model_loaded_ms === null ? 'while fetching / loading the model (no model message)' : `before ${strategy} training started`;
      r.failure = { where, errors: r.errors, last_memory_bytes: r.last_wasm_memory_bytes, status_text: r.status_text, timed_out: rec.timedOut };
    }
    log(`base${threadsLabel(threads)} ${strategy}: ${r.ok ? 'done' : 'FAILED'} (${run.threads ?? '?'} thread(s) per the start event) — steps ${run.first_step_ms ?? '—'} ms then ${JSON.stringify(run.step_deltas_ms || [])} ms, peak wasm memory ${fmtMiB(r.peak_wasm_memory_bytes)}, done peak_bytes ${fmtMiB(run.run_peak_bytes)}`);
    if (!r.ok) log(`base: failure: ${JSON.stringify(r.failure)}`);
    return r;
  } catch (e) {
    r.error = e.message;
    r.notes = notes;
    log(`base${threadsLabel(threads)} ${strategy}: FAILED — ${e.message}`);
    return r;
  } finally {
    await context.close().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Native runs
// ---------------------------------------------------------------------------------------------
function runNativeOnce(env) {
  const args = ['train', '--model', 'models/all-MiniLM-L6-v2', '--data', 'data/notebook.tsv', '--strategy', 'full', '--json'];
  const timeBin = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
  const cmd = timeBin || opts.webtune;
  const cmdArgs = timeBin ? ['-f', 'webtune-bench-maxrss-kib=%M', opts.webtune, ...args] : args;
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(cmd, cmdArgs, { cwd: ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('close', (code) => {
      const wall = Date.now() - t0;
      const events = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
      const steps = events.filter((e) => e.type === 'step');
      const done = events.find((e) => e.type === 'done');
      const rss = /webtune-bench-maxrss-kib=(\d+)/.exec(stderr);
      resolve({
        ok: code === 0 && !!done,
        exit_code: code,
        error: code === 0 ? null : stderr.trim().split('\n').slice(-5).join(' | '),
        process_wall_ms: wall,
        run_elapsed_ms: done ? round(done.elapsed_ms) : null,
        train_accuracy: done ? done.train_accuracy : null,
        peak_rss_bytes: rss ? Number(rss[1]) * 1024 : null,
        ...stepStats(steps),
      });
    });
  });
}

const NATIVE_COMMAND = 'train --model models/all-MiniLM-L6-v2 --data data/notebook.tsv --strategy full --json';

function summariseNative(runs) {
  const ok = runs.filter((r) => r.ok);
  return {
    runs: runs.length,
    ok: runs.length > 0 && ok.length === runs.length,
    median_step_ms: round(median(ok.flatMap((r) => r.within_epoch_deltas_ms))),
    best_run_median_step_ms: ok.length ? round(Math.min(...ok.map((r) => r.median_step_ms))) : null,
    per_run_median_step_ms: runs.map((r) => r.median_step_ms),
    median_first_step_ms: round(median(ok.map((r) => r.first_step_ms))),
    median_run_elapsed_ms: round(median(ok.map((r) => r.run_elapsed_ms))),
    peak_rss_bytes: Math.max(0, ...runs.map((r) => r.peak_rss_bytes || 0)) || null,
    errors: runs.filter((r) => !r.ok).map((r) => r.error),
  };
}

function summariseNotebook(runs) {
  const ok = runs.filter((r) => r.ok);
  const full = (r) => r.strategies.full || {};
  const frozen = (r) => r.strategies.frozen || {};
  const med = (f) => round(median(ok.map(f).filter((x) => typeof x === 'number')));
  return {
    runs: runs.length,
    ok: runs.length > 0 && ok.length === runs.length,
    full_median_step_ms: round(median(ok.flatMap((r) => full(r).within_epoch_deltas_ms || []))),
    full_best_run_median_step_ms: ok.length ? round(Math.min(...ok.map((r) => full(r).median_step_ms))) : null,
    full_per_run_median_step_ms: runs.map((r) => full(r).median_step_ms ?? null),
    full_median_first_step_ms: med((r) => full(r).first_step_ms),
    full_median_run_ms: med((r) => full(r).run_elapsed_ms),
    frozen_median_run_ms: med((r) => frozen(r).run_elapsed_ms),
    median_model_loaded_ms: med((r) => r.model_loaded_ms),
    median_wall_click_to_both_done_ms: med((r) => r.wall_click_to_both_done_ms),
    per_run_wall_click_to_both_done_ms: runs.map((r) => r.wall_click_to_both_done_ms ?? null),
    peak_wasm_memory_bytes: Math.max(0, ...runs.map((r) => r.peak_wasm_memory_bytes || 0)) || null,
    renderer_peak_rss_bytes: Math.max(0, ...runs.map((r) => r.renderer_peak_rss_bytes || 0)) || null,
    train_accuracy: { frozen: ok.map((r) => frozen(r).train_accuracy), full: ok.map((r) => full(r).train_accuracy) },
    errors: runs.filter((r) => !r.ok).map((r) => r.error || r.errors),
  };
}

/// --threads: per thread count the step medians (and the threads the runs' events reported), and
/// the ratios 1 thread ÷ N threads.
function threadsComparison(counts, nbBy, baseBy) {
  const out = { counts, notebook: {}, base: {}, ratios: {} };
  for (const c of counts) {
    const runs = nbBy.get(c) || [];
    if (runs.length) {
      const s = summariseNotebook(runs);
      out.notebook[c] = {
        ok: s.ok,
        reported_threads: [...new Set(runs.map((r) => (r.strategies.full || {}).threads ?? null))],
        full_median_step_ms: s.full_median_step_ms,
        full_per_run_median_step_ms: s.full_per_run_median_step_ms,
        full_median_run_ms: s.full_median_run_ms,
        frozen_median_run_ms: s.frozen_median_run_ms,
        median_wall_click_to_both_done_ms: s.median_wall_click_to_both_done_ms,
        train_accuracy: s.train_accuracy,
        errors: s.errors,
      };
    }
    const b = baseBy.get(c);
    if (b) {
      const full = (b.strategies || {})[b.strategy || 'full'] || {};
      out.base[c] = {
        ...stepSummary(b, full),
        strategy: b.strategy || 'full',
        error: b.ok ? null : b.error || b.failure || null,
      };
    }
  }
  out.ok = [...Object.values(out.notebook), ...Object.values(out.base)].every((x) => x.ok);
  const ratio = (x, y) => (x && y ? round(x / y, 2) : null);
  if (counts.includes(1)) {
    for (const c of counts.filter((x) => x !== 1)) {
      out.ratios[`notebook_full_step_1_over_${c}`] = ratio(out.notebook[1]?.full_median_step_ms, out.notebook[c]?.full_median_step_ms);
      out.ratios[`notebook_wall_1_over_${c}`] = ratio(out.notebook[1]?.median_wall_click_to_both_done_ms, out.notebook[c]?.median_wall_click_to_both_done_ms);
      out.ratios[`base_step_1_over_${c}`] = ratio(out.base[1]?.median_step_ms, out.base[c]?.median_step_ms);
    }
  }
  return out;
}

/// The step times and memory of one base run `b` (benchBase's result) for its strategy's
/// analysed run `s`: the fields both the threads and the strategies comparison report.
function stepSummary(b, s) {
  return {
    ok: b.ok,
    reported_threads: s.threads ?? null,
    max_len: b.max_len ?? null,
    steps: s.steps ?? null,
    first_step_ms: s.first_step_ms ?? null,
    median_step_ms: s.median_step_ms ?? null,
    step_deltas_ms: s.step_deltas_ms || [],
    peak_wasm_memory_bytes: b.peak_wasm_memory_bytes ?? null,
  };
}

/// --base-strategy: per thread count and strategy the step times and memory of its base run, and
/// the ratios S ÷ full (step time, peak wasm memory, the done event's peak_bytes).
function strategiesComparison(counts, strategies, runs) {
  const out = { counts, strategies, by_threads: {}, ratios: {} };
  const ratio = (x, y) => (x && y ? round(x / y, 2) : null);
  for (const c of counts) {
    const key = c === null ? 'default' : String(c);
    const per = {};
    for (const st of strategies) {
      const b = runs.get(`${c}|${st}`);
      if (!b) continue;
      const s = (b.strategies || {})[st] || {};
      per[st] = {
        ...stepSummary(b, s),
        sentences: b.sentences ?? null,
        trainable_parameters: s.trainable_parameters ?? null,
        run_elapsed_ms: s.run_elapsed_ms ?? null,
        model_loaded_ms: b.model_loaded_ms ?? null,
        wasm_memory_at_start_bytes: s.wasm_memory_at_start_bytes ?? null,
        run_peak_bytes: s.run_peak_bytes ?? null,
        estimated_peak_bytes: s.estimated_peak_bytes ?? null,
        retained_bytes: s.retained_bytes ?? null,
        renderer_peak_rss_bytes: b.renderer_peak_rss_bytes ?? null,
        train_accuracy: s.train_accuracy ?? null,
        error: b.ok ? null : b.error || b.failure || null,
      };
    }
    out.by_threads[key] = per;
    const full = per.full;
    if (full) {
      const r = {};
      for (const st of strategies.filter((x) => x !== 'full' && per[x])) {
        r[`${st}_over_full`] = {
          median_step: ratio(per[st].median_step_ms, full.median_step_ms),
          peak_wasm_memory: ratio(per[st].peak_wasm_memory_bytes, full.peak_wasm_memory_bytes),
          run_peak_bytes: ratio(per[st].run_peak_bytes, full.run_peak_bytes),
        };
      }
      out.ratios[key] = r;
    }
  }
  out.ok = Object.values(out.by_threads).every((per) => Object.values(per).every((x) => x.ok));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------
function table(rows) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  return rows.map((r, i) => {
    const line = r.map((cell, c) => (c === 0 ? String(cell).padEnd(widths[c]) : String(cell).padStart(widths[c]))).join('  ');
    return i === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
  }).join('\n');
}

function report(result) {
  const lines = [];
  const nb = result.notebook;
  const nat = result.native;
  const base = result.base;
  lines.push('');
  lines.push(`webtune benchmark — ${result.started_at}, ${result.browser}, ${result.host.cpus} CPUs, commit ${result.git.commit}${result.git.uncommitted.length ? ` + ${result.git.uncommitted.length} uncommitted file(s)` : ''}`);
  const rows = [['measurement', 'value']];
  if (nb) {
    const n = nb.summary;
    rows.push([`browser MiniLM full: median step (within-epoch Δelapsed_ms, ${n.runs} runs pooled)`, fmtMs(n.full_median_step_ms)]);
    rows.push(['browser MiniLM full: per-run median steps', n.full_per_run_median_step_ms.map((x) => (x === null ? '—' : x.toFixed(1))).join(' / ') + ' ms']);
    rows.push(['browser MiniLM full: first step (median)', fmtMs(n.full_median_first_step_ms)]);
    rows.push(['browser MiniLM full: run, 20 steps + 4 evals (median)', fmtS(n.full_median_run_ms)]);
    rows.push(['browser MiniLM frozen: run (median)', fmtS(n.frozen_median_run_ms)]);
    rows.push(['browser notebook: click Train → model loaded (median)', fmtS(n.median_model_loaded_ms)]);
    rows.push(['browser notebook: click Train → both Done, wall (median)', fmtS(n.median_wall_click_to_both_done_ms)]);
    rows.push(['browser notebook: per-run wall', n.per_run_wall_click_to_both_done_ms.map((x) => fmtS(x)).join(' / ')]);
    rows.push(['browser notebook: peak wasm memory', fmtMiB(n.peak_wasm_memory_bytes)]);
    rows.push(['browser notebook: renderer peak RSS', fmtMiB(n.renderer_peak_rss_bytes)]);
    rows.push(['browser notebook: train accuracy frozen / full', `${n.train_accuracy.frozen.join(',')} / ${n.train_accuracy.full.join(',')}`]);
    if (!n.ok) rows.push(['browser notebook', `FAILED: ${JSON.stringify(n.errors)}`]);
  }
  if (nat) {
    const d = nat.summary.default_threads;
    const one = nat.summary.one_thread;
    rows.push([`native MiniLM full: median step, default threads (${d.runs} runs pooled)`, fmtMs(d.median_step_ms)]);
    rows.push(['native MiniLM full: per-run median steps, default threads', d.per_run_median_step_ms.map((x) => (x === null ? '—' : x.toFixed(1))).join(' / ') + ' ms']);
    rows.push([`native MiniLM full: median step, RAYON_NUM_THREADS=1 (${one.runs} runs pooled)`, fmtMs(one.median_step_ms)]);
    rows.push(['native MiniLM full: per-run median steps, 1 thread', one.per_run_median_step_ms.map((x) => (x === null ? '—' : x.toFixed(1))).join(' / ') + ' ms']);
    rows.push(['native MiniLM full: first step (default / 1 thread)', `${fmtMs(d.median_first_step_ms)} / ${fmtMs(one.median_first_step_ms)}`]);
    rows.push(['native MiniLM full: peak RSS', fmtMiB(Math.max(d.peak_rss_bytes || 0, one.peak_rss_bytes || 0) || null)]);
    if (!nat.ok) rows.push(['native', `FAILED: ${JSON.stringify([...d.errors, ...one.errors])}`]);
  }
  if (result.ratios) {
    rows.push(['ratio browser / native, default threads (pooled medians)', result.ratios.browser_over_native_default ?? '—']);
    rows.push(['ratio browser / native, 1 thread (pooled medians)', result.ratios.browser_over_native_one_thread ?? '—']);
    rows.push(['ratio browser / native, 1 thread (best-run medians)', result.ratios.best_run_browser_over_native_one_thread ?? '—']);
  }
  if (base) {
    const st = base.strategy || 'full';
    const full = (base.strategies || {})[st] || {};
    rows.push([`browser ${opts.baseModel}: model loaded (from click)`, fmtS(base.model_loaded_ms)]);
    rows.push([`browser ${opts.baseModel} ${st}: step 1 (from run start)`, fmtMs(full.first_step_ms)]);
    rows.push([`browser ${opts.baseModel} ${st}: step 2 (Δelapsed_ms)`, fmtMs((full.step_deltas_ms || [])[0] ?? null)]);
    rows.push([`browser ${opts.baseModel}: peak wasm memory`, `${fmtMiB(base.peak_wasm_memory_bytes)}${base.peak_wasm_memory_bytes ? ` (${(base.peak_wasm_memory_bytes / GIB).toFixed(2)} GiB; ${base.within_2_gib_target ? '≤ 2 GiB target' : base.under_4_gib ? 'over the 2 GiB target, under 4 GiB' : 'NOT under 4 GiB'})` : ''}`]);
    rows.push([`browser ${opts.baseModel}: renderer peak RSS`, fmtMiB(base.renderer_peak_rss_bytes)]);
    if (!base.ok) rows.push([`browser ${opts.baseModel}`, `FAILED: ${base.error || JSON.stringify(base.failure)}`]);
  }
  const th = result.threads;
  if (th) {
    for (const c of th.counts) {
      const n = th.notebook[c];
      if (n) {
        rows.push([`threads ${c}: browser MiniLM full, median step (${n.full_per_run_median_step_ms.length} runs pooled; events say ${n.reported_threads.join(',')} thread(s))`, fmtMs(n.full_median_step_ms)]);
        rows.push([`threads ${c}: browser notebook, click Train → both Done, wall (median)`, fmtS(n.median_wall_click_to_both_done_ms)]);
        if (!n.ok) rows.push([`threads ${c}: browser notebook`, `FAILED: ${JSON.stringify(n.errors)}`]);
      }
      const b = th.base[c];
      if (b) {
        rows.push([`threads ${c}: browser ${opts.baseModel} ${b.strategy}${b.max_len ? `, ${b.max_len} tokens` : ''}, median step after the first (events say ${b.reported_threads ?? '?'})`, `${fmtMs(b.median_step_ms)} (steps ${[b.first_step_ms, ...b.step_deltas_ms].map((x) => (x === null ? '—' : Math.round(x))).join(' / ')} ms)`]);
        if (!b.ok) rows.push([`threads ${c}: browser ${opts.baseModel}`, `FAILED: ${JSON.stringify(b.error)}`]);
      }
    }
    for (const [k, v] of Object.entries(th.ratios)) rows.push([`ratio ${k.replace(/_/g, ' ')}`, v ?? '—']);
  }
  const bs = result.base_strategies;
  if (bs) {
    for (const [key, per] of Object.entries(bs.by_threads)) {
      const tl = key === 'default' ? '' : ` [${key} thread${key === '1' ? '' : 's'}]`;
      for (const [st, x] of Object.entries(per)) {
        const what = `browser ${opts.baseModel} ${st}${x.max_len ? `, ${x.max_len} tokens` : ''}${tl}`;
        rows.push([`${what}: median step after the first (events say ${x.reported_threads ?? '?'} thread(s))`, `${fmtMs(x.median_step_ms)} (steps ${[x.first_step_ms, ...x.step_deltas_ms].map((v) => (v === null ? '—' : Math.round(v))).join(' / ')} ms)`]);
        rows.push([`${what}: peak wasm memory (wasm memory at start)`, `${fmtMiB(x.peak_wasm_memory_bytes)} (${fmtMiB(x.wasm_memory_at_start_bytes)})`]);
        rows.push([`${what}: done peak_bytes (estimated at start; retained)`, `${fmtMiB(x.run_peak_bytes)} (${fmtMiB(x.estimated_peak_bytes)}; ${fmtMiB(x.retained_bytes)})`]);
        if (!x.ok) rows.push([what, `FAILED: ${JSON.stringify(x.error)}`]);
      }
      for (const [k, v] of Object.entries(bs.ratios[key] || {})) {
        const name = k.replace(/_over_full$/, '');
        rows.push([`ratio ${name} ÷ full${tl}: median step / peak wasm memory / done peak_bytes`, `${v.median_step ?? '—'} / ${v.peak_wasm_memory ?? '—'} / ${v.run_peak_bytes ?? '—'}`]);
      }
    }
  }
  lines.push(table(rows));
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------
const os = await import('node:os');
const result = {
  started_at: new Date().toISOString(),
  url: opts.base,
  options: { only: opts.only, runs: opts.runs, base_sentences: opts.baseSentences, base_max_len: opts.baseMaxLen, base_strategies: opts.baseStrategies, base_model: opts.baseModel, base_batch: opts.baseBatch, threads: opts.threads },
  host: { cpus: os.cpus().length, loadavg_at_start: os.loadavg().map((x) => round(x, 2)) },
  git: gitState(),
};
const watch = new ProcessWatch();
let browser = null;
try {
  if (opts.only.includes('notebook') || opts.only.includes('base')) {
    browser = await launchBrowser();
    result.browser = `Chromium ${browser.version()}`;
    log(`webtune bench against ${opts.base} with ${result.browser}`);
  } else {
    result.browser = 'no browser';
  }
  // Browser and native runs interleaved, so that load from elsewhere hits both alike; with
  // --threads, every round runs each thread count (in alternating order).
  const counts = opts.threads || [null];
  const nbBy = new Map(counts.map((c) => [c, []]));
  const native = { command: `${path.relative(ROOT, opts.webtune)} ${NATIVE_COMMAND}`, default_threads: [], one_thread: [] };
  for (let i = 0; i < opts.runs; i++) {
    if (opts.only.includes('notebook')) {
      log(`--- round ${i + 1}/${opts.runs}`);
      for (const c of i % 2 ? [...counts].reverse() : counts) {
        try {
          nbBy.get(c).push(await benchNotebook(browser, watch, c));
        } catch (e) {
          nbBy.get(c).push({ ok: false, error: e.message, strategies: {} });
          log(`notebook${threadsLabel(c)}: FAILED — ${e.message}`);
        }
      }
    }
    if (opts.only.includes('native')) {
      for (const [key, env, label] of [['default_threads', {}, 'default threads'], ['one_thread', { RAYON_NUM_THREADS: '1' }, 'RAYON_NUM_THREADS=1']]) {
        const r = await runNativeOnce(env);
        native[key].push(r);
        log(`native (${label}): ${r.ok ? `median step ${fmtMs(r.median_step_ms)}` : `FAILED — ${r.error}`}`);
      }
    }
  }
  if (opts.only.includes('notebook')) result.notebook = { summary: summariseNotebook(nbBy.get(counts[0])), runs: nbBy.get(counts[0]) };
  if (opts.only.includes('notebook')) result.notebook.ok = result.notebook.summary.ok;
  if (opts.only.includes('native')) {
    native.summary = { default_threads: summariseNative(native.default_threads), one_thread: summariseNative(native.one_thread) };
    native.ok = native.summary.default_threads.ok && native.summary.one_thread.ok;
    result.native = native;
  }
  if (result.notebook && result.native && result.notebook.summary.full_median_step_ms) {
    const b = result.notebook.summary;
    const ratio = (x, y) => (x && y ? round(x / y, 2) : null);
    result.ratios = {
      browser_over_native_default: ratio(b.full_median_step_ms, result.native.summary.default_threads.median_step_ms),
      browser_over_native_one_thread: ratio(b.full_median_step_ms, result.native.summary.one_thread.median_step_ms),
      best_run_browser_over_native_one_thread: ratio(b.full_best_run_median_step_ms, result.native.summary.one_thread.best_run_median_step_ms),
    };
  }
  // Base: per thread count, each strategy (its first one in baseBy, for `base` and `threads`).
  const baseBy = new Map();
  const baseRuns = new Map();
  if (opts.only.includes('base')) {
    for (const c of counts) {
      for (const st of opts.baseStrategies) baseRuns.set(`${c}|${st}`, await benchBase(browser, watch, c, st));
      baseBy.set(c, baseRuns.get(`${c}|${opts.baseStrategies[0]}`));
    }
    result.base = baseBy.get(counts[0]);
    if (opts.baseStrategiesGiven) result.base_strategies = strategiesComparison(counts, opts.baseStrategies, baseRuns);
  }
  if (opts.threads) result.threads = threadsComparison(counts, nbBy, baseBy);
} finally {
  watch.stop();
  if (browser) await browser.close().catch(() => {});
}
result.host.loadavg_at_end = os.loadavg().map((x) => round(x, 2));
result.finished_at = new Date().toISOString();

console.log(report(result));
fs.mkdirSync(path.dirname(opts.out), { recursive: true });
fs.writeFileSync(opts.out, JSON.stringify(result, null, 2) + '\n');
console.log(`\nJSON (also in ${path.relative(process.cwd(), opts.out) || opts.out}):`);
console.log(JSON.stringify(result, null, 2));
const failed = ['notebook', 'native', 'base', 'threads', 'base_strategies'].filter((k) => result[k] && !result[k].ok);
if (failed.length) console.log(`\nfailed parts: ${failed.join(', ')}`);
process.exit(failed.length ? 1 : 0);
