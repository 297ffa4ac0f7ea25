//! The worker's end of the daemon's interrupt: a handler of
//! [`INTERRUPT_SIGNAL`] that sets the evaluator's interrupt flag and does
//! nothing else (an atomic store is all a signal handler may safely do).
//! The evaluator polls the flag and fails the evaluation in progress with
//! `Interrupted`; [`crate::serve`] clears it when the daemon says resume.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;

use attrfs_vfs::protocol::INTERRUPT_SIGNAL;
use attrfs_vfs::Interrupt;

/// The flag the handler sets. Installed once per process and never freed,
/// so that a handler running on any thread at any moment finds it alive.
static FLAG: AtomicPtr<AtomicBool> = AtomicPtr::new(std::ptr::null_mut());

/// How many interrupt signals have landed.
static RECEIVED: AtomicU64 = AtomicU64::new(0);

/// How many interrupt signals have landed in this process so far.
pub fn received() -> u64 {
    RECEIVED.load(Ordering::SeqCst)
}

extern "C" fn handle(_signal: libc::c_int) {
    // Counted before the flag is set: whoever sees the flag set sees the
    // signal counted.
    RECEIVED.fetch_add(1, Ordering::SeqCst);
    let flag = FLAG.load(Ordering::SeqCst);
    if !flag.is_null() {
        // SAFETY: FLAG only ever holds a pointer from `Arc::into_raw` whose
        // reference is never given back, so the flag outlives the process.
        unsafe { (*flag).store(true, Ordering::SeqCst) };
    }
}

/// Makes [`INTERRUPT_SIGNAL`] set `interrupt`, for the rest of the process.
///
/// The handler is installed with `SA_RESTART`: a system call the signal
/// lands in (reading a request, a file) goes on as if nothing happened.
pub fn on_signal(interrupt: &Interrupt) -> io::Result<()> {
    let flag = Arc::into_raw(interrupt.clone()).cast_mut();
    // A flag installed before stays leaked: a handler may be reading it.
    FLAG.store(flag, Ordering::SeqCst);
    // SAFETY: a zeroed `sigaction` is a valid empty one; the handler only
    // makes an atomic load and store; the mask pointers are valid.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handle as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(INTERRUPT_SIGNAL, &action, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, INTERRUPT_SIGNAL);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
    Ok(())
}

/// Hands the memory freed by an interrupted evaluation back to the system.
///
/// An interrupted runaway (a `genList` of millions) leaves its partial
/// structures freed but kept by the allocator, which an idle worker would
/// hold for the rest of the mount; killing the worker used to give it
/// back. The binary's allocator is mimalloc (`mountd`); where it is not
/// (this crate's tests), mimalloc's own heap is empty and this is a no-op.
pub fn give_back_freed_memory() {
    extern "C" {
        fn mi_collect(force: bool);
    }
    // SAFETY: mi_collect takes no pointers; it only purges the calling
    // thread's free pages and the process's unused segments.
    unsafe { mi_collect(true) }
}

// Links mimalloc's C library, which defines `mi_collect`.
use libmimalloc_sys as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signal_sets_the_flag_and_nothing_else() {
        let interrupt = Interrupt::default();
        on_signal(&interrupt).unwrap();
        assert!(!interrupt.load(Ordering::SeqCst));
        let before = received();
        // SAFETY: raising a signal whose handler is installed above.
        unsafe { libc::raise(INTERRUPT_SIGNAL) };
        assert!(interrupt.load(Ordering::SeqCst));
        assert_eq!(received(), before + 1);
    }
}
