//! A tensor on the GPU: a storage buffer of f32 values (or u32 ids) that lives as long as its
//! handles. Uploads go through the queue; reading back is [`super::Gpu::read`].
use std::rc::Rc;

use super::Gpu;
use crate::Result;

/// A buffer of `len` values on the device (shared handle: clones are the same buffer).
#[derive(Clone)]
pub struct GpuTensor {
    pub(crate) buffer: Rc<wgpu::Buffer>,
    pub len: usize,
}

const USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

impl GpuTensor {
    /// `len` zeros. (Buffers of 0 values get one, so every kernel can bind them.)
    pub fn zeros(gpu: &Gpu, len: usize) -> GpuTensor {
        let size = (len.max(1) * 4) as u64;
        let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor { label: None, size, usage: USAGE, mapped_at_creation: false });
        GpuTensor { buffer: Rc::new(buffer), len }
    }

    /// A copy of `values` on the device.
    pub fn from_slice(gpu: &Gpu, values: &[f32]) -> GpuTensor {
        let t = GpuTensor::zeros(gpu, values.len());
        t.write(gpu, values);
        t
    }

    /// u32 values (token ids, positions, index lists) on the device.
    pub fn from_u32(gpu: &Gpu, values: &[u32]) -> GpuTensor {
        let t = GpuTensor::zeros(gpu, values.len());
        if !values.is_empty() {
            gpu.queue.write_buffer(&t.buffer, 0, &to_bytes(values.iter().map(|v| v.to_le_bytes())));
        }
        t
    }

    /// Overwrite the first `values.len()` values.
    pub fn write(&self, gpu: &Gpu, values: &[f32]) {
        if !values.is_empty() {
            gpu.queue.write_buffer(&self.buffer, 0, &to_bytes(values.iter().map(|v| v.to_le_bytes())));
        }
    }

    /// All values, back on the CPU.
    pub async fn read(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        gpu.read(&self.buffer, 0, self.len).await
    }

    /// [`GpuTensor::read`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_blocking(&self, gpu: &Gpu) -> Result<Vec<f32>> {
        pollster::block_on(self.read(gpu))
    }

    pub fn bytes(&self) -> u64 {
        (self.len * 4) as u64
    }
}

fn to_bytes(words: impl Iterator<Item = [u8; 4]>) -> Vec<u8> {
    words.flatten().collect()
}
