// The Training panel's form: the chosen strategies and hyper-parameters, read from the inputs,
// checked (with a sentence per problem), and turned into the `options` of a `train` message.
import { $, floatValue, intValue } from './dom.js';
import { state } from './state.js';
import { modelKey, modelSource } from './model-panel.js';
import { threadsProblem } from './threads.js';

/** The LoRA projections the form offers (`LoraOptions.targets` names, src/types.rs). */
export const LORA_TARGETS = ['query', 'key', 'value', 'attention_output', 'intermediate', 'output'];

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

/** What is wrong with the LoRA fields (checked only when LoRA is ticked). */
function loraProblems() {
  const problems = [];
  const r = intValue('lora-r');
  if (!r || r < 1) problems.push('LoRA rank must be a whole number ≥ 1 (e.g. 8).');
  const alpha = floatValue('lora-alpha');
  if (!(alpha > 0)) problems.push('LoRA alpha must be a number > 0 (PEFT\'s default is 8).');
  const dropout = floatValue('lora-dropout');
  if (dropout === null || !(dropout >= 0 && dropout < 1)) problems.push('Adapter dropout must be a number from 0 up to (not including) 1, e.g. 0 or 0.1.');
  const lr = floatValue('lora-lr');
  if (!(lr > 0)) problems.push('LoRA learning rate must be a number > 0 (e.g. 5e-4).');
  if (loraTargets().length === 0) problems.push('Choose at least one projection for the LoRA adapters (e.g. query and value).');
  return problems;
}

/** What is wrong with the options, one sentence each (empty when Train may go). */
export function optionsProblems() {
  const problems = [];
  const epochs = intValue('epochs');
  if (!epochs || epochs < 1) problems.push('Epochs must be a whole number ≥ 1.');
  const lr = floatValue('lr');
  if (!(lr > 0)) problems.push('Learning rate must be a number > 0 (e.g. 2e-5).');
  const headLr = floatValue('head-lr');
  if (headLr !== null && !(headLr > 0)) problems.push('Classifier head rate must be empty or a number > 0 (e.g. 1e-2).');
  const batch = intValue('batch');
  if (!batch || batch < 1) problems.push('Batch size must be a whole number ≥ 1.');
  const maxLen = intValue('max-len');
  if (!maxLen || maxLen < 2) problems.push('Max length must be a whole number ≥ 2.');
  if (intValue('seed') === null) problems.push('Seed must be a whole number ≥ 0.');
  if (intValue('eval-sample') === null) problems.push('Training accuracy sample must be a whole number ≥ 0 (0 = all training sentences).');
  const threads = threadsProblem();
  if (threads) problems.push(threads);
  if ($('s-top').checked) {
    const k = intValue('top-k');
    // The layer count is known once this model has been loaded (not for another choice).
    const layers = state.model && state.model.key === modelKey(modelSource()) ? state.model.info.num_layers : null;
    if (!k || k < 1) problems.push('Layers to train must be a whole number ≥ 1.');
    else if (layers && k > layers) problems.push(`Layers to train must be at most ${layers} (the model's layer count).`);
  }
  if ($('s-lora').checked) problems.push(...loraProblems());
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
