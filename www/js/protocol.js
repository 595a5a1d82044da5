// The page ↔ worker message protocol, in one place: the message type names and what every
// message carries. The page modules and the worker (worker.js) spell message types only
// through these constants; the end-to-end tests (tests/e2e) import them too.
//
// Every message is a plain object with a `type` field. Requests that expect an answer carry a
// numeric `id` chosen by the page; the answer (or an `error`) repeats it. Fields that are
// `null` in a request mean "not given". Nothing here may depend on the DOM or the worker
// scope: this module is loaded in both, and by Node in the tests.

/** Messages the page sends to the worker. */
export const ToWorker = Object.freeze({
  /**
   * Check the data as the user types.
   * `{type, id, train, val, valFraction, seed}` — `train`: the training text; `val`: the
   * validation text, or null; `valFraction`: the fraction of the training data to hold out,
   * in (0, 1), or null; `seed`: whole number ≥ 0 for the held-out split.
   * Answer: `parsed` with the same id, or `error` with `id` and `context: 'parse'`.
   */
  PARSE: 'parse',
  /**
   * Load the model (cache, hub or local files) and train the strategies one after another.
   * `{type, source, strategies, train, val, valFraction, seed, options, device}` —
   * `source`: `{kind: 'hub', hub, repo, revision}` (`hub`: absolute base URL)
   *         | `{kind: 'files', files: [File, ...]}`;
   * `strategies`: `['frozen' | 'top:K' | 'lora:R' | 'full', ...]`; `train`, `val`, `valFraction` as in
   * `parse` (`seed` is sent too but unused: `options.seed` is the one the core uses);
   * `options`: `{epochs, learning_rate, head_learning_rate (null = same as learning_rate),
   * batch_size, max_len, pad_to_max_len, seed, train_eval_sample, lora?}` (snake_case
   * `TrainOptions` fields, src/types.rs; `train_eval_sample`: training sentences each epoch's
   * training accuracy is measured on, 0 = all; `lora`, when a `lora:R` strategy is asked for:
   * `{alpha, dropout, targets: ['query' | 'key' | 'value' | 'attention_output' |
   * 'intermediate' | 'output', ...], learning_rate}`).
   * `device`: the "Device" choice, one of `deviceSpec.values` ('auto' | 'gpu' | 'cpu'; absent:
   * 'auto'): where the runs train (js/device-placer.js; a `device-note` says why the CPU when
   * the GPU cannot be had, once, and Auto's verdict).
   * No id. The worker first gets config.json and tokenizer.json (cache, hub or files) and plans
   * the Train (wasm `plan_train`): a repository that is not a trainable BERT, or a Train that
   * cannot fit the tab's memory, is refused with an `error` before model.safetensors is read.
   * Then it answers with `plan`, `status`, `progress`, `warning`, `model`, then per strategy the
   * run's core events in `events` messages (from `start` to `done`, `stopped` or `error`), and
   * always ends with one
   * `train-done`. Refused with `error` code 'busy' while a Train is running.
   */
  TRAIN: 'train',
  /**
   * `{type}` — stop the Train: the active run is stopped right after its current bounded step
   * (at most about a quarter second of work) and reports `stopped`; queued strategies do not
   * run; a model download in progress is aborted.
   */
  STOP: 'stop',
  /**
   * Classify a sentence with every finished run. `{type, id, text}`.
   * Answer: `predictions` with the same id, or `error` with `id` and `context: 'predict'`.
   */
  PREDICT: 'predict',
  /**
   * The files of one trained strategy. `{type, id, strategy, adapter}` — `adapter` true: a
   * LoRA run's PEFT adapter instead of its (merged) model.
   * Answer: `exported` with the same id, or `error` with `id` and `context: 'export'`.
   */
  EXPORT: 'export',
  /**
   * "Export recipe": one strategy of the last Train as a PyTorch script folder (js/recipe-export.js).
   * `{type, id, strategy}`. Answer: `recipe` with the same id, or `error` with `id` and
   * `context: 'export-recipe'`.
   */
  EXPORT_RECIPE: 'export-recipe',
  /**
   * Load a saved model (js/saved-models.js: a webtune export kept in the browser) to classify
   * with. `{type, id, savedId, files}` — `files`: `{'config.json', 'tokenizer.json',
   * 'model.safetensors'}` → Uint8Array (transferred). The worker holds one saved model at a
   * time (a new one replaces it; a Train frees it). Answer: `saved-loaded` with the same id, or
   * `error` with `id` and `context: 'load-saved'`.
   */
  LOAD_SAVED: 'load-saved',
  /**
   * Classify with the loaded saved model. `{type, id, savedId, text}`. Answer:
   * `saved-prediction` with the same id, or `error` with `id` and `context: 'predict-saved'`
   * (also when `savedId` is not the loaded one: load it again).
   */
  PREDICT_SAVED: 'predict-saved',
  /**
   * Check a results record's head with the core (wasm `check_record`: format and version, no
   * unknown or misspelled field, options within their spec). `{type, id, text}` — the file's
   * text. Answer: `record-checked` with the same id, or `error` with `id` and
   * `context: 'check-record'`.
   */
  CHECK_RECORD: 'check-record',
  /** `{type, savedId}` — free the loaded saved model if it is this one (it was deleted). */
  FREE_SAVED: 'free-saved',
  /**
   * TEST ONLY (sent by tests/e2e, never by the page): `{type, inStep?}` — without `inStep`, call
   * the wasm export `crash_for_tests()`, which panics and traps the WebAssembly instance, so that
   * the worker's real crash path runs: `error` code 'crash', after which the page restarts the
   * worker. With `inStep` ('panic', 'out-of-memory' or 'hang', wasm `fault_on_pool_for_tests`): the next
   * training step fails so on the thread it runs on — a pool thread in the threaded build,
   * where the worker then waits for ever and only the page's watchdog (js/worker-watchdog.js)
   * can tell. No answer.
   */
  CRASH_FOR_TESTS: 'crash-for-tests',
  /**
   * TEST ONLY (sent by tests/e2e, never by the page): `{type}` — a real `device.destroy()` of
   * the GPU of the run training now (wasm `WebRun.destroy_gpu_for_tests`), as a driver reset
   * does: the run must stop by itself with its `reason` and keep its last finished model.
   * No answer (nothing happens when no GPU run is training).
   */
  DESTROY_GPU_FOR_TESTS: 'destroy-gpu-for-tests',
});

/** Messages the worker sends to the page. */
export const FromWorker = Object.freeze({
  /**
   * `{type, memory, threads, build, simd, optionSpec, deviceSpec}` — the WebAssembly module is loaded
   * (`deviceSpec`: the "Device" choice's `{name, values, labels, default, message}`, wasm
   * `device_spec()`, src/device.rs)
   * (`optionSpec`: the core's training options spec, wasm `option_spec()`: per option its
   * `name`, `kind`, `min`/`max` (and `*_exclusive`), `values`, `optional`, `step`, `default`,
   * `default_text` and `message`, src/options.rs; the page's form takes its defaults, limits
   * and messages from it); `memory`: its
   * size in bytes; `build`: 'threads' (www/pkg-threads, rayon's pool started on `threads`
   * threads) or 'single' (www/pkg, `threads` 1); `simd`: 'relaxed' (the folder's
   * webtune_relaxed_bg.wasm, where the engine has relaxed SIMD) or 'simd128' (webtune_bg.wasm)).
   * The worker is started as `worker.js?threads=N` and uses the threaded build when N > 1 and it
   * is cross-origin isolated; when that build cannot start it sends a `warning` with code
   * 'threads-fallback' first and loads the single one. `faults`: in the threaded build
   * `{memory: SharedArrayBuffer, address, state_offset, pool_thread_offset, length_offset,
   * message_offset, capacity, failed_allocation_address}` — the instance's memory and where a
   * thread's panic and a refused allocation are written (wasm `fault_block()`, src/web/fault.rs),
   * which the page watches (js/worker-watchdog.js); null in the single-threaded build.
   */
  READY: 'ready',
  /**
   * Answer to `parse`. `{type, id, result}` — `result`: `{ok, labels, class_counts,
   * train_count, val_count, diagnostics: [{field: 'train' | 'validation', line, message}]}`
   * (`line` 0: not about one line).
   */
  PARSED: 'parsed',
  /**
   * Model download progress, at most every 150 ms.
   * `{type, phase: 'download', files: [{name, loaded, total, fromCache}], loaded, total, mbps}`
   * — bytes per file and in all (`total` null while a size is unknown); `mbps`: MB/s so far.
   */
  PROGRESS: 'progress',
  /** `{type, message}` — a line for the status bar. */
  STATUS: 'status',
  /**
   * `{type, message, code?}` — something the user should know that does not stop the work
   * (`code`: a `WarningCode`, or undefined).
   */
  WARNING: 'warning',
  /**
   * `{type, message}` — where the runs train and why, in the core's words: no GPU can be had
   * (said once per worker), a strategy without GPU kernels, Auto's calibration verdict.
   */
  DEVICE_NOTE: 'device-note',
  /**
   * The model is loaded. `{type, info, label, fromCache, memory}` — `info`: `ModelInfo`
   * (src/session.rs: `num_layers, hidden_size, num_heads, vocab_size, num_parameters,
   * has_pooler, labels, notes`); `label`: where it came from, for display; `fromCache`: every
   * file came from the browser's cache.
   */
  MODEL: 'model',
  /**
   * The Train's plan, before any weights are read. `{type, plans}` — per strategy, in run
   * order, the core's `RunPlan` (src/plan.rs): `{strategy, total_steps, trainable_parameters,
   * work_total (GFLOP), work_per_step (GFLOP; 0 for frozen), peak_bytes, retained_bytes}`.
   */
  PLAN: 'plan',
  /**
   * `{type, events, unit, estimate, memory, allocated}` — consecutive events of the core (`CoreEvent` below,
   * fields as in README "Events"), in order: what one run emitted in one slice of work (a
   * slow step alone; up to ~15 ms of tiny frozen head steps together); `memory`: WebAssembly
   * memory size in bytes after them (the tab's high-water mark: it never shrinks);
   * `estimate`: the core's time left after them (src/progress.rs, wasm `WebProgress`):
   * `{strategy, rate (GFLOP/s), run_ms, train_ms, fraction (0..1), queued}` (null fields:
   * not known yet), or null between runs;
   * `allocated`: bytes the heap holds live after them; `unit`: null, or the progress within the
   * step (or chunk) under way after them, `{type: 'unit', strategy, step (the step under way, from 1; null in a chunk), units_done, units, fraction
   * (0..1 of its work), work_done, elapsed_ms}` (src/events.rs UnitProgress; `events` may then
   * be empty) — not a core event, no record keeps it.
   */
  EVENTS: 'events',
  /**
   * `{type, head}` — the Train's results record head, once its model is loaded and before its
   * first run starts: wasm `record_head` (src/record.rs `RecordHead`: `format`, `version`,
   * `created`, `producer`, `model: {name, info}`, `data: {train_size, val_size, labels,
   * class_counts, validation}`, `options` (every TrainOptions field), `strategies`). A record
   * is this head with `events`: the Train's core events in order.
   */
  RECORD_HEAD: 'record-head',
  /** Answer to `check-record`. `{type, id, problem}` — `problem`: null, or why the head cannot be read. */
  RECORD_CHECKED: 'record-checked',
  /** `{type, stopped, failed}` — the Train has ended (exactly one per `train`). */
  TRAIN_DONE: 'train-done',
  /**
   * Answer to `predict`. `{type, id, results}` — per finished run, in run order:
   * `{strategy, status: 'done' | 'stopped', prediction: {text, label, labels, probabilities}}`
   * or `{strategy, status, error}`. Empty when nothing has been trained.
   */
  PREDICTIONS: 'predictions',
  /**
   * Answer to `export`. `{type, id, strategy, files}` — `files`: `{'config.json',
   * 'tokenizer.json', 'model.safetensors'}` (with `adapter`: `{'adapter_config.json',
   * 'adapter_model.safetensors'}`) → Uint8Array (buffers transferred).
   */
  EXPORTED: 'exported',
  /**
   * Answer to `export-recipe`. `{type, id, strategy, files}` — `files`: relative path
   * (`train.py`, `recipe.json`, `data/train.tsv`, …) → Uint8Array (buffers transferred).
   */
  RECIPE: 'recipe',
  /** Answer to `load-saved`. `{type, id, savedId, info}` — `info`: the saved model's `ModelInfo`. */
  SAVED_LOADED: 'saved-loaded',
  /** Answer to `predict-saved`. `{type, id, savedId, prediction: {text, label, labels, probabilities}}`. */
  SAVED_PREDICTION: 'saved-prediction',
  /**
   * `{type, message, code?, id?, context?}` — `message`: for the user; `code`: an `ErrorCode`
   * or undefined; `id` and `context` (the type of the request, e.g. 'parse') when it answers
   * a request. After code 'crash' the worker refuses all work: the page must restart it.
   */
  ERROR: 'error',
});

/** `code` of an `error` message. */
export const ErrorCode = Object.freeze({
  /** The hub could not be reached (offline, blocked, no DNS). */
  HUB_UNREACHABLE: 'hub-unreachable',
  /** The hub answered with an HTTP error (404, 401, …). */
  HUB_HTTP: 'hub-http',
  /** A model file download was cut off or ended early. */
  DOWNLOAD_CUT: 'download-cut',
  /** The WebAssembly instance trapped (Rust panic, out of memory): restart the worker. */
  CRASH: 'crash',
  /** A `train` arrived while a Train was running. */
  BUSY: 'busy',
  /** The WebAssembly module could not be loaded at all. */
  INIT: 'init',
});

/** `code` of a `warning` message. */
export const WarningCode = Object.freeze({
  /** The threaded build could not load or start its thread pool: training runs on one thread. */
  THREADS_FALLBACK: 'threads-fallback',
});

/**
 * `type` of the core's events in an `events` message (src/events.rs, README "Events").
 * A run's stream: `start`, `progress`, an `embedding` snapshot before training (epoch 0), then
 * `step` and `progress` events, and after each epoch `epoch`, `embedding` and `layers`;
 * finally `done` — or `stopped` (Stop), or `error`. `work_*` are GFLOP (compute estimates, for time
 * left: rate = work_done / elapsed_ms).
 */
export const CoreEvent = Object.freeze({
  /**
   * `{strategy, epochs, total_steps, train_size, val_size, train_eval_size, labels, threads,
   * trainable_parameters, estimated_peak_bytes, work_total, device}` — the run begins
   * (`device`: 'cpu' or 'gpu: <adapter> (<backend>)')
   * (`train_eval_size`: training sentences each epoch's training accuracy is measured on).
   */
  START: 'start',
  /**
   * `{strategy, phase: 'cache' | 'evaluate', epoch, done, total, work_done, elapsed_ms}` — a
   * bounded chunk of non-training work: `done` of `total` sentences encoded for the frozen
   * encoder's cache, or evaluated after epoch `epoch`.
   */
  PROGRESS: 'progress',
  /** `{strategy, epoch, step, loss, lr, head_lr, work_done, elapsed_ms}` — one optimizer step. */
  STEP: 'step',
  /**
   * `{strategy, epoch, train_loss, train_accuracy, train_eval_size, val_loss, val_accuracy,
   * elapsed_ms}`.
   */
  EPOCH: 'epoch',
  /**
   * `{strategy, epoch, train, validation, separation, val_separation, decision_line}` — the
   * embedding map's snapshot (epoch 0: before training): each sentence's pooled vector on the
   * Train's shared plane (top two principal components of the pre-trained model's pooled
   * training vectors). `train`, `validation` (or null): `{index, label, predicted, x, y, text}`,
   * parallel arrays, at most 2,000 points each (fixed stratified samples of the training
   * sentences each epoch's accuracy is measured on, and of the validation set), `text` only in the
   * epoch-0 snapshot (later ones list the same points in the same order); `separation`
   * (`val_separation`): between-class over within-class variance in the full space;
   * `decision_line`: `[a, b, c]` (a·x + b·y + c = 0 on the map) for two classes, else null.
   */
  EMBEDDING: 'embedding',
  /**
   * `{strategy, epoch, blocks: [{name, change, relative}]}` — after each epoch, how far each
   * block moved from the pre-trained weights: `name` 'embeddings', 'layer 0' …, 'pooler',
   * 'classifier'; `change` ‖W − W₀‖ / ‖W₀‖, or for the new head (`relative` false) its norm ‖W‖.
   */
  LAYERS: 'layers',
  /**
   * `{strategy, train_accuracy, val_accuracy, per_class: [{label, precision, recall, f1,
   * support}], confusion (confusion[true][predicted]), evaluated_on: 'validation' | 'training'
   * | 'training sample', steps, threads, peak_bytes (the run's own peak heap beyond what existed
   * when it started), retained_bytes (what it keeps for Try it and Download), elapsed_ms}`.
   */
  DONE: 'done',
  /**
   * `{strategy, steps, retained_bytes, elapsed_ms, reason}` — Stop ended the run; its model is
   * kept. `reason` (absent after a Stop): why the run stopped by itself (its GPU was lost) and
   * which model it keeps.
   */
  STOPPED: 'stopped',
  /** `{message}` — the run failed. */
  ERROR: 'error',
});

/**
 * Exported files (`{ relative path: Uint8Array }`, as the wasm exports give them) as a message's
 * `files` and the buffers to transfer with it (the worker keeps no copy).
 */
export function filesMessage(exported) {
  const files = {};
  const transfer = [];
  for (const name of Object.keys(exported)) {
    files[name] = exported[name];
    transfer.push(exported[name].buffer);
  }
  return { files, transfer };
}
