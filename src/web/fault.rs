//! Faults that kill a thread of the instance, written where the page can read them.
//!
//! Why: in the threaded build a training step runs on a rayon pool thread
//! ([`crate::kernels::on_pool`]) while the worker's own thread sleeps in `Atomics.wait` until
//! the step is done. A panic there (`panic = "abort"`: the pool thread traps) or an allocation
//! the heap cannot give (std's handler aborts) ends that pool thread, and the worker sleeps
//! forever: nothing reaches the page through the worker. But the instance's memory is a
//! `SharedArrayBuffer` the page can hold too, so the panic hook writes the panic into a fixed
//! block of it ([`FaultBlock`], no allocation), the counting allocator keeps the size of a
//! refused allocation ([`crate::alloc_stats::failed_allocation_address`]), and the page
//! (`www/js/worker-watchdog.js`) watches both and restarts the worker. In the single-threaded
//! build every fault traps the worker's own thread, whose JS sees the `RuntimeError`: the block
//! is written there too, and the worker's crash path reports it.
//!
//! JS API: `fault_block()` → `{ address, state_offset, pool_thread_offset, length_offset,
//! message_offset, capacity, failed_allocation_address }` (byte addresses and offsets in the
//! wasm memory; `state` is 0 until a panic, 1 while it is written, 2 once its message is
//! complete; `pool_thread` 1 when it was a pool thread; `length` bytes of UTF-8 at `message`);
//! `fault_on_pool_for_tests(kind)` (`"panic"`, `"out-of-memory"` or `"hang"`): the next training step
//! fails so, on a pool thread in the threaded build (for the `--test-faults` end-to-end tests).
use std::cell::UnsafeCell;
use std::fmt::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::alloc_stats;
use crate::kernels::{self, TestFault};

/// Bytes of the panic message kept (the start of it: location, then the message).
const MESSAGE_CAPACITY: usize = 1024;

const NONE: u32 = 0;
const WRITING: u32 = 1;
const WRITTEN: u32 = 2;

/// The first panic of the instance, laid out for the page (`#[repr(C)]`: fixed offsets).
#[repr(C)]
struct FaultBlock {
    state: AtomicU32,
    pool_thread: AtomicU32,
    length: AtomicU32,
    message: UnsafeCell<[u8; MESSAGE_CAPACITY]>,
}

// SAFETY: `message` is written only by the one thread that moved `state` from NONE to WRITING,
// and read (by the page) only once `state` is WRITTEN.
unsafe impl Sync for FaultBlock {}

static FAULT: FaultBlock = FaultBlock {
    state: AtomicU32::new(NONE),
    pool_thread: AtomicU32::new(0),
    length: AtomicU32::new(0),
    message: UnsafeCell::new([0; MESSAGE_CAPACITY]),
};

/// Writes into a fixed buffer, dropping what does not fit (cut at a character boundary).
struct FixedWriter<'a> {
    buffer: &'a mut [u8],
    length: usize,
}

impl Write for FixedWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = self.buffer.len() - self.length;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buffer[self.length..self.length + take].copy_from_slice(&s.as_bytes()[..take]);
        self.length += take;
        Ok(())
    }
}

/// Keep the first panic in [`FAULT`]; later ones (another thread at the same time) are dropped.
fn record_panic(info: &std::panic::PanicHookInfo<'_>) {
    if FAULT.state.compare_exchange(NONE, WRITING, Ordering::AcqRel, Ordering::Relaxed).is_err() {
        return;
    }
    // SAFETY: this thread alone moved `state` to WRITING (see `impl Sync`).
    let buffer = unsafe { &mut *FAULT.message.get() };
    let mut writer = FixedWriter { buffer, length: 0 };
    let _ = write!(writer, "{info}");
    FAULT.pool_thread.store(u32::from(rayon::current_thread_index().is_some()), Ordering::Relaxed);
    FAULT.length.store(writer.length as u32, Ordering::Relaxed);
    FAULT.state.store(WRITTEN, Ordering::Release);
}

/// The panic hook of every thread of the instance (a hook is global, pool threads included):
/// the panic goes into [`FAULT`] first — the one thing that must not fail — then to the
/// console with its stack (console_error_panic_hook).
pub fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            record_panic(info);
            console_error_panic_hook::hook(info);
        }));
    });
}

#[derive(Serialize)]
struct FaultLayout {
    address: usize,
    state_offset: usize,
    pool_thread_offset: usize,
    length_offset: usize,
    message_offset: usize,
    capacity: usize,
    failed_allocation_address: usize,
}

/// Where the page finds the fault block and the size of a refused allocation (see the module doc).
#[wasm_bindgen]
pub fn fault_block() -> Result<JsValue, JsError> {
    super::to_js(&FaultLayout {
        address: &FAULT as *const FaultBlock as usize,
        state_offset: std::mem::offset_of!(FaultBlock, state),
        pool_thread_offset: std::mem::offset_of!(FaultBlock, pool_thread),
        length_offset: std::mem::offset_of!(FaultBlock, length),
        message_offset: std::mem::offset_of!(FaultBlock, message),
        capacity: MESSAGE_CAPACITY,
        failed_allocation_address: alloc_stats::failed_allocation_address(),
    })
}

/// Test only: the next training step fails with `kind` (`"panic"`: a Rust panic;
/// `"out-of-memory"`: an allocation the heap cannot give; `"hang"`: it never returns) on the
/// thread it runs on — a pool
/// thread in the threaded build. Only the `--test-faults` end-to-end tests send the worker the
/// message that calls it.
#[wasm_bindgen]
pub fn fault_on_pool_for_tests(kind: &str) -> Result<(), JsError> {
    let fault = match kind {
        "panic" => TestFault::Panic,
        "out-of-memory" => TestFault::OutOfMemory,
        "hang" => TestFault::Hang,
        other => return Err(JsError::new(&format!("fault_on_pool_for_tests: unknown kind {other:?} (panic, out-of-memory, hang)"))),
    };
    kernels::request_fault_on_pool_for_tests(fault);
    Ok(())
}
