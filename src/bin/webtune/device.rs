//! `--device auto|gpu|cpu` (the core's `device` option, webtune::options::Device): which
//! executor a command uses, and the one line that says which and why.
//!
//! `auto` takes a hardware GPU (Vulkan, Metal or DX12) when the adapter gives one; a software adapter (Mesa's lavapipe, SwiftShader: the GPU's
//! kernels run on the CPU, far slower than the CPU executor) does not count. `gpu` takes any
//! adapter, or fails with what is missing.
use webtune::gpu::Gpu;
use webtune::options::Device;

use crate::CliResult;

/// The `--device` help (clap adds the default, from the core's spec).
pub const HELP: &str = "Where the encoder runs: auto = a hardware GPU when there is one, else the CPU (no calibration: small models at short lengths can be faster on the CPU; compare with `webtune bench --device gpu`); gpu = the GPU adapter, or an error naming what is missing; cpu";

/// What a command runs on, and why (one line for stderr).
pub struct Choice {
    pub gpu: Option<Gpu>,
    pub reason: String,
}

/// The bytes of the largest tensor a model of `config` puts on the GPU (its word embeddings or
/// a feed-forward weight), for the adapter's buffer limits.
pub fn largest_tensor(config: &webtune::config::BertConfig) -> u64 {
    (config.vocab_size.max(config.intermediate_size).max(config.max_position_embeddings) * config.hidden_size * 4) as u64
}

/// Decide for `device`; `strategy` is the run's (None for predictions). `gpu` fails when no
/// adapter can be used; `auto` then takes the CPU and says why.
pub fn choose(device: Device, largest_tensor: u64) -> CliResult<Choice> {
    let cpu = |why: String| Ok(Choice { gpu: None, reason: format!("device: cpu ({why})") });
    match device {
        Device::Cpu => cpu("--device cpu".into()),
        Device::Gpu => {
            let gpu = Gpu::request_blocking(largest_tensor).map_err(|e| format!("--device gpu: {e}; use --device cpu (or auto, which falls back to the CPU)"))?;
            let software = if is_software(&gpu) { "; a software adapter: correct, but slower than the CPU" } else { "" };
            let reason = format!("device: gpu, {} (--device gpu{software})", gpu.info.describe());
            Ok(Choice { gpu: Some(gpu), reason })
        }
        Device::Auto => {
            match Gpu::request_blocking(largest_tensor) {
                Err(e) => cpu(format!("auto: no usable GPU: {e}")),
                Ok(gpu) if is_software(&gpu) => cpu(format!("auto: the adapter {} is a software renderer, slower than the CPU; --device gpu uses it anyway", gpu.info.describe())),
                Ok(gpu) => {
                    let reason = format!("device: gpu, {} (auto: a hardware GPU)", gpu.info.describe());
                    Ok(Choice { gpu: Some(gpu), reason })
                }
            }
        }
    }
}

/// Whether the adapter runs on the CPU (lavapipe, SwiftShader).
fn is_software(gpu: &Gpu) -> bool {
    gpu.info.device_type == "Cpu"
}

/// The `--device` value as clap parses it, with the core's message for a bad one.
pub fn parse(text: &str) -> Result<Device, String> {
    text.parse().map_err(|e: webtune::Error| e.to_string())
}
