//! How much heap the process (or the wasm instance) has allocated: a counting wrapper around the
//! system allocator, so a run can report its own peak memory and the tests can check that a
//! finished run released its buffers.
//!
//! Why by hand: in wasm the only other measure is `memory.buffer.byteLength`, which never
//! shrinks (it is the instance's high-water mark, not what is in use), and natively the RSS
//! includes freed pages the allocator keeps. Counting live bytes costs two relaxed atomic
//! operations per allocation.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct CountingAllocator;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// The size of the last allocation the system allocator refused (0: none yet). Nothing here
/// handles one (std's handler aborts): it is kept so that whoever sees the process die can say
/// why — the page reads it from the wasm memory ([`failed_allocation_address`]).
static FAILED: AtomicUsize = AtomicUsize::new(0);

fn added(size: usize) {
    let now = ALLOCATED.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are updated.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if ptr.is_null() {
            FAILED.store(layout.size(), Ordering::Relaxed);
        } else {
            added(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if ptr.is_null() {
            FAILED.store(layout.size(), Ordering::Relaxed);
        } else {
            added(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = System.realloc(ptr, layout, new_size);
        if new.is_null() {
            FAILED.store(new_size, Ordering::Relaxed);
        } else {
            ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
            added(new_size);
        }
        new
    }
}

/// Bytes allocated and not yet freed.
pub fn allocated_bytes() -> usize {
    ALLOCATED.load(Ordering::Relaxed)
}

/// The most bytes allocated at once since the last [`reset_peak`] (or the start).
pub fn peak_bytes() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Start a new peak measurement from what is allocated now.
pub fn reset_peak() {
    PEAK.store(allocated_bytes(), Ordering::Relaxed);
}

/// Where the size of the last refused allocation is kept (a `usize` read with a relaxed atomic
/// load): in wasm, an address in the instance's memory the page can read even while every
/// thread of the instance is stuck or dead.
pub fn failed_allocation_address() -> usize {
    FAILED.as_ptr() as usize
}
