//! The core's error type: every failure a user can cause carries a message that says what is
//! wrong and what to do.
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// Bad model files (missing tensor, wrong shape, unreadable JSON...).
    #[error("model: {0}")]
    Model(String),
    /// Bad training/validation data; the message names the line.
    #[error("data: {0}")]
    Data(String),
    /// Bad options (strategy, learning rate, ...).
    #[error("options: {0}")]
    Options(String),
    /// No usable GPU, a limit the adapter cannot give, or a device lost mid-run.
    #[error("gpu: {0}")]
    Gpu(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("tensor: {0}")]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, Error>;
