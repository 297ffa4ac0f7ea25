//! The process's allocator: mimalloc, called the way its C API is fastest.
//!
//! The `mimalloc` crate's `MiMalloc` passes every request to
//! `mi_malloc_aligned`, which checks the alignment and the size class
//! before reaching the allocation `mi_malloc` does directly: about 25
//! instructions more per allocation, on an evaluator that makes one or two
//! per call (a thunk, a closure) and 24 million on the NixOS toplevel. Every
//! block mimalloc hands out is at least word aligned, so a request for
//! word alignment or less is a plain `mi_malloc`; only the rare stricter
//! ones take the aligned calls.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The alignment every mimalloc block has.
const WORD: usize = std::mem::size_of::<usize>();

/// mimalloc, with plain calls for word-aligned requests.
pub struct MiMalloc;

// SAFETY: each method forwards to the mimalloc call that gives memory of
// the requested size and at least the requested alignment (plain calls only
// for alignments mimalloc always gives), and frees with `mi_free`, which
// takes any of them.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD {
            mi::mi_malloc(layout.size()) as *mut u8
        } else {
            mi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD {
            mi::mi_zalloc(layout.size()) as *mut u8
        } else {
            mi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi::mi_free(ptr as *mut c_void);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= WORD {
            mi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
        } else {
            mi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_have_the_alignment_asked_for() {
        let a = MiMalloc;
        for (size, align) in [
            (1, 1),
            (8, 8),
            (24, 8),
            (72, 8),
            (16, 16),
            (40, 32),
            (1 << 20, 4096),
        ] {
            let layout = Layout::from_size_align(size, align).expect("valid layout");
            // SAFETY: non-zero sizes; each block is freed with its layout.
            unsafe {
                let p = a.alloc(layout);
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "{size} bytes aligned to {align}");
                let p = a.realloc(p, layout, size * 3);
                assert_eq!(
                    p as usize % align,
                    0,
                    "grown {size} bytes aligned to {align}"
                );
                a.dealloc(p, Layout::from_size_align(size * 3, align).expect("valid"));
                let z = a.alloc_zeroed(layout);
                assert_eq!(z as usize % align, 0);
                assert!(std::slice::from_raw_parts(z, size).iter().all(|b| *b == 0));
                a.dealloc(z, layout);
            }
        }
    }
}
