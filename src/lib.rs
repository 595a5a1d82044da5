//! webtune: fine-tune a pre-trained BERT classifier with candle, natively or in the browser.
//!
//! The core is target-independent and does no I/O: it receives the bytes of the Hugging Face
//! trio (`config.json`, `tokenizer.json`, `model.safetensors`) and the training text, and gives
//! back typed [`events::Event`]s, predictions and exported bytes. Two thin shells drive it:
//! the native CLI (`src/bin/webtune`) and the wasm-bindgen API for the web worker (`web`).
//!
//! Layers, top to bottom: a module uses only modules of the layers below its own
//! (`tests/layering.rs` reads this list and fails on an import that points up or sideways, and
//! on a module missing from it; keep one `- layer N: modules — what they are` line per layer).
//! - layer 11: web — the wasm-bindgen API for the web worker (wasm32 only).
//! - layer 10: [`session`], [`bench`], [`recipe`] — the facade both shells use; timed training
//!   steps; a run's recipe as a PyTorch script (on [`train`]'s data order).
//! - layer 9: [`train`], [`progress`] — the step-wise training run (phases, evaluation,
//!   snapshots, export); a Train's time left, from its events.
//! - layer 8: [`plan`], [`probe`], [`gpu`] — a run's estimated steps, compute and memory; one
//!   forward + backward with its details, for the golden tests; the GPU executor (WGSL kernels
//!   through wgpu) of the same model, mirroring [`encoder`] against its `structure`.
//! - layer 7: [`run_model`] — a run's weights: what a strategy trains.
//! - layer 6: [`model`], [`lora`], [`optim`] — the pre-trained `BertForSequenceClassification`
//!   (load, predict); LoRA adapters; Adam/AdamW and the learning-rate schedule.
//! - layer 5: [`encoder`] — the forward and backward passes, by hand.
//! - layer 4: [`kernels`], [`params`], [`checkpoint`], [`metrics`], [`record`] — gemm, LayerNorm,
//!   softmax, GELU, dropout on plain buffers; the parameter structure; safetensors load and
//!   transformers export; accuracy, per-class metrics, confusion; the results record's head.
//! - layer 3: [`tokenize`], [`data`], [`insight`] — tokenization and batching;
//!   labelled-sentence parsing and splits; the embedding map's geometry (PCA, separation).
//! - layer 2: [`types`], [`events`], [`config`], [`rng`], [`alloc_stats`], [`device`] — shared
//!   value types, the event wire format, config.json, seeded RNG, the counting allocator; the
//!   Device choice's labels for the page and the sentences that explain the device used.
//! - layer 1: [`options`], [`architecture`] — the training options' contract (the device's
//!   too): defaults, limits, messages; what differs between BERT, DistilBERT and RoBERTa (by
//!   config.json's model_type).
//! - layer 0: [`error`] — the crate's error type.
pub mod alloc_stats;
pub mod architecture;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
pub mod encoder;
pub mod error;
pub mod gpu;
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
