//! A [`Backend`] that evaluates in a worker process.
//!
//! The evaluator runs in a child process (`attrfs` itself in a worker
//! mode) and answers the requests of [`crate::protocol`] over its stdin
//! and stdout. What that buys the mount:
//!
//! * a request past its deadline (the service sets the interrupt flag) is
//!   interrupted without ending the worker: the daemon sends it
//!   [`protocol::INTERRUPT_SIGNAL`], whose handler sets the evaluator's own
//!   interrupt flag, then a [`Request::Resume`]; the worker fails the
//!   evaluation in progress (and answers the rest of the batch) with
//!   [`NodeError::Interrupted`], clears its flag and says so. Everything
//!   it had evaluated stays for the next request. A worker that does not
//!   say so within [`RESUME_BOUND`] (stuck in a builtin or a system call
//!   that never looks at the flag) is killed, and no thread is left
//!   running an abandoned evaluation;
//! * a worker that dies (a signal, an abort, a stack overflow) costs only
//!   the request it was serving, answered with an error; the next request
//!   starts a fresh worker;
//! * a worker over its memory budget is killed once it has answered, and
//!   the next request starts a fresh one.
//!
//! Restarting costs the root's evaluation again; the service's rendered
//! answers are kept, so only what is asked next is evaluated anew.

use std::cell::RefCell;
use std::ffi::OsString;
use std::io::{self, BufReader, BufWriter, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::Arc;

use parking_lot::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::backend::{Backend, BackendFactory, Interrupt, NodeError, Stat};
use crate::inputs::Input;
use crate::node::{AttrPath, DirEntry, Node, XattrList};
use crate::protocol::{self, Answer, Request};

/// How often a waiting request looks at the interrupt flag.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long an interrupted worker may take to stop and acknowledge the
/// resume before it is killed. The evaluator looks at its flag every few
/// thousand instructions (microseconds), so this only bounds the rare
/// builtin or system call that never looks; it must stay well under the
/// service's `stuck_grace` (at least 2 s in a mount), past which the
/// service gives up on the whole evaluation thread.
pub const RESUME_BOUND: Duration = Duration::from_millis(1000);

/// How often, at most, a worker's resident memory is compared with its
/// budget (after an answer).
const BUDGET_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// How to start a worker.
#[derive(Clone, Debug)]
pub struct WorkerCommand {
    /// The program (normally the running `attrfs` executable).
    pub program: PathBuf,
    /// Its arguments (the hidden worker subcommand).
    pub args: Vec<OsString>,
    /// The start-up frame: what to evaluate, in the worker's own format.
    pub init: Vec<u8>,
    /// Resident memory past which the worker is replaced, in bytes.
    pub memory_budget: u64,
}

/// A factory of [`ProcessBackend`]s. The first backend's worker is started
/// at once, so that an expression that cannot be evaluated is reported
/// before anything is mounted.
pub fn factory(command: WorkerCommand) -> BackendFactory {
    factory_reporting(command, None)
}

/// Where a factory puts the inputs of a root that failed to evaluate (the
/// live view watches them: fixing one is what makes the root evaluate).
pub type FailedInputs = Arc<Mutex<Vec<Input>>>;

/// [`factory`], putting what a failing root read into `failed`.
pub fn factory_reporting(command: WorkerCommand, failed: Option<FailedInputs>) -> BackendFactory {
    Box::new(move |interrupt| {
        let mut backend = ProcessBackend {
            command: command.clone(),
            interrupt,
            worker: None,
            inputs: RefCell::default(),
            next_budget_check: Instant::now(),
        };
        match backend.spawn() {
            Ok(worker) => backend.worker = Some(worker),
            Err(message) => {
                if let Some(failed) = &failed {
                    failed.lock().extend(backend.take_inputs());
                }
                return Err(message);
            }
        }
        Ok(Box::new(backend) as Box<dyn Backend>)
    })
}

/// A factory of [`ProcessBackend`]s that start their worker only when the
/// first request comes: for a mount whose answers are expected to come
/// from elsewhere (a persistent cache whose inputs are unchanged), so that
/// nothing is evaluated unless something is asked that is not there.
pub fn lazy_factory(command: WorkerCommand) -> BackendFactory {
    Box::new(move |interrupt| {
        Ok(Box::new(ProcessBackend {
            command: command.clone(),
            interrupt,
            worker: None,
            inputs: RefCell::default(),
            next_budget_check: Instant::now(),
        }) as Box<dyn Backend>)
    })
}

/// A running worker.
struct Worker {
    child: Child,
    /// How many interrupt signals it was sent (see [`Request::Resume`]).
    interrupts: u64,
    input: BufWriter<ChildStdin>,
    output: BufReader<ChildStdout>,
}

/// A [`Backend`] forwarding every request to a worker process, starting one
/// when there is none.
pub struct ProcessBackend {
    command: WorkerCommand,
    interrupt: Interrupt,
    worker: Option<Worker>,
    /// Inputs the workers reported, not yet taken by the service.
    inputs: RefCell<Vec<Input>>,
    /// When the worker's memory is next compared with its budget.
    next_budget_check: Instant,
}

/// Hands a batch's answers on in order, and marks what is left when the
/// batch cannot go on.
struct Answers<'a> {
    next: usize,
    /// Frames expected in all; an answer may announce more to follow.
    total: usize,
    deliver: &'a mut dyn FnMut(usize, Result<Answer, Failure>) -> usize,
}

impl Answers<'_> {
    fn push(&mut self, answer: Result<Answer, Failure>) {
        self.total += (self.deliver)(self.next, answer);
        self.next += 1;
    }

    /// Answers every request not answered yet [`NodeError::Interrupted`]
    /// (the service asks again, of a fresh worker).
    fn interrupt_rest(&mut self) {
        while self.next < self.total {
            self.push(Err(Failure::Node(NodeError::Interrupted)));
        }
    }
}

/// Why a request got no answer from a worker.
enum Failure {
    /// An error to pass on as it is.
    Node(NodeError),
    /// The worker died while evaluating it (the message says how).
    Died(String),
}

impl From<Failure> for NodeError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Node(e) => e,
            // Evaluation is deterministic, so asking again would kill the
            // next worker the same way: the failure is recorded (a
            // permanent error), not retried.
            Failure::Died(why) => NodeError::EvalFailed(why),
        }
    }
}

/// How waiting for an answer ended.
enum Waited {
    Answer(Vec<u8>),
    /// The interrupt flag was set (or, while resuming, the bound passed).
    Interrupted,
    Died(String),
}

/// What ends a wait for the worker's next frame, besides a frame.
#[derive(Clone, Copy)]
enum Until {
    /// The interrupt flag being set.
    Interrupt,
    /// This instant passing (the interrupt flag is set already).
    Deadline(Instant),
}

impl ProcessBackend {
    /// Starts a worker and waits for its hello: the root evaluated, or the
    /// error that keeps it from being mounted.
    fn spawn(&self) -> Result<Worker, String> {
        let mut command = Command::new(&self.command.program);
        command
            .args(&self.command.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // SAFETY: the closure runs in the child between fork and exec and
        // only makes async-signal-safe calls (prctl, sigprocmask).
        unsafe {
            command.pre_exec(|| {
                // The worker must not outlive the daemon, even one killed
                // with SIGKILL.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // The daemon blocks SIGINT/SIGTERM to handle them on a
                // thread of its own; the worker ends when its stdin closes
                // and may be killed, so it takes the default dispositions.
                let mut none: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut none);
                libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start the evaluator process: {e}"))?;
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("the evaluator process has no pipes".to_owned());
        };
        let mut worker = Worker {
            child,
            interrupts: 0,
            input: BufWriter::new(input),
            output: BufReader::new(output),
        };
        if let Err(e) = protocol::write_frame(&mut worker.input, &self.command.init) {
            return Err(finish(worker, &format!("cannot start the evaluator: {e}")));
        }
        match self.wait(&mut worker, Until::Interrupt) {
            Waited::Answer(frame) => match protocol::decode_hello(&frame) {
                Ok(Ok(())) => Ok(worker),
                Ok(Err(message)) => {
                    finish(worker, "");
                    Err(message)
                }
                Err(e) => Err(finish(worker, &format!("the evaluator said: {e}"))),
            },
            Waited::Interrupted => Err(finish(worker, "interrupted while starting")),
            Waited::Died(why) => Err(why),
        }
    }

    /// Waits for the worker's next frame, giving up when `until` says so.
    fn wait(&self, worker: &mut Worker, until: Until) -> Waited {
        loop {
            let poll = match until {
                Until::Interrupt => POLL_INTERVAL,
                Until::Deadline(at) => at.saturating_duration_since(Instant::now()),
            };
            // Bytes already buffered need no poll.
            if !worker.output.buffer().is_empty() || readable(&worker.output, poll) {
                return match protocol::read_frame(&mut worker.output) {
                    Ok(Some(frame)) => match protocol::decode_inputs(&frame) {
                        // Inputs come ahead of the answer they were read
                        // for: kept for the service, and the wait goes on.
                        Ok(Some(inputs)) => {
                            self.inputs.borrow_mut().extend(inputs);
                            continue;
                        }
                        Ok(None) => Waited::Answer(frame),
                        Err(e) => {
                            tracing::error!("the evaluator sent unreadable inputs: {e}");
                            continue;
                        }
                    },
                    Ok(None) | Err(_) => Waited::Died(died(&mut worker.child)),
                };
            }
            let over = match until {
                Until::Interrupt => self.interrupt.load(Ordering::SeqCst),
                Until::Deadline(at) => Instant::now() >= at,
            };
            if over {
                return Waited::Interrupted;
            }
        }
    }

    /// Interrupts the worker's evaluation without ending it (see the module
    /// documentation): signals it, asks it to resume, and hands on the
    /// answers it sends before it acknowledges (those finished before the
    /// signal landed, then interrupted ones). Returns the worker if it
    /// acknowledged within [`RESUME_BOUND`]; otherwise kills it and says
    /// why.
    fn interrupt_worker(
        &self,
        mut worker: Worker,
        answers: &mut Answers,
    ) -> Result<Worker, String> {
        let started = Instant::now();
        let pid = libc::pid_t::try_from(worker.child.id()).unwrap_or(libc::pid_t::MAX);
        // SAFETY: kill(2) with our own child's pid (not reaped: we hold
        // its `Child`, so the pid cannot have been reused).
        if unsafe { libc::kill(pid, protocol::INTERRUPT_SIGNAL) } != 0 {
            let e = io::Error::last_os_error();
            return Err(finish(
                worker,
                &format!("cannot interrupt the evaluator: {e}"),
            ));
        }
        worker.interrupts += 1;
        let resume = Request::Resume(worker.interrupts).encode();
        let sent = protocol::write_frame(&mut worker.input, &resume);
        if let Err(e) = sent {
            let why = died(&mut worker.child);
            return Err(format!("cannot resume the evaluator ({e}): {why}"));
        }
        let until = Until::Deadline(started + RESUME_BOUND);
        loop {
            match self.wait(&mut worker, until) {
                Waited::Answer(frame) if protocol::is_resumed(&frame) => {
                    tracing::info!(
                        "interrupted the evaluator process {pid}; it stopped in {:?} and keeps its values",
                        started.elapsed()
                    );
                    return Ok(worker);
                }
                Waited::Answer(frame) if answers.next < answers.total => {
                    answers.push(match protocol::decode_answer(&frame) {
                        Ok(answer) => answer.map_err(Failure::Node),
                        Err(e) => Err(Failure::Node(NodeError::Unavailable(format!(
                            "the evaluator sent an unreadable answer: {e}"
                        )))),
                    });
                }
                Waited::Answer(_) => {
                    return Err(finish(
                        worker,
                        "the evaluator answered more than it was asked while interrupted",
                    ));
                }
                Waited::Interrupted => {
                    tracing::warn!(
                        "the evaluator process {pid} did not stop within {RESUME_BOUND:?} of an interrupt; killing it"
                    );
                    return Err(finish(worker, "did not stop when interrupted"));
                }
                Waited::Died(why) => return Err(why),
            }
        }
    }

    /// Sends `request` and returns the answer, starting a worker first if
    /// there is none (or the last one exited while idle).
    fn call(&mut self, request: Request) -> Result<Answer, Failure> {
        let mut result = Err(Failure::Node(NodeError::Interrupted));
        self.call_many(vec![request], &mut |_, answer| result = answer);
        result
    }

    /// Sends `requests` one after the other without waiting, then reads
    /// their answers in order: the worker goes from one to the next without
    /// a round trip through the daemon in between. Requests after one whose
    /// worker was killed or died are answered [`NodeError::Interrupted`]
    /// (the service asks again, of a fresh worker).
    fn call_many(
        &mut self,
        requests: Vec<Request>,
        deliver: &mut dyn FnMut(usize, Result<Answer, Failure>),
    ) {
        self.exchange(requests, &mut |i, answer| {
            deliver(i, answer);
            0
        });
    }

    /// Sends `requests` and reads one answer frame for each, plus as many
    /// more as `deliver` says follow the answer it was just given (a
    /// [`Request::ListPlus`] listing is followed by its entries' stats).
    /// See [`ProcessBackend::call_many`].
    fn exchange(
        &mut self,
        requests: Vec<Request>,
        deliver: &mut dyn FnMut(usize, Result<Answer, Failure>) -> usize,
    ) {
        let mut answers = Answers {
            next: 0,
            total: requests.len(),
            deliver,
        };
        if let Some(worker) = &mut self.worker {
            if let Ok(Some(status)) = worker.child.try_wait() {
                tracing::warn!(
                    "the evaluator process exited while idle ({}); starting a fresh one",
                    describe(status)
                );
                self.worker = None;
            }
        }
        let mut worker = match self.worker.take() {
            Some(worker) => worker,
            None => {
                tracing::info!("starting an evaluator process");
                match self.spawn() {
                    Ok(worker) => worker,
                    Err(e) => {
                        answers.push(Err(Failure::Node(NodeError::Unavailable(e))));
                        return answers.interrupt_rest();
                    }
                }
            }
        };
        // A batch is a few dozen short paths: far less than a pipe holds,
        // so writing it all before reading cannot block on the answers.
        // Written together, so that the worker reads them in one go (and
        // knows more are waiting: it then keeps its answers for one write).
        let sent = requests
            .iter()
            .try_for_each(|request| protocol::put_frame(&mut worker.input, &request.encode()))
            .and_then(|()| worker.input.flush());
        if let Err(e) = sent {
            let why = died(&mut worker.child);
            tracing::error!("cannot send a request to the evaluator ({e}): {why}");
            answers.push(Err(Failure::Died(why)));
            return answers.interrupt_rest();
        }
        while answers.next < answers.total {
            match self.wait(&mut worker, Until::Interrupt) {
                Waited::Answer(frame) => answers.push(match protocol::decode_answer(&frame) {
                    Ok(answer) => answer.map_err(Failure::Node),
                    Err(e) => Err(Failure::Node(NodeError::Unavailable(format!(
                        "the evaluator sent an unreadable answer: {e}"
                    )))),
                }),
                Waited::Interrupted => {
                    return match self.interrupt_worker(worker, &mut answers) {
                        Ok(worker) => {
                            // Every request was answered before the
                            // acknowledgement; nothing is left to mark.
                            answers.interrupt_rest();
                            self.keep_if_within_budget(worker);
                        }
                        Err(_) => answers.interrupt_rest(),
                    };
                }
                Waited::Died(why) => {
                    tracing::error!("{why}; the next request starts a fresh evaluator");
                    answers.push(Err(Failure::Died(why)));
                    return answers.interrupt_rest();
                }
            }
        }
        self.keep_if_within_budget(worker);
    }

    /// Keeps the worker for the next request unless it is over its memory
    /// budget (then the next request starts a fresh one).
    fn keep_if_within_budget(&mut self, worker: Worker) {
        // Reading /proc per answer was a measurable share of a walk's
        // requests; growth within the interval is bounded by what one
        // interval of evaluation can allocate.
        let now = Instant::now();
        if now < self.next_budget_check {
            self.worker = Some(worker);
            return;
        }
        self.next_budget_check = now + BUDGET_CHECK_INTERVAL;
        match resident_bytes(worker.child.id()) {
            Some(rss) if rss > self.command.memory_budget => {
                tracing::warn!(
                    "evaluator process memory {} MiB over the budget of {} MiB: replacing it",
                    rss >> 20,
                    self.command.memory_budget >> 20
                );
                finish(worker, "over its memory budget");
            }
            _ => self.worker = Some(worker),
        }
    }
}

impl Drop for ProcessBackend {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            finish(worker, "");
        }
    }
}

impl Backend for ProcessBackend {
    fn stat(&mut self, path: &AttrPath) -> Result<Stat, NodeError> {
        stat_answer(self.call(Request::Stat(path.clone())))
    }

    fn stat_many(
        &mut self,
        paths: &[AttrPath],
        answer: &mut dyn FnMut(usize, Result<Stat, NodeError>),
    ) {
        let requests = paths.iter().map(|p| Request::Stat(p.clone())).collect();
        self.call_many(requests, &mut |i, a| answer(i, stat_answer(a)));
    }

    fn list_plus(
        &mut self,
        path: &AttrPath,
        count: usize,
        listed: &mut dyn FnMut(Result<Vec<DirEntry>, NodeError>),
        answer: &mut dyn FnMut(usize, Result<Stat, NodeError>),
    ) {
        self.list_plus_many(
            std::slice::from_ref(path),
            count,
            &mut |_, l| listed(l),
            &mut |_, i, s| answer(i, s),
        );
    }

    fn list_plus_many(
        &mut self,
        paths: &[AttrPath],
        count: usize,
        listed: &mut dyn FnMut(usize, Result<Vec<DirEntry>, NodeError>),
        answer: &mut dyn FnMut(usize, usize, Result<Stat, NodeError>),
    ) {
        let requests = paths
            .iter()
            .map(|path| Request::ListPlus(path.clone(), count))
            .collect();
        // Frames come in order: a listing, its entries' stats, the next
        // listing, ... The directory whose stats are arriving, how many
        // have come, how many are still owed, and the next listing's index.
        let (mut dir, mut stat, mut owed, mut next) = (0, 0, 0, 0);
        self.exchange(requests, &mut |_, frame| {
            if owed > 0 {
                answer(dir, stat, stat_answer(frame));
                stat += 1;
                owed -= 1;
                return 0;
            }
            dir = next;
            next += 1;
            // After a failed listing the worker sends nothing more for
            // it; the stats are only owed (and only answered, interrupted
            // or not) once the listing is out.
            let result = match frame {
                Ok(Answer::List(entries)) => Ok(entries),
                Ok(_) => Err(mismatch()),
                Err(failure) => Err(NodeError::from(failure)),
            };
            let follow = result.as_ref().map_or(0, |e| e.len().min(count));
            listed(dir, result);
            (stat, owed) = (0, follow);
            follow
        });
    }

    fn list(&mut self, path: &AttrPath) -> Result<Vec<DirEntry>, NodeError> {
        match self
            .call(Request::List(path.clone()))
            .map_err(NodeError::from)?
        {
            Answer::List(entries) => Ok(entries),
            _ => Err(mismatch()),
        }
    }

    fn read(&mut self, path: &AttrPath) -> Result<Vec<u8>, NodeError> {
        match self
            .call(Request::Read(path.clone()))
            .map_err(NodeError::from)?
        {
            Answer::Read(bytes) => Ok(bytes),
            _ => Err(mismatch()),
        }
    }

    fn xattrs(&mut self, path: &AttrPath) -> Result<XattrList, NodeError> {
        match self
            .call(Request::Xattrs(path.clone()))
            .map_err(NodeError::from)?
        {
            Answer::Xattrs(xattrs) => Ok(xattrs),
            _ => Err(mismatch()),
        }
    }

    fn take_inputs(&mut self) -> Vec<Input> {
        std::mem::take(self.inputs.get_mut())
    }
}

fn stat_answer(answer: Result<Answer, Failure>) -> Result<Stat, NodeError> {
    match answer {
        Ok(Answer::Stat(stat)) => Ok(stat),
        Ok(_) => Err(mismatch()),
        // A value whose evaluation kills the evaluator is a value that
        // fails: a well-formed entry whose error says so.
        Err(Failure::Died(why)) => Ok(Node::failed(why).into()),
        Err(failure) => Err(failure.into()),
    }
}

fn mismatch() -> NodeError {
    NodeError::Unavailable("the evaluator answered a different question".to_owned())
}

/// Kills and reaps the worker; returns `why`, for error paths.
fn finish(mut worker: Worker, why: &str) -> String {
    let _ = worker.child.kill();
    let _ = worker.child.wait();
    why.to_owned()
}

/// Reaps a worker whose pipe closed and says how it ended.
fn died(child: &mut Child) -> String {
    // The pipe closes as the process exits; give it a moment to be reaped.
    for _ in 0..50 {
        if let Ok(Some(status)) = child.try_wait() {
            return format!(
                "the evaluator process {} while evaluating this value",
                describe(status)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    "the evaluator process stopped answering while evaluating this value".to_owned()
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (_, Some(signal)) => format!("was killed by signal {signal} ({})", signal_name(signal)),
        (Some(code), _) => format!("exited with status {code}"),
        _ => "ended".to_owned(),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGSEGV => "SIGSEGV: a crash or a stack overflow",
        libc::SIGABRT => "SIGABRT: an abort",
        libc::SIGKILL => "SIGKILL",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Whether `reader`'s pipe has data (or hung up) within `timeout`.
fn readable(reader: &BufReader<ChildStdout>, timeout: Duration) -> bool {
    let mut fd = libc::pollfd {
        fd: reader.get_ref().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: one valid pollfd, for the duration of the call.
    let n = unsafe { libc::poll(&mut fd, 1, millis) };
    n > 0 || (n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted)
}

/// Half the machine's memory, at most 8 GiB: everything evaluated stays
/// reachable from the root, so a walk of a huge tree would otherwise grow
/// without bound; past the budget the worker is replaced.
pub fn default_memory_budget() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(8 << 30);
    (total / 2).min(8 << 30)
}

/// Resident memory of process `pid` in bytes (Linux), if known.
fn resident_bytes(pid: u32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
