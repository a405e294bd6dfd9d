//! A global allocator that can count live heap bytes, for the memory figures (bytes per
//! registered watch, per waiting lock contender). RSS moves in pages and the allocator keeps
//! freed memory, so RSS alone cannot resolve a few hundred bytes per item; the live-heap count
//! can.
//!
//! Counting is off unless [`enable`] was called (first thing in `main`, before any allocation
//! worth counting), so throughput runs pay one relaxed load per allocation, nothing more.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

pub struct Counting;

static ENABLED: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters move.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() && ENABLED.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() && ENABLED.load(Ordering::Relaxed) {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        if ENABLED.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() && ENABLED.load(Ordering::Relaxed) {
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
}

/// Starts counting. Memory allocated before is not counted (and freeing it later makes the
/// count drift down), so call it before the allocations a figure depends on.
pub fn enable() {
    ENABLED.store(true, Ordering::SeqCst);
}

/// Live heap bytes allocated since [`enable`] (requested sizes, not allocator overhead).
pub fn live_bytes() -> i64 {
    LIVE.load(Ordering::SeqCst)
}
