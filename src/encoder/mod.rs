//! BERT's forward and backward passes, written out by hand over plain buffers with the
//! kernels of [`crate::kernels`]: transformers' `BertModel` + `BertForSequenceClassification`.
//!
//! Why by hand: candle 0.11's autograd drops gradients through its LayerNorm and softmax, and
//! gives every node a fresh zero-filled gradient tensor plus an add, transposed copies for
//! batched attention products, and a separate pass per element-wise op. Here each product
//! writes into its destination, weight gradients go straight into the gradient buffers the
//! optimizer reads ([`crate::params::GradSlot`]), the attention runs per (sentence, head) on
//! strided views of Q, K and V, and the loops split across threads (see [`crate::kernels`]).
//! `tests/golden.rs` checks the passes against PyTorch, `tests/gradcheck.rs` the backward
//! against finite differences.
//!
//! The files, top-down:
//! - `step`: a whole pass as a resumable sequence of units of at most one layer's work, eval
//!   ([`EvalPass`], [`encode_eval`]) or training ([`TrainStep`], [`train_step`]);
//! - `structure`: what any executor of this model decides the same way — each layer's `Shape`
//!   (the top layer for [CLS] alone), how far the backward reaches, and the order dropout
//!   masks are drawn in;
//! - `embeddings`, `layer` (with `attention`), `head` (pooler, classifier, loss): the model's
//!   parts, forward and backward;
//! - `linear` (Linear layers and their LoRA adapters), `norm` (LayerNorm): the parameterised
//!   operations the parts are made of.
mod attention;
mod embeddings;
mod head;
mod layer;
mod linear;
mod norm;
mod step;
pub(crate) mod structure;

pub use head::{head_logits, train_head};
pub use linear::{AdapterSet, Values};
pub use step::{encode_eval, train_step, EvalOutput, EvalPass, StepOutput, TrainModel, TrainStep};
pub use structure::DropoutSource;
pub(crate) use step::{check_length, head_unit, pooled_of, train_units, work_fraction, TrainUnit};
