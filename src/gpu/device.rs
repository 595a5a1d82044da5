//! The GPU: an adapter and a device with the limits a model needs, and the one way results
//! come back to the CPU (an asynchronous map: on the web it resolves only after control returns
//! to the event loop; natively the device is polled until it does).
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

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
        // Browsers do not tell the adapter's name (it would identify the machine).
        let name = if self.name.trim().is_empty() { "unnamed adapter" } else { self.name.trim() };
        format!("{name} ({})", self.backend)
    }
}

/// A device and its queue. Not `Send`: every GPU object stays on the thread that made it (the
/// worker's own thread in the browser).
pub struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub info: GpuInfo,
    /// Set when the device is lost or reports an error nothing caught (then its results
    /// cannot be trusted), with what it said.
    lost: Arc<AtomicBool>,
    fault: Arc<Mutex<Option<String>>>,
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
        let (lost, fault) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(None)));
        let note = |lost: &Arc<AtomicBool>, fault: &Arc<Mutex<Option<String>>>| {
            let (lost, fault) = (lost.clone(), fault.clone());
            move |message: String| {
                lost.store(true, Ordering::SeqCst);
                fault.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(message);
            }
        };
        let on_error = note(&lost, &fault);
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| on_error(e.to_string())));
        let on_lost = note(&lost, &fault);
        device.set_device_lost_callback(move |reason, message| on_lost(format!("device lost ({reason:?}): {message}")));
        Ok(Gpu { device, queue, info, lost, fault })
    }

    /// [`Gpu::request`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn request_blocking(largest_tensor: u64) -> Result<Gpu> {
        pollster::block_on(Gpu::request(largest_tensor))
    }

    /// Whether the device was lost (destroyed, or the driver reset it): nothing on it is valid.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// What the device said when it was lost or failed.
    pub fn fault(&self) -> Option<String> {
        self.fault.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn mark_lost(&self, message: String) {
        self.lost.store(true, Ordering::SeqCst);
        self.fault.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(message);
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
            self.mark_lost(e.to_string());
            Error::Gpu(format!("the GPU device stopped: {e}"))
        })?;
        self.check()
    }

    fn lost_error(&self) -> Error {
        self.mark_lost("the read-back was dropped".into());
        Error::Gpu(format!("the GPU device was lost while reading back: {}", self.fault().unwrap_or_default()))
    }

    /// Fails once the device is lost or has reported an error.
    pub fn check(&self) -> Result<()> {
        match self.is_lost() {
            true => Err(Error::Gpu(self.fault().unwrap_or_else(|| "the GPU device was lost".into()))),
            false => Ok(()),
        }
    }

    /// Destroy the device (what a driver reset does; for the fault tests).
    pub fn destroy(&self) {
        self.device.destroy();
        self.mark_lost("the device was destroyed".into());
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
            Ok(()) if gpu.is_lost() => Err(gpu.check().expect_err("lost")),
            Ok(()) => {
                let values = bytemuck_f32(&self.staging.get_mapped_range(..));
                self.staging.unmap();
                Ok(Some(values[..self.len].to_vec()))
            }
            Err(e) => {
                gpu.mark_lost(e.to_string());
                Err(Error::Gpu(format!("reading back from the GPU failed: {e}; {}", gpu.fault().unwrap_or_default())))
            }
        }
    }
}
