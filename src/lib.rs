//! webtune: fine-tune a pre-trained BERT classifier with candle, natively or in the browser.
//!
//! The core is target-independent and does no I/O: it receives the bytes of the Hugging Face
//! trio (`config.json`, `tokenizer.json`, `model.safetensors`) and the training text, and gives
//! back typed [`events::Event`]s, predictions and exported bytes. Two thin shells drive it:
//! the native CLI (`src/bin/webtune`) and the wasm-bindgen API for the web worker (`web`).
//!
//! Map of the core:
//! - [`data`]: labelled-sentence parsing with line-level diagnostics, stratified split.
//! - [`config`]: `config.json` parsing; [`tokenize`]: tokenization and batching.
//! - [`checkpoint`]: safetensors loading (both naming schemes) and transformers-compatible export.
//! - [`model`]: the trainable `BertForSequenceClassification`, [`ops`]: custom ops with backward.
//! - [`optim`]: Adam/AdamW with a fused in-place update; [`train`]: the step-wise training run.
//! - [`session`]: the facade both shells use.
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod events;
pub mod model;
pub mod ops;
pub mod optim;
pub mod rng;
pub mod session;
pub mod tokenize;
pub mod train;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{Error, Result};
pub use events::Event;
pub use session::{prepare_data, ExportedModel, ModelInfo, PreparedData, Prediction, Run, Session, Strategy, TrainOptions};
