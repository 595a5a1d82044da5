//! webtune: fine-tune a pre-trained BERT classifier with candle, natively or in the browser.
//!
//! The core is target-independent and does no I/O: it receives the bytes of the Hugging Face
//! trio (`config.json`, `tokenizer.json`, `model.safetensors`) and the training text, and gives
//! back typed [`events::Event`]s, predictions and exported bytes. Two thin shells drive it:
//! the native CLI (`src/bin/webtune`) and the wasm-bindgen API for the web worker (`web`).
//!
//! Layers, top to bottom (a module only uses modules below it; `python3
//! ../shared/tools/layering.py` checks):
//! - [`session`]: the facade both shells use; [`bench`], [`probe`]: timed steps and gradient
//!   probes for the benchmark and the golden tests; [`recipe`]: a run's recipe as a PyTorch
//!   script (on [`train`]'s data order).
//! - [`train`]: the step-wise training run; [`progress`]: a Train's time left, from its events.
//! - [`plan`]: a run's estimated steps, compute and memory; [`run_model`]: a run's weights (what a
//!   strategy trains); [`optim`]: Adam/AdamW and the learning-rate schedule.
//! - [`model`]: the `BertForSequenceClassification` parameters; [`encoder`]: its forward and
//!   backward passes by hand, on [`kernels`] (gemm, LayerNorm, softmax, GELU, dropout).
//! - [`checkpoint`]: safetensors load and
//!   transformers export; [`tokenize`]: tokenization and batching; [`data`]: labelled-sentence
//!   parsing; [`metrics`]: accuracy, per-class metrics, confusion.
//! - [`types`], [`options`] (the training options' contract: defaults, limits, messages),
//!   [`events`], [`config`], [`rng`], [`error`]: shared value types; [`record`]: the results
//!   record's head (one wire format for the CLI and the page);
//!   [`alloc_stats`]: the counting allocator.
pub mod alloc_stats;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod encoder;
pub mod error;
pub mod events;
pub mod insight;
pub mod kernels;
pub mod lora;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod options;
pub mod params;
pub mod plan;
pub mod probe;
pub mod recipe;
pub mod progress;
pub mod record;
pub mod rng;
pub mod run_model;
pub mod session;
pub mod tokenize;
pub mod train;
pub mod types;

#[cfg(target_arch = "wasm32")]
pub mod web;

/// Every allocation is counted (see [`alloc_stats`]): runs report their own peak memory.
#[global_allocator]
static ALLOCATOR: alloc_stats::CountingAllocator = alloc_stats::CountingAllocator;

pub use error::{Error, Result};
pub use events::Event;
pub use session::{prepare_data, PreparedData, Session};
pub use train::Run;
pub use types::{ExportedModel, ModelInfo, Prediction, Schedule, Strategy, TrainOptions};
