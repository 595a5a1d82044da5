//! The GPU executor: the same training step, evaluation and optimizer as [`crate::encoder`] and
//! [`crate::optim`], as WGSL compute kernels driven through `wgpu` — WebGPU in the browser's
//! worker, Vulkan / Metal / DX12 natively (Mesa's lavapipe in the tests).
//!
//! It mirrors the CPU executor against the same model description: which layers and rows a
//! pass computes, how far the backward reaches and the order dropout masks are drawn in come
//! from [`crate::encoder`]'s `structure` (the masks themselves are drawn there, on the CPU, and
//! uploaded, so a seed gives the same masks on both); which tensors train comes from the run's
//! [`crate::run_model::RunModel`]; the loss and its gradient from the CPU head (the logits are
//! read back anyway); the Adam constants and the clipping rule from [`crate::optim`].
//!
//! The files:
//! - `device`: the adapter, the device and its limits; reading buffers back (asynchronous);
//! - `tensor`: a buffer of f32 values on the device;
//! - `kernels` (+ `wgsl/`): the compute pipelines and one function per kernel launch;
//! - `model`: a run's weights, gradients and Adam moments, resident on the device;
//! - `layer`, `step`: the encoder's passes, unit by unit like the CPU's [`crate::encoder::TrainStep`].
mod device;
mod kernels;
mod layer;
mod model;
mod optim;
pub mod predict;
mod step;
mod tensor;

pub use device::{Gpu, GpuInfo, GpuRead};
pub use kernels::{square_partials, Kernels, Product, Recorder, RowGroups, View};
pub use model::{GpuDownload, GpuModel};
pub use optim::GpuUpdate;
pub use step::{GpuEvalPass, GpuExecutor, GpuTrainStep, Progress};
pub use tensor::GpuTensor;
