//! A run's encoder on the GPU: moving it there before the start, bringing the weights of the
//! last finished step back for the CPU's readers (insight views, export, predictions), and a
//! device lost in the middle of a run, which stops it with the last weights that came back.
use send_wrapper::SendWrapper;

use super::{Run, RunState};
use crate::events::Event;
use crate::gpu::{Gpu, GpuExecutor, GpuModel};
use crate::optim::{Adam, AdamConfig};
use crate::{Error, Result};

impl Run {
    /// Run the encoder on `gpu` from here on (before the first step): its weights, gradients
    /// and moments move there; the head and its optimizer stay on the CPU. Fails, leaving the
    /// run on the CPU, when the strategy has no GPU kernels yet (LoRA) or an upload fails.
    pub fn use_gpu(&mut self, gpu: Gpu) -> Result<()> {
        if self.state != RunState::Start {
            return Err(Error::Gpu("a run moves to the GPU before it starts".into()));
        }
        let adam = AdamConfig { weight_decay: self.options.weight_decay, ..AdamConfig::default() };
        let model = GpuModel::upload(&gpu, &self.model, adam)?;
        let head_params = self.model.params.iter().filter(|p| p.is_head).cloned().collect();
        self.optimizer = Some(Adam::new(head_params, adam));
        self.device = format!("gpu: {}", gpu.info.describe());
        self.synced_head = self.head_snapshot()?;
        self.gpu = Some(SendWrapper::new(GpuExecutor::new(gpu, model)));
        Ok(())
    }

    /// On the GPU, bring the weights of the last finished step back into the CPU model (the
    /// insight views, export and predictions read them there). False while they are on their
    /// way (web); true at once on the CPU.
    pub(super) fn sync_weights(&mut self) -> Result<bool> {
        let Some(executor) = self.gpu.as_deref() else { return Ok(true) };
        if self.synced_step == self.global_step {
            return Ok(true);
        }
        let download = self.download.get_or_insert_with(|| SendWrapper::new(executor.model().start_download(&executor.gpu, &self.model)));
        if !download.try_finish(&executor.gpu)? {
            return Ok(false);
        }
        self.download = None;
        self.synced_step = self.global_step;
        self.synced_epoch = self.epoch;
        self.synced_head = self.head_snapshot()?;
        Ok(true)
    }

    /// The values of the parameters that train on the CPU beside a GPU encoder (pooler,
    /// classifier).
    fn head_snapshot(&self) -> Result<Vec<(candle_core::Tensor, Vec<f32>)>> {
        let head = self.optimizer.as_ref().map(|o| o.params()).unwrap_or_default();
        head.iter().map(|p| Ok((p.tensor.clone(), p.tensor.flatten_all()?.to_vec1::<f32>()?))).collect()
    }

    /// The GPU was lost (a driver reset, the browser's device loss): nothing on it survives, so
    /// the run stops with the model that last came back from it — after the last finished epoch
    /// (or the pre-trained one) with the head of that moment — and says so.
    pub(super) fn stop_after_device_loss(&mut self, error: &Error) -> Event {
        let restored = self.restore_synced_head();
        self.release_training_state();
        self.state = RunState::Finished;
        let kept = if self.synced_step == 0 { "the pre-trained model with its untrained head".to_string() } else { format!("the model of step {} (the end of epoch {})", self.synced_step, self.synced_epoch) };
        let mut reason = format!("the GPU was lost during step {} ({error}); the run stopped and keeps {kept}: train again, on the CPU if it happens again", self.global_step + 1);
        if let Err(e) = restored {
            reason.push_str(&format!(" (restoring the head failed: {e})"));
        }
        self.global_step = self.synced_step;
        let event = Event::Stopped { strategy: self.name(), steps: self.synced_step, retained_bytes: self.retained_bytes(), elapsed_ms: self.elapsed_ms(), reason: Some(reason) };
        self.done_event = Some(event.clone());
        event
    }

    /// The head's weights as they were at the last sync (they train on the CPU, the encoder
    /// on the GPU: after a device loss the two must be of the same step).
    fn restore_synced_head(&mut self) -> Result<()> {
        for (tensor, values) in &self.synced_head {
            crate::params::overwrite(tensor, values)?;
        }
        Ok(())
    }

    /// Test only: destroy the run's GPU device for real (what a driver reset or the browser's
    /// device loss does), to check the run's answer to it.
    pub fn destroy_gpu_for_tests(&self) {
        if let Some(executor) = self.gpu.as_deref() {
            executor.gpu.destroy();
        }
    }
}
