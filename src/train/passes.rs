//! The piece of work a run has under way across several calls of
//! [`Run::advance`](super::Run::advance): a training step, or a chunk of encoding or
//! evaluation, on whichever executor the run uses.
use send_wrapper::SendWrapper;

use crate::encoder::{EvalPass, StepOutput, TrainStep};
use crate::gpu::{GpuEvalPass, GpuTrainStep, GpuUpdate};

/// A piece of work under way across several calls of [`Run::advance`](super::Run::advance).
pub(super) enum InProgress {
    /// An optimizer step: the encoder's units, then (`output` known) the optimizer (on the GPU,
    /// `update` while it is under way). Positions `position..end` of the epoch's order are its
    /// batch; `compute_ms` the time its calls took.
    Step { pass: StepPass, end: usize, output: Option<StepOutput>, compute_ms: f64, update: Option<SendWrapper<GpuUpdate>> },
    /// A chunk of encoding (frozen cache) or evaluation: sentences `next..end`, `work` GFLOP.
    Chunk { pass: ChunkPass, end: usize, work: f64 },
}

/// A training step on the run's executor.
pub(super) enum StepPass {
    Cpu(TrainStep),
    Gpu(SendWrapper<GpuTrainStep>),
}

/// An eval-mode pass on the run's executor.
pub(super) enum ChunkPass {
    Cpu(EvalPass),
    Gpu(SendWrapper<GpuEvalPass>),
}

impl StepPass {
    pub(super) fn units(&self) -> usize {
        match self {
            StepPass::Cpu(p) => p.units(),
            StepPass::Gpu(p) => p.units(),
        }
    }

    pub(super) fn units_done(&self) -> usize {
        match self {
            StepPass::Cpu(p) => p.units_done(),
            StepPass::Gpu(p) => p.units_done(),
        }
    }

    pub(super) fn work_fraction(&self) -> f64 {
        match self {
            StepPass::Cpu(p) => p.work_fraction(),
            StepPass::Gpu(p) => p.work_fraction(),
        }
    }
}

impl ChunkPass {
    pub(super) fn units(&self) -> usize {
        match self {
            ChunkPass::Cpu(p) => p.units(),
            ChunkPass::Gpu(p) => p.units(),
        }
    }

    pub(super) fn units_done(&self) -> usize {
        match self {
            ChunkPass::Cpu(p) => p.units_done(),
            ChunkPass::Gpu(p) => p.units_done(),
        }
    }
}
