//! The GPU: an adapter and a device with the limits a model needs, and the one way results
//! come back to the CPU (an asynchronous map: on the web it resolves only after control returns
//! to the event loop; natively the device is polled until it does).
use std::cell::Cell;
use std::rc::Rc;

use crate::{Error, Result};

/// What the adapter is, for messages and the results record.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GpuInfo {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub max_buffer_size: u64,
    pub max_storage_binding: u64,
}

impl GpuInfo {
    /// "NVIDIA H100 (Vulkan)": the adapter's name and backend.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.name, self.backend)
    }
}

/// A device and its queue. Not `Send`: every GPU object stays on the thread that made it (the
/// worker's own thread in the browser).
pub struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub info: GpuInfo,
    lost: Rc<Cell<bool>>,
}

impl Gpu {
    /// The default adapter's device, with storage bindings of at least `largest_tensor` bytes
    /// (and buffers to match). Fails with a message naming what is missing: no WebGPU, no
    /// adapter, or an adapter whose limits are too small for the model.
    pub async fn request(largest_tensor: u64) -> Result<Gpu> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let options = wgpu::RequestAdapterOptions { power_preference: wgpu::PowerPreference::HighPerformance, ..Default::default() };
        let adapter = instance.request_adapter(&options).await.map_err(|e| Error::Gpu(format!("no GPU adapter: {e}")))?;
        let available = adapter.limits();
        let needed = largest_tensor.max(wgpu::Limits::defaults().max_storage_buffer_binding_size as u64);
        if (available.max_storage_buffer_binding_size as u64) < largest_tensor || available.max_buffer_size < largest_tensor {
            return Err(Error::Gpu(format!(
                "the GPU adapter allows buffers of {} MB (storage bindings of {} MB), and this model needs {} MB for its largest tensor",
                available.max_buffer_size >> 20,
                (available.max_storage_buffer_binding_size as u64) >> 20,
                largest_tensor >> 20
            )));
        }
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: needed.min(available.max_storage_buffer_binding_size as u64) as _,
            max_buffer_size: needed.max(wgpu::Limits::defaults().max_buffer_size).min(available.max_buffer_size),
            max_storage_buffers_per_shader_stage: available.max_storage_buffers_per_shader_stage.min(10),
            max_compute_workgroups_per_dimension: available.max_compute_workgroups_per_dimension,
            ..wgpu::Limits::defaults()
        };
        let descriptor = wgpu::DeviceDescriptor { label: Some("webtune"), required_limits: limits, ..Default::default() };
        let (device, queue) = adapter.request_device(&descriptor).await.map_err(|e| Error::Gpu(format!("the GPU adapter refused a device: {e}")))?;
        let raw = adapter.get_info();
        let info = GpuInfo {
            name: raw.name.clone(),
            backend: format!("{:?}", raw.backend),
            device_type: format!("{:?}", raw.device_type),
            max_buffer_size: device.limits().max_buffer_size,
            max_storage_binding: device.limits().max_storage_buffer_binding_size as u64,
        };
        let lost = Rc::new(Cell::new(false));
        Ok(Gpu { device, queue, info, lost })
    }

    /// [`Gpu::request`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn request_blocking(largest_tensor: u64) -> Result<Gpu> {
        pollster::block_on(Gpu::request(largest_tensor))
    }

    /// Whether the device was lost (destroyed, or the driver reset it): nothing on it is valid.
    pub fn is_lost(&self) -> bool {
        self.lost.get()
    }

    /// Read `len` f32 values of `buffer` from `offset` (in values) back to the CPU. Everything
    /// submitted before finishes first.
    pub async fn read(&self, buffer: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<f32>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let bytes = (len * 4) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor { label: Some("read-back"), size: bytes, usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST, mapped_at_creation: false });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, (offset * 4) as u64, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let (sender, receiver) = futures_channel::oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |result| {
            let _ = sender.send(result);
        });
        self.wait()?;
        let mapped = receiver.await.map_err(|_| self.lost_error())?;
        mapped.map_err(|e| {
            self.lost.set(true);
            Error::Gpu(format!("reading back from the GPU failed: {e}"))
        })?;
        let values = bytemuck_f32(&staging.get_mapped_range(..));
        staging.unmap();
        Ok(values)
    }

    /// Natively, block until the queue is idle (the web's event loop does this by itself).
    fn wait(&self) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| {
            self.lost.set(true);
            Error::Gpu(format!("the GPU device stopped: {e}"))
        })?;
        Ok(())
    }

    fn lost_error(&self) -> Error {
        self.lost.set(true);
        Error::Gpu("the GPU device was lost while reading back".into())
    }

    /// Destroy the device (what a driver reset does; for the fault tests).
    pub fn destroy(&self) {
        self.device.destroy();
        self.lost.set(true);
    }
}

fn bytemuck_f32(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}
