//! The state shared by appenders and the writer thread: the bounded queue, the completions
//! durable appenders wait on, the counters.
//!
//! Appenders only take the queue's mutex to enqueue; sequence numbers are not assigned here
//! but by the writer, inside the SQLite write transaction, because other processes append to
//! the same file and only the file's lock orders all of them.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::config::{Mode, WhenFull};
use crate::error::WriteError;
use crate::record::Entry;

pub(super) struct Shared {
    pub path: PathBuf,
    pub mode: Mode,
    pub when_full: WhenFull,
    pub capacity: usize,
    pub max_batch: usize,
    pub flush_interval: Duration,
    /// Durable appends submitted by async callers are committed by one of those callers on
    /// its own thread (see `writer::combine`), not handed to the writer thread: durable
    /// mode without `fsync` (a commit then waits for no disk flush, ~20 µs).
    pub combine: bool,
    pub queue: Mutex<Queue>,
    /// The writer waits here for work.
    pub work: Condvar,
    /// Appenders wait here for room (`WhenFull::Block`).
    pub room: Condvar,
    pub progress: Mutex<Progress>,
    /// `flush` waits here for the writer to get past its target.
    pub progressed: Condvar,
    /// Callers inside `flush` (so a commit notifies `progressed` only when someone waits).
    pub flushers: AtomicUsize,
    pub appended: AtomicU64,
    pub committed: AtomicU64,
    /// The WAL checkpoint thread wants the writer's lock for a restart (see `wal.rs`): the
    /// writer thread and async appenders stand back until it has it.
    pub restart_wanted: AtomicBool,
    /// Records in the largest recent commit, in 1/256ths (each commit takes the larger of
    /// its own size and this, less a sixteenth).
    pub recent_group: AtomicUsize,
    pub failed: AtomicU64,
    pub blocked: AtomicU64,
    pub rejected_full: AtomicU64,
    pub checkpoints: AtomicU64,
    /// WAL restarts made by the checkpoint thread.
    pub wal_restarts: AtomicU64,
    /// The last commit failed. Buffered appends are refused while it is set (they would be
    /// acknowledged and then lost); the writer probes until a write succeeds again.
    pub failing: AtomicBool,
    pub last_error: Mutex<Option<WriteError>>,
    /// The error that made the log fail to close cleanly.
    pub close_error: Mutex<Option<WriteError>>,
}

pub(super) struct Queue {
    pub items: VecDeque<Pending>,
    /// Records accepted so far (the `n`th accepted record is done once `Progress::done`
    /// reaches `n`).
    pub accepted: u64,
    pub writer_idle: bool,
    pub flush_waiters: usize,
    /// Appenders waiting for room (`WhenFull::Block`), so taking a batch notifies `room`
    /// only when someone waits.
    pub room_waiters: usize,
    pub closing: bool,
    /// Set when the writer thread has stopped; appends fail with this reason.
    pub stopped: Option<String>,
}

#[derive(Default)]
pub(super) struct Progress {
    /// Records committed or failed so far, in acceptance order.
    pub done: u64,
    /// Records failed so far (to tell `flush` whether something failed meanwhile).
    pub failed_total: u64,
}

/// A note for the `incidents` table, written with the next successful transaction.
pub(super) struct PendingIncident {
    pub kind: &'static str,
    pub after_seq: u64,
    pub lost: u64,
    pub detail: String,
}

/// A queued record. Dropping it without completing it (the writer stopped or panicked)
/// fails the waiting appender, so nobody waits forever.
pub(super) struct Pending {
    pub enqueued: Instant,
    pub entry: Entry,
    pub done: Option<Arc<Completion>>,
    /// Its appender waits on a thread (`append`, `Appended::wait`) rather than committing
    /// the group itself: after committing it, the writer thread spins briefly for the next.
    pub blocking: bool,
}

impl Pending {
    pub fn complete(&mut self, result: Result<u64, WriteError>) {
        if let Some(done) = self.done.take() {
            done.complete(result);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.complete(Err(WriteError::WriterStopped));
    }
}

/// Where a durable append waits for its commit (and learns its sequence number): a thread
/// spins then sleeps on it ([`Completion::wait`]); a task registers its waker
/// ([`Completion::poll`]), so an async caller waits without holding a thread.
pub(super) struct Completion {
    /// Set once the result is stored, so a spinning waiter can see it without the lock.
    ready: AtomicBool,
    slot: Mutex<Slot>,
    woken: Condvar,
}

#[derive(Default)]
struct Slot {
    result: Option<Result<u64, WriteError>>,
    /// The waiter stopped spinning and sleeps on `woken`.
    parked: bool,
    /// The task to wake once the result is stored.
    waker: Option<Waker>,
}

/// How long a durable append spins for its commit before sleeping, and how long the writer
/// spins for more work before sleeping. A commit takes ~10 µs, while waking a sleeping
/// thread costs ~20 µs on a virtual machine, twice per append; spinning this briefly keeps
/// a lone durable append well under 50 µs at the price of a few µs of CPU.
const APPEND_SPIN: Duration = Duration::from_micros(60);
pub(super) const WRITER_SPIN: Duration = Duration::from_micros(50);

impl Completion {
    pub fn new() -> Self {
        Completion {
            ready: AtomicBool::new(false),
            slot: Mutex::new(Slot::default()),
            woken: Condvar::new(),
        }
    }

    fn complete(&self, result: Result<u64, WriteError>) {
        let mut slot = lock(&self.slot);
        slot.result = Some(result);
        self.ready.store(true, Ordering::Release);
        let parked = slot.parked;
        let waker = slot.waker.take();
        drop(slot);
        if parked {
            self.woken.notify_one();
        }
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Whether the result is stored.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The result, once stored; until then `cx`'s waker is woken when it is.
    pub fn poll(&self, cx: &mut Context<'_>) -> Poll<Result<u64, WriteError>> {
        let mut slot = lock(&self.slot);
        if let Some(r) = slot.result.take() {
            return Poll::Ready(r);
        }
        match &mut slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    pub fn wait(&self) -> Result<u64, WriteError> {
        spin_until(APPEND_SPIN, || self.ready.load(Ordering::Acquire));
        let mut slot = lock(&self.slot);
        loop {
            if let Some(r) = slot.result.take() {
                return r;
            }
            slot.parked = true;
            slot = self
                .woken
                .wait(slot)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Spin (then yield, so a runnable writer gets the core) until `done` or `limit` passes.
pub(super) fn spin_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..64 {
        if done() {
            return true;
        }
        std::hint::spin_loop();
    }
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::yield_now();
    }
    done()
}

/// Lock a mutex, ignoring poisoning: every critical section here leaves the data consistent
/// at each step, and the audit path must keep failing closed rather than panic.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub fn new(path: PathBuf, config: &super::config::AuditConfig) -> Self {
        Shared {
            path,
            mode: config.mode,
            when_full: config.when_full,
            capacity: config.queue_capacity,
            max_batch: config.max_batch,
            flush_interval: config.flush_interval,
            combine: config.mode == Mode::Durable && !config.fsync,
            queue: Mutex::new(Queue {
                items: VecDeque::with_capacity(config.queue_capacity.min(1 << 16)),
                accepted: 0,
                writer_idle: false,
                flush_waiters: 0,
                room_waiters: 0,
                closing: false,
                stopped: None,
            }),
            work: Condvar::new(),
            room: Condvar::new(),
            progress: Mutex::new(Progress::default()),
            progressed: Condvar::new(),
            flushers: AtomicUsize::new(0),
            appended: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            recent_group: AtomicUsize::new(0),
            restart_wanted: AtomicBool::new(false),
            failed: AtomicU64::new(0),
            blocked: AtomicU64::new(0),
            rejected_full: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            wal_restarts: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            last_error: Mutex::new(None),
            close_error: Mutex::new(None),
        }
    }

    /// Wake the writer thread if it sleeps and there is something queued.
    pub fn wake_writer(&self) {
        let q = lock(&self.queue);
        let wake = q.writer_idle && (!q.items.is_empty() || q.closing);
        drop(q);
        if wake {
            self.work.notify_one();
        }
    }

    /// The last write error, for refusing buffered appends and for `flush`.
    pub fn last_error(&self) -> WriteError {
        lock(&self.last_error)
            .clone()
            .unwrap_or(WriteError::WriterStopped)
    }
}
