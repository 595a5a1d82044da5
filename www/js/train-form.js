// The Training panel's form: the chosen strategies and hyper-parameters, read from the inputs,
// checked (with a sentence per problem), and turned into the `options` of a `train` message.
// The options' contract is the core's (src/options.rs): the worker's `ready` message carries
// its spec (wasm `option_spec()`), from which applyOptionSpec fills every input's default and
// limits once, and optionsProblems takes each bad value's message. index.html keeps only the
// form's structure and labels.
import { $, floatValue, intValue } from './dom.js';
import { state } from './state.js';
import { modelSource } from './model-panel.js';
import { sourceKey } from './model-source.js';
import { threadsProblem } from './threads.js';

/** The form's number inputs, by the option (spec name) each one holds. */
const INPUTS = {
  epochs: 'epochs',
  learning_rate: 'lr',
  head_learning_rate: 'head-lr',
  batch_size: 'batch',
  max_len: 'max-len',
  seed: 'seed',
  train_eval_sample: 'eval-sample',
  top_k: 'top-k',
  lora_rank: 'lora-r',
  'lora.alpha': 'lora-alpha',
  'lora.dropout': 'lora-dropout',
  'lora.learning_rate': 'lora-lr',
};

/** The LoRA projections the form offers (its checkboxes' values, `LoraOptions.targets` names). */
export const LORA_TARGETS = Array.from(document.querySelectorAll('.lora-targets input[type="checkbox"]'), (box) => box.value);

let spec = null; // option name → FieldSpec (src/options.rs)
let deviceSpec = null; // the "Device" choice (src/device.rs)

/**
 * The core's "Device" choice (`{values, labels, default}`, from the worker's `ready` message):
 * fill the select once per page (a restarted worker must not undo a choice).
 */
export function applyDeviceSpec(fields) {
  if (deviceSpec || !fields) return;
  deviceSpec = fields;
  const select = $('device');
  select.replaceChildren(...fields.values.map((value, i) => {
    const option = document.createElement('option');
    option.value = value;
    option.textContent = fields.labels[i];
    return option;
  }));
  select.value = fields.default;
}

/** The Device choice of a `train` message (one of the spec's values). */
export function deviceChoice() {
  return deviceSpec ? $('device').value : undefined;
}

/**
 * The core's option spec (`FieldSpec[]`, from the worker's `ready` message): set each input's
 * default, min, max and step. Once per page: a restarted worker must not undo what was typed.
 */
export function applyOptionSpec(fields) {
  if (spec || !fields) return;
  spec = Object.fromEntries(fields.map((f) => [f.name, f]));
  for (const [name, id] of Object.entries(INPUTS)) {
    const f = spec[name];
    const input = $(id);
    if (f.min !== null) input.min = String(f.min);
    if (f.max !== null) input.max = String(f.max);
    input.step = f.step !== null ? String(f.step) : f.kind === 'whole' ? '1' : 'any';
    input.value = f.default_text;
  }
  $('pad-max').checked = spec.pad_to_max_len.default;
  for (const t of LORA_TARGETS) $(`lora-t-${t}`).checked = spec['lora.targets'].default.includes(t);
}

/** The option's message as a sentence for the page. */
const sentence = (message) => `${message[0].toUpperCase()}${message.slice(1)}.`;

/** What is wrong with the option `name`'s input, by the core's rule (null: nothing). */
function inputProblem(name) {
  const f = spec[name];
  const raw = $(INPUTS[name]).value.trim();
  if (raw === '') return f.optional ? null : sentence(f.message);
  const v = f.kind === 'whole' ? (/^\d+$/.test(raw) ? Number(raw) : NaN) : Number(raw);
  const above = f.min === null || (f.min_exclusive ? v > f.min : v >= f.min);
  const below = f.max === null || (f.max_exclusive ? v < f.max : v <= f.max);
  return Number.isFinite(v) && above && below ? null : sentence(f.message);
}

/** The ticked strategies in run order: 'frozen', 'top:K', 'lora:R', 'full'. */
export function selectedStrategies() {
  const s = [];
  if ($('s-frozen').checked) s.push('frozen');
  if ($('s-top').checked) s.push(`top:${intValue('top-k') ?? 0}`);
  if ($('s-lora').checked) s.push(`lora:${intValue('lora-r') ?? 0}`);
  if ($('s-full').checked) s.push('full');
  return s;
}

/** The ticked LoRA projections, in the form's order. */
const loraTargets = () => LORA_TARGETS.filter((t) => $(`lora-t-${t}`).checked);

/** What is wrong with the options, one sentence each (empty when Train may go). */
export function optionsProblems() {
  if (!spec) return ['Loading the WebAssembly worker…'];
  const problems = [];
  for (const name of ['epochs', 'learning_rate', 'head_learning_rate', 'batch_size', 'max_len', 'seed', 'train_eval_sample']) {
    const p = inputProblem(name);
    if (p) problems.push(p);
  }
  const threads = threadsProblem();
  if (threads) problems.push(threads);
  if ($('s-top').checked) {
    const k = intValue('top-k');
    // The layer count is known once this model has been loaded (not for another choice).
    const layers = state.model && state.model.key === sourceKey(modelSource()) ? state.model.info.num_layers : null;
    const p = inputProblem('top_k');
    if (p) problems.push(p);
    else if (layers && k > layers) problems.push(`Layers to train must be at most ${layers} (the model's layer count).`);
  }
  if ($('s-lora').checked) {
    for (const name of ['lora_rank', 'lora.alpha', 'lora.dropout', 'lora.learning_rate']) {
      const p = inputProblem(name);
      if (p) problems.push(p);
    }
    if (loraTargets().length === 0) problems.push(sentence(spec['lora.targets'].message));
  }
  if (selectedStrategies().length === 0) problems.push('Choose at least one strategy.');
  return problems;
}

/** The `options` of a `train` message (TrainOptions fields; `lora` only when LoRA is ticked). */
export function trainOptions() {
  const lora = $('s-lora').checked ? {
    alpha: floatValue('lora-alpha'),
    dropout: floatValue('lora-dropout'),
    targets: loraTargets(),
    learning_rate: floatValue('lora-lr'),
  } : undefined;
  return {
    epochs: intValue('epochs'),
    learning_rate: floatValue('lr'),
    head_learning_rate: floatValue('head-lr'),
    batch_size: intValue('batch'),
    max_len: intValue('max-len'),
    pad_to_max_len: $('pad-max').checked,
    seed: intValue('seed'),
    train_eval_sample: intValue('eval-sample'),
    ...(lora ? { lora } : {}),
  };
}
