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

    /// Start reading `len` f32 values of `buffer` from `offset` (in values) back to the CPU,
    /// after everything submitted before: see [`GpuRead`].
    pub fn start_read(&self, buffer: &wgpu::Buffer, offset: usize, len: usize) -> GpuRead {
        let bytes = (len.max(1) * 4) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor { label: Some("read-back"), size: bytes, usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST, mapped_at_creation: false });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        if len > 0 {
            encoder.copy_buffer_to_buffer(buffer, (offset * 4) as u64, &staging, 0, bytes);
        }
        self.queue.submit([encoder.finish()]);
        let (sender, receiver) = futures_channel::oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |result| {
            let _ = sender.send(result);
        });
        GpuRead { staging, receiver, mapped: None, len }
    }

    /// Read `len` values of `buffer` from `offset`, waiting for them (asynchronously).
    pub async fn read(&self, buffer: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<f32>> {
        let mut read = self.start_read(buffer, offset, len);
        loop {
            if let Some(values) = read.try_take(self)? {
                return Ok(values);
            }
            // On the web the map resolves once control is back in the event loop.
            let result = (&mut read.receiver).await.map_err(|_| self.lost_error())?;
            read.mapped = Some(result);
        }
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

/// A read-back under way. Natively [`GpuRead::try_take`] waits for it; on the web it gives
/// `None` until the browser has mapped the buffer (after control returns to the event loop),
/// so a step can hand control back and be called again.
pub struct GpuRead {
    staging: wgpu::Buffer,
    receiver: futures_channel::oneshot::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
    mapped: Option<std::result::Result<(), wgpu::BufferAsyncError>>,
    len: usize,
}

impl GpuRead {
    /// The values once they are on the CPU; `None` while the map is pending (web only).
    pub fn try_take(&mut self, gpu: &Gpu) -> Result<Option<Vec<f32>>> {
        if self.mapped.is_none() {
            gpu.wait()?;
            match self.receiver.try_recv() {
                Ok(Some(result)) => self.mapped = Some(result),
                Ok(None) => return Ok(None),
                Err(_) => return Err(gpu.lost_error()),
            }
        }
        match self.mapped.take().expect("set above") {
            Ok(()) => {
                let values = bytemuck_f32(&self.staging.get_mapped_range(..));
                self.staging.unmap();
                Ok(Some(values[..self.len].to_vec()))
            }
            Err(e) => {
                gpu.lost.set(true);
                Err(Error::Gpu(format!("reading back from the GPU failed (the device was lost?): {e}")))
            }
        }
    }
}
