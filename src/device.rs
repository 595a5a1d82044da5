//! Where a run trains, for the page: the "Device" choice as a form shows it (the `device`
//! option's values, default and message from [`crate::options`]'s spec, with their labels) and
//! the sentences that explain the device used — a GPU that cannot be had, the calibration's
//! verdict. The page reads them through the wasm API (`device_spec`, `gpu_unavailable_message`,
//! `calibration_verdict`).
use serde::Serialize;

/// The label the page shows for each value of the `device` option ([`crate::options::Device`],
/// whose values, default and message are the options' spec's).
fn label(value: &str) -> &'static str {
    match value {
        "gpu" => "GPU (WebGPU)",
        "cpu" => "CPU",
        _ => "Auto",
    }
}

/// The choice's contract for a form: its values with their labels, the default, the message.
#[derive(Debug, Serialize)]
pub struct DeviceSpec {
    pub name: &'static str,
    pub values: Vec<&'static str>,
    pub labels: Vec<&'static str>,
    pub default: &'static str,
    pub message: &'static str,
}

pub fn spec() -> DeviceSpec {
    let option = crate::options::field_spec("device");
    DeviceSpec {
        name: option.name,
        labels: option.values.iter().map(|v| label(v)).collect(),
        values: option.values,
        default: match crate::options::Device::default() {
            crate::options::Device::Auto => "auto",
            crate::options::Device::Gpu => "gpu",
            crate::options::Device::Cpu => "cpu",
        },
        message: option.message,
    }
}

/// Said once (not per run) when the GPU was asked for, or Auto would have tried it, and none
/// can be had: `reason` is the GPU's own error (no WebGPU, no adapter, a refused limit).
pub fn gpu_unavailable(reason: &str) -> String {
    // wgpu lists every backend it was not built with after a `;`: the first clause says it.
    let reason = reason.split(';').next().unwrap_or(reason).trim();
    format!("No usable GPU here ({reason}): training runs on the CPU (same results, CPU speed).")
}

/// Said when a strategy has no GPU kernels yet and runs on the CPU although the GPU was chosen.
pub fn strategy_on_cpu(strategy: &str, reason: &str) -> String {
    format!("{strategy} trains on the CPU: {reason}")
}

/// Auto's choice after timing the same work on both, and why.
#[derive(Debug, Serialize, PartialEq)]
pub struct Verdict {
    /// "gpu" or "cpu".
    pub device: &'static str,
    pub message: String,
}

/// Auto's verdict from the two calibrations' speeds (work per millisecond, in the same unit;
/// 0 when a device did no work in its time). The GPU must be clearly faster: a tie keeps the
/// CPU, whose run cannot be lost with a device.
pub fn verdict(cpu_rate: f64, gpu_rate: f64, what: &str) -> Verdict {
    let ratio = if cpu_rate > 0.0 { gpu_rate / cpu_rate } else { f64::INFINITY };
    if gpu_rate > 0.0 && ratio >= 1.1 {
        let faster = if ratio.is_finite() { format!("{ratio:.1}× faster than") } else { "faster than".into() };
        return Verdict { device: "gpu", message: format!("Auto chose the GPU: it ran {what} {faster} the CPU.") };
    }
    if gpu_rate <= 0.0 {
        return Verdict { device: "cpu", message: format!("Auto chose the CPU: the GPU did not finish {what} in its calibration time.") };
    }
    let compared = if ratio >= 0.9 {
        "about as fast as".to_string()
    } else {
        format!("{:.1}× slower than", 1.0 / ratio)
    };
    Verdict { device: "cpu", message: format!("Auto chose the CPU: the GPU ran {what} {compared} the CPU.") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_is_the_options_and_names_a_bad_value() {
        use crate::options::Device;
        assert_eq!("gpu".parse::<Device>().unwrap(), Device::Gpu);
        assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
        let e = "tpu".parse::<Device>().unwrap_err().to_string();
        assert!(e.contains("auto") && e.contains("gpu or cpu") && e.contains("tpu"), "{e}");
        assert_eq!(spec().default, "auto");
        assert_eq!(spec().values, ["auto", "gpu", "cpu"]);
        assert_eq!(spec().labels, ["Auto", "GPU (WebGPU)", "CPU"]);
        let said = gpu_unavailable("no GPU adapter: No suitable graphics adapter found; noop support not compiled in");
        assert_eq!(said, "No usable GPU here (no GPU adapter: No suitable graphics adapter found): training runs on the CPU (same results, CPU speed).");
    }

    #[test]
    fn verdict_needs_a_clearly_faster_gpu() {
        assert_eq!(verdict(1.0, 3.0, "a step").device, "gpu");
        assert!(verdict(1.0, 3.0, "a step").message.contains("3.0× faster"), "{:?}", verdict(1.0, 3.0, "a step"));
        assert_eq!(verdict(1.0, 1.05, "a step").device, "cpu");
        let slow = verdict(2.0, 0.5, "a step");
        assert_eq!(slow.device, "cpu");
        assert!(slow.message.contains("4.0× slower"), "{}", slow.message);
        assert_eq!(verdict(1.0, 0.0, "a step").device, "cpu");
        assert!(verdict(1.0, 1.0, "a step").message.contains("about as fast as"));
    }
}
