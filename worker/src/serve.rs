//! The worker's side of the protocol: read what to evaluate, evaluate the
//! root, say hello, then answer requests until the daemon closes the pipe.
//!
//! The daemon interrupts an evaluation with a signal
//! ([`protocol::INTERRUPT_SIGNAL`], see [`crate::interrupt`]) and then a
//! [`Request::Resume`]: the evaluation in progress fails with
//! [`NodeError::Interrupted`], the requests after it are answered so
//! without work, and the resume clears the flag. The values evaluated so
//! far stay: a thunk whose forcing was interrupted is pending again, and
//! the next request that needs it evaluates it anew.

use std::cell::Cell;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use attrfs_vfs::inputs::Input;
use attrfs_vfs::protocol::{self, Answer, Request};
use attrfs_vfs::{Backend, Interrupt, NodeError};

use crate::backend::EvalBackend;
use crate::spec::RootSpec;

/// Why a worker stopped other than by its input closing.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The pipe to the daemon failed, or it sent something unreadable.
    #[error("worker protocol: {0}")]
    Wire(#[from] protocol::WireError),
    /// Writing an answer failed (the daemon went away).
    #[error("writing to the daemon: {0}")]
    Io(#[from] io::Error),
    /// The root could not be evaluated; the daemon has been told.
    #[error("{0}")]
    Root(String),
}

/// Serves the protocol over `input` and `output` on the calling thread;
/// `interrupt` is the flag the daemon's interrupt sets (see the module
/// documentation).
pub fn serve(input: impl Read, output: impl Write, interrupt: Interrupt) -> Result<(), ServeError> {
    let mut input = BufReader::new(input);
    let mut output = BufWriter::new(output);
    let Some(init) = protocol::read_frame(&mut input)? else {
        return Ok(());
    };
    let spec = RootSpec::decode(&init)?;
    let mut backend = match EvalBackend::new(&spec, interrupt.clone()) {
        Ok(backend) => backend,
        Err(failure) => {
            // What the failing root read is still worth watching.
            send_inputs(&mut output, failure.inputs)?;
            let message = failure.message;
            protocol::write_frame(&mut output, &protocol::encode_hello(&Err(message.clone())))?;
            return Err(ServeError::Root(message));
        }
    };
    send_inputs(&mut output, backend.take_inputs())?;
    protocol::write_frame(&mut output, &protocol::encode_hello(&Ok(())))?;
    // Answers are written together: flushed when no further request is
    // waiting in the input (the daemon sends a batch at once and reads the
    // answers after), and at least every STAT_FLUSH_INTERVAL. A write per
    // frame was an eighth of a walk's worker time, and each woke the
    // daemon; a value that hangs holds back at most the quick answers of
    // the last few milliseconds (asked again of the next worker).
    let mut flushed = Instant::now();
    let mut flush_if_due = |output: &mut BufWriter<_>, idle: bool| -> io::Result<()> {
        if idle || flushed.elapsed() >= STAT_FLUSH_INTERVAL {
            output.flush()?;
            flushed = Instant::now();
        }
        Ok(())
    };
    // While the flag is set, what is asked is answered interrupted without
    // work: the daemon discards those answers up to the resume.
    let interruption = Interruption {
        flag: interrupt,
        acknowledged: Cell::new(0),
    };
    let interrupted = || interruption.pending();
    while let Some(frame) = protocol::read_frame(&mut input)? {
        let request = Request::decode(&frame)?;
        if let Request::Resume(sent) = request {
            interruption.resume(sent);
            protocol::put_frame(&mut output, &protocol::encode_resumed())?;
            flush_if_due(&mut output, true)?;
            // After the acknowledgement: the daemon need not wait for it.
            crate::interrupt::give_back_freed_memory();
            continue;
        }
        if interrupted() {
            // One frame whatever was asked: a listing answered with an
            // error has no stats after it.
            let frame = protocol::encode_answer(&Err(NodeError::Interrupted));
            protocol::put_frame(&mut output, &frame)?;
            flush_if_due(&mut output, input.buffer().is_empty())?;
            continue;
        }
        let answer = match request {
            Request::Resume(_) => unreachable!("answered above"),
            Request::Stat(path) => backend.stat(&path).map(Answer::Stat),
            Request::List(path) => backend.list(&path).map(Answer::List),
            Request::Read(path) => backend.read(&path).map(Answer::Read),
            Request::Xattrs(path) => backend.xattrs(&path).map(Answer::Xattrs),
            Request::ListPlus(path, count) => {
                // Backend::list_plus spelled out, so that the listing goes
                // out as soon as it is known when nothing else is asked
                // (the daemon answers it while the stats are evaluated),
                // each frame after the inputs read for it.
                let listing = backend.list(&path);
                let children: Vec<_> = match &listing {
                    Ok(entries) => entries
                        .iter()
                        .take(count)
                        .map(|entry| path.child(entry.name.clone()))
                        .collect(),
                    Err(_) => Vec::new(),
                };
                send_inputs(&mut output, backend.take_inputs())?;
                let frame = protocol::encode_answer(&listing.map(Answer::List));
                protocol::put_frame(&mut output, &frame)?;
                flush_if_due(&mut output, input.buffer().is_empty())?;
                for child in children {
                    // Each owed stat is answered, interrupted or not.
                    let stat = if interrupted() {
                        Err(NodeError::Interrupted)
                    } else {
                        backend.stat(&child).map(Answer::Stat)
                    };
                    send_inputs(&mut output, backend.take_inputs())?;
                    protocol::put_frame(&mut output, &protocol::encode_answer(&stat))?;
                    flush_if_due(&mut output, false)?;
                }
                flush_if_due(&mut output, input.buffer().is_empty())?;
                continue;
            }
        };
        send_inputs(&mut output, backend.take_inputs())?;
        protocol::put_frame(&mut output, &protocol::encode_answer(&answer))?;
        flush_if_due(&mut output, input.buffer().is_empty())?;
    }
    Ok(())
}

/// Sends the inputs recorded since the last frame, if there are any, ahead
/// of the answer they were read for.
fn send_inputs(output: &mut impl Write, inputs: Vec<Input>) -> Result<(), ServeError> {
    if !inputs.is_empty() {
        // Unflushed: the answer that follows flushes both.
        protocol::put_frame(output, &protocol::encode_inputs(&inputs))?;
    }
    Ok(())
}

/// The interrupt flag with the count of interrupts acknowledged, which
/// tells a new interrupt from a signal that landed after its resume.
struct Interruption {
    flag: Interrupt,
    /// The count of the last [`Request::Resume`].
    acknowledged: Cell<u64>,
}

impl Interruption {
    /// Whether an interrupt not yet acknowledged is in force. A flag set by
    /// a signal already acknowledged (one that landed after its resume,
    /// see [`Interruption::resume`]) is stale: cleared, and not in force.
    fn pending(&self) -> bool {
        if !self.flag.load(Ordering::SeqCst) {
            return false;
        }
        let seen = crate::interrupt::received();
        if seen > self.acknowledged.get() {
            return true;
        }
        self.flag.store(false, Ordering::SeqCst);
        // A new signal meanwhile must not be lost with the stale one.
        if crate::interrupt::received() > seen {
            self.flag.store(true, Ordering::SeqCst);
            return true;
        }
        false
    }

    /// Clears the flag once the `sent` signals the daemon announces have
    /// landed. The daemon signals before it sends the resume, but a signal
    /// is delivered asynchronously (to whichever thread), so the resume can
    /// be read first, and clearing the flag before the signal lands would
    /// leave it set for the next batch. One that has not landed within
    /// `RESUME_WAIT` (a very loaded machine) is not waited for: when it
    /// lands, [`Interruption::pending`] knows it for a stale one.
    fn resume(&self, sent: u64) {
        let start = Instant::now();
        while crate::interrupt::received() < sent && start.elapsed() < RESUME_WAIT {
            std::thread::sleep(Duration::from_micros(200));
        }
        self.flag.store(false, Ordering::SeqCst);
        self.acknowledged.set(sent);
    }
}

/// How long a resume waits for the interrupt signal to land.
const RESUME_WAIT: Duration = Duration::from_millis(500);

/// How long answers may wait in the buffer.
const STAT_FLUSH_INTERVAL: Duration = Duration::from_millis(2);

/// Serves the protocol over this process's stdin and stdout, on a thread
/// with the evaluator's big stack (an overflow past it kills only this
/// process, which the daemon reports and replaces). Returns the exit code.
pub fn serve_stdio() -> u8 {
    let interrupt = Interrupt::default();
    if let Err(e) = crate::interrupt::on_signal(&interrupt) {
        tracing::error!("cannot install the interrupt handler: {e}");
        return 1;
    }
    let thread = std::thread::Builder::new()
        .name("attrfs-worker".to_owned())
        .stack_size(attrfs_eval::cli::EVAL_STACK_SIZE)
        .spawn(|| serve(io::stdin().lock(), io::stdout().lock(), interrupt));
    match thread.map(|t| t.join()) {
        Ok(Ok(Ok(()))) => 0,
        // The daemon already has the message in the hello.
        Ok(Ok(Err(ServeError::Root(_)))) => 1,
        Ok(Ok(Err(e))) => {
            tracing::error!("{e}");
            1
        }
        Ok(Err(_)) => 101,
        Err(e) => {
            tracing::error!("cannot start the worker thread: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interruption(acknowledged: u64) -> Interruption {
        Interruption {
            flag: Interrupt::default(),
            acknowledged: Cell::new(acknowledged),
        }
    }

    #[test]
    fn a_signal_that_lands_after_its_resume_is_stale() {
        // Every signal this process may ever receive is acknowledged.
        let late = interruption(u64::MAX);
        assert!(!late.pending());
        late.flag.store(true, Ordering::SeqCst);
        assert!(!late.pending(), "a stale flag is not an interrupt");
        assert!(!late.flag.load(Ordering::SeqCst), "and it is cleared");
    }

    #[test]
    fn a_resume_clears_the_flag_once_its_signals_have_landed() {
        let landed = crate::interrupt::received();
        let i = interruption(0);
        i.flag.store(true, Ordering::SeqCst);
        let start = Instant::now();
        i.resume(landed);
        assert!(start.elapsed() < RESUME_WAIT, "{:?}", start.elapsed());
        assert!(!i.flag.load(Ordering::SeqCst));
        assert_eq!(i.acknowledged.get(), landed);
        // A signal that never lands is not waited for forever.
        let start = Instant::now();
        i.resume(u64::MAX);
        assert!(start.elapsed() >= RESUME_WAIT);
        assert!(start.elapsed() < RESUME_WAIT * 4, "{:?}", start.elapsed());
    }
}
