//! The one allocation of a string: a header, then the bytes.
//!
//! ```text
//! offset 0   reference count   Cell<usize>
//! offset 8   length in bytes   usize
//! offset 16  context           Option<Box<NixContext>>
//! offset 24  the bytes
//! ```
//!
//! This is the string's only `unsafe` code: `Rc<T>` cannot hold a header
//! and a variable number of bytes behind one thin pointer (`Rc<[u8]>` is a
//! fat pointer, 16 bytes, which would grow `Value` past 16). The count is
//! handled as `Rc` handles its strong count, in the same instructions, so
//! that the drop and clone glue of `Value` stay what they were
//! (docs/notes-performance.md, "Session 9").

use super::NixContext;
use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::Cell;
use std::ptr::{self, NonNull};

#[repr(C)]
struct Header {
    count: Cell<usize>,
    len: usize,
    context: Option<Box<NixContext>>,
}

/// The header's size: the bytes start here.
const HEADER: usize = std::mem::size_of::<Header>();
const _: () = assert!(HEADER == 24);

/// A counted reference to a string's block.
///
/// Invariant: `self.0` points to a live allocation made with
/// [`layout`]`(len)`, whose header holds the number of `Block`s pointing
/// at it (at least 1), `len`, and the context, and whose `len` bytes after
/// the header are initialised and never written again. `NonNull` makes
/// `Block` neither `Send` nor `Sync`, as the count is not atomic.
pub(super) struct Block(NonNull<Header>);

/// The layout of a block of `len` bytes.
fn layout(len: usize) -> Layout {
    // A slice never exceeds `isize::MAX` bytes, so only a slice within 24
    // bytes of that could fail here: no allocation that large succeeds.
    match HEADER
        .checked_add(len)
        .map(|size| Layout::from_size_align(size, std::mem::align_of::<Header>()))
    {
        Some(Ok(layout)) => layout,
        _ => panic!("string of {len} bytes exceeds the address space"),
    }
}

impl Block {
    /// A block of `len` bytes with `context`, and where its bytes go.
    ///
    /// # Safety
    /// The caller writes all `len` bytes before the block's bytes are read.
    pub(super) unsafe fn uninit(len: usize, context: Option<Box<NixContext>>) -> (Block, *mut u8) {
        let layout = layout(len);
        // SAFETY: the layout's size is at least HEADER, never zero.
        let p = unsafe { alloc(layout) }.cast::<Header>();
        let Some(p) = NonNull::new(p) else {
            handle_alloc_error(layout)
        };
        // SAFETY: the allocation holds a header (aligned for it) followed
        // by `len` bytes.
        unsafe {
            p.as_ptr().write(Header {
                count: Cell::new(1),
                len,
                context,
            });
            (Block(p), p.as_ptr().cast::<u8>().add(HEADER))
        }
    }

    /// A block holding a copy of `bytes`.
    pub(super) fn new(bytes: &[u8], context: Option<Box<NixContext>>) -> Block {
        // SAFETY: all `len` bytes are written, from memory the new block
        // cannot overlap.
        unsafe {
            let (block, at) = Block::uninit(bytes.len(), context);
            ptr::copy_nonoverlapping(bytes.as_ptr(), at, bytes.len());
            block
        }
    }

    /// A block holding `a` followed by `b`.
    pub(super) fn concat(a: &[u8], b: &[u8], context: Option<Box<NixContext>>) -> Block {
        // Each slice is at most `isize::MAX` bytes, so the sum cannot wrap.
        let len = a.len() + b.len();
        // SAFETY: `a` and `b` together are `len` bytes, written one after
        // the other, from memory the new block cannot overlap.
        unsafe {
            let (block, at) = Block::uninit(len, context);
            ptr::copy_nonoverlapping(a.as_ptr(), at, a.len());
            ptr::copy_nonoverlapping(b.as_ptr(), at.add(a.len()), b.len());
            block
        }
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the header is live while a Block points at it.
        unsafe { self.0.as_ref() }
    }

    /// The length in bytes.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.header().len
    }

    /// The bytes.
    #[inline]
    pub(super) fn bytes(&self) -> &[u8] {
        // SAFETY: `len` initialised bytes follow the header and are never
        // written while the block lives, which `&self` guarantees for the
        // slice's lifetime.
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast::<u8>().add(HEADER), self.len()) }
    }

    /// The context, if any.
    #[inline]
    pub(super) fn context(&self) -> Option<&NixContext> {
        self.header().context.as_deref()
    }

    /// Another reference to the same block.
    #[inline]
    pub(super) fn share(&self) -> Block {
        let count = &self.header().count;
        let n = count.get();
        // SAFETY: a live block has a count of at least 1 (its invariant);
        // told to the optimiser as `Rc` does.
        unsafe { std::hint::assert_unchecked(n != 0) };
        let n = n.wrapping_add(1);
        count.set(n);
        if n == 0 {
            // As `Rc` does: usize::MAX references cannot exist without
            // `mem::forget`; a wrapped count would free a live block.
            std::process::abort();
        }
        Block(self.0)
    }

    /// The block's address, equal for every reference to it.
    #[inline]
    pub(super) fn address(&self) -> usize {
        self.0.as_ptr() as usize
    }

    /// Frees the block: the last reference is gone.
    ///
    /// Out of line, as `Rc`'s `drop_slow` is: the context's `BTreeSet` drop
    /// would otherwise be inlined into every `Value`'s drop glue.
    ///
    /// # Safety
    /// No other `Block` may point at this allocation.
    #[inline(never)]
    unsafe fn free(&mut self) {
        let layout = layout(self.len());
        let p = self.0.as_ptr();
        // SAFETY: the header is live and, being the last reference, ours to
        // drop (the context); the allocation was made with `layout`.
        unsafe {
            ptr::drop_in_place(p);
            dealloc(p.cast::<u8>(), layout);
        }
    }
}

// As for `Rc`: a panic cannot leave the count half-updated, so a string
// seen again after `catch_unwind` is whole (and `NixString` stays
// `UnwindSafe`, as it was as an `Rc`).
impl std::panic::UnwindSafe for Block {}

impl Drop for Block {
    #[inline]
    fn drop(&mut self) {
        let count = &self.header().count;
        count.set(count.get() - 1);
        if count.get() == 0 {
            // SAFETY: the count says this was the last reference.
            unsafe { self.free() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::ContextElem;

    fn context(path: &str) -> Option<Box<NixContext>> {
        Some(Box::new(NixContext::from([ContextElem::Plain(
            path.to_string(),
        )])))
    }

    #[test]
    fn a_block_holds_its_bytes_and_context() {
        for bytes in [&b""[..], b"a", b"0123456789abcdef0123456789"] {
            let b = Block::new(bytes, None);
            assert_eq!(b.bytes(), bytes);
            assert_eq!(b.len(), bytes.len());
            assert!(b.context().is_none());
        }
        let b = Block::concat(b"/nix/store/x", b"/bin", context("/nix/store/x"));
        assert_eq!(b.bytes(), b"/nix/store/x/bin");
        assert_eq!(b.context(), context("/nix/store/x").as_deref());
    }

    #[test]
    fn strings_stay_unwind_safe_like_rc() {
        fn unwind_safe<T: std::panic::UnwindSafe>() {}
        unwind_safe::<crate::value::NixString>();
    }

    #[test]
    fn shared_blocks_are_freed_once_with_their_context() {
        // Run under Miri or valgrind, a double free or a leak shows here.
        let a = Block::new(b"shared", context("/nix/store/y"));
        let b = a.share();
        let c = b.share();
        assert_eq!(a.header().count.get(), 3);
        assert_eq!(a.address(), c.address());
        drop(a);
        drop(c);
        assert_eq!(b.header().count.get(), 1);
        assert_eq!(b.bytes(), b"shared");
        assert!(b.context().is_some());
    }
}
