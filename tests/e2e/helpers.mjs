// Shared helpers for the webtune end-to-end tests (playwright-core + Debian chromium).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
  // No DNS at all: any request to another host fails instead of leaving the machine.
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
];

/**
 * Headless Chromium with CHROMIUM_ARGS. `webgpu`: with a WebGPU adapter too (SwiftShader, WebGPU
 * on the CPU: headless Chromium offers one only with --enable-unsafe-webgpu); without it
 * `requestAdapter()` gives null, as on a machine without WebGPU.
 */
export async function launchBrowser({ webgpu = false } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: webgpu ? [...CHROMIUM_ARGS, '--enable-unsafe-webgpu'] : CHROMIUM_ARGS,
  });
}

export const NOTEBOOK_TSV = [
  'text\tlabel',
  'I love this product!\t1',
  'Terrible, I hated it.\t0',
  'Absolutely wonderful service.\t1',
  'Worst experience ever.\t0',
  'The quality is amazing.\t1',
  'Not worth the money.\t0',
  'I am very satisfied.\t1',
  'Completely disappointed.\t0',
  'Highly recommend it!\t1',
  'I will never buy this again.\t0',
  '',
].join('\n');

export const NOTEBOOK_SENTENCES = NOTEBOOK_TSV.split('\n').slice(1).filter(Boolean).map((l) => l.split('\t')[0]);

export class AssertionError extends Error {}

export function assert(cond, message) {
  if (!cond) throw new AssertionError(message);
}

export function assertEq(actual, expected, what) {
  if (actual !== expected) throw new AssertionError(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// A fresh browser context whose every request (pages and workers) is logged into `log`,
/// with console output, page errors and dialogs recorded for the test and for failure reports.
export async function newContext(browser, t) {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1360, height: 900 } });
  context.on('request', (req) => {
    t.requests.push({ test: t.name, url: req.url(), method: req.method(), postData: req.postData(), resourceType: req.resourceType(), at: Date.now() });
  });
  context.on('page', (page) => watchPage(page, t));
  return context;
}

export function watchPage(page, t) {
  page.on('console', (msg) => t.console.push(`[${msg.type()}] ${msg.text()}`));
  page.on('pageerror', (err) => t.console.push(`[pageerror] ${err.message}`));
  page.on('dialog', async (dialog) => {
    t.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    await dialog.dismiss().catch(() => {});
  });
  page.on('worker', (worker) => {
    t.console.push(`[worker] started ${worker.url()}`);
  });
}

export async function openApp(context, base, query = '') {
  const page = await context.newPage();
  await page.goto(`${base}/${query}`);
  // The worker has loaded the wasm and the default data has been checked.
  await page.waitForFunction(() => window.__webtune && window.__webtune.state.ready && !window.__webtune.state.parsePending, null, { timeout: 60_000 });
  return page;
}

export const byRole = (page, role, name) => page.getByRole(role, { name, exact: true });

/// Choose strategies and hyper-parameters through the page's controls (by accessible name).
export async function configure(page, { model, frozen, top, full, epochs, lr, headLr, batch, maxLen, padMax, seed, evalSample, threads } = {}) {
  if (model !== undefined) await byRole(page, 'combobox', 'Model').selectOption(model);
  if (frozen !== undefined) await byRole(page, 'checkbox', 'Frozen encoder').setChecked(frozen);
  if (top !== undefined) {
    await byRole(page, 'checkbox', 'Top layers').setChecked(top !== false);
    if (top !== false) await byRole(page, 'spinbutton', 'Layers to train').fill(String(top));
  }
  if (full !== undefined) await byRole(page, 'checkbox', 'Full fine-tuning').setChecked(full);
  if (epochs !== undefined) await byRole(page, 'spinbutton', 'Epochs').fill(String(epochs));
  if (lr !== undefined) await byRole(page, 'spinbutton', 'Learning rate').fill(String(lr));
  if (headLr !== undefined) await byRole(page, 'spinbutton', 'Classifier head rate').fill(String(headLr));
  if (batch !== undefined) await byRole(page, 'spinbutton', 'Batch size').fill(String(batch));
  if (maxLen !== undefined) await byRole(page, 'spinbutton', 'Max length').fill(String(maxLen));
  if (padMax !== undefined) await byRole(page, 'checkbox', 'Pad to max length (as the notebook)').setChecked(padMax);
  if (seed !== undefined) await byRole(page, 'spinbutton', 'Seed').fill(String(seed));
  if (evalSample !== undefined) await byRole(page, 'spinbutton', 'Training accuracy sample').fill(String(evalSample));
  if (threads !== undefined) await byRole(page, 'spinbutton', 'Threads').fill(String(threads));
}

/// `webtune serve` of www/ and models/ on a free port, started by a test (e.g. with
/// `--no-isolation`): resolves to {url, stop()}. WEBTUNE_BIN overrides target/release/webtune.
export async function startServer(root, args = [], { models = 'models' } = {}) {
  const bin = process.env.WEBTUNE_BIN || path.join(root, 'target/release/webtune');
  const child = spawn(bin, ['serve', '--port', '0', '--root', 'www', '--models', models, ...args], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${bin} serve printed no URL within 20 s: ${log}`)), 20_000);
    child.stderr.on('data', (d) => {
      log += d;
      const m = /http:\/\/[0-9.]+:\d+/.exec(log);
      if (m) { clearTimeout(timer); resolve(m[0]); }
    });
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${bin} serve exited (${code}): ${log}`)); });
  });
  return {
    url,
    log: () => log,
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', resolve);
      child.kill();
    }),
  };
}

export async function setTrainingData(page, text) {
  await byRole(page, 'textbox', 'Training data').fill(text);
  await page.waitForFunction(() => !window.__webtune.state.parsePending, null, { timeout: 30_000 });
}

export async function waitTrainEnabled(page, timeout = 30_000) {
  await page.waitForFunction(() => !document.getElementById('train-btn').disabled, null, { timeout });
}

/// Press Train and wait until the worker reports the end of the whole Train (all strategies).
export async function trainAndWait(page, timeout = 900_000) {
  await waitTrainEnabled(page);
  const before = await page.evaluate(() => window.__webtune.state.trainsFinished);
  await byRole(page, 'button', 'Train').click();
  await page.waitForFunction((n) => window.__webtune.state.trainsFinished > n && !window.__webtune.state.running, before, { timeout, polling: 100 });
  return page.evaluate(() => {
    const s = window.__webtune.state;
    return { order: s.order, runs: s.runs, lastError: s.lastError, model: s.model };
  });
}

export async function statusText(page) {
  return page.locator('#status').textContent();
}

export async function cacheEntries(page) {
  return page.evaluate(async () => {
    const out = [];
    for (const name of await caches.keys()) {
      const cache = await caches.open(name);
      for (const req of await cache.keys()) {
        const resp = await cache.match(req);
        const size = (await resp.arrayBuffer()).byteLength;
        out.push({ cache: name, url: req.url, size });
      }
    }
    return out;
  });
}

/// Reads an uncompressed ustar archive: [{name, size, data}], checking header checksums.
export function readTar(buf) {
  const files = [];
  let off = 0;
  const text = (a, b) => buf.subarray(off + a, off + b).toString('latin1').replace(/\0.*$/s, '');
  while (off + 512 <= buf.length) {
    const header = buf.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const name = text(0, 100);
    const size = parseInt(text(124, 136).trim(), 8);
    const stored = parseInt(text(148, 156).trim(), 8);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i];
    if (sum !== stored) throw new AssertionError(`tar header checksum mismatch for ${name}: ${sum} vs ${stored}`);
    const data = buf.subarray(off + 512, off + 512 + size);
    files.push({ name, size, data });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}
