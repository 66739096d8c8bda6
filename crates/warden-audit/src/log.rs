//! [`AuditLog`]: appending records through a bounded queue to one writer thread that group
//! commits them, chains their hashes and signs checkpoints.
//!
//! Why one writer: the chain is sequential (each hash covers the previous one), SQLite has
//! one writer at a time anyway, and batching many appends into one transaction is what makes
//! the log fast. Callers only take a short mutex to get a sequence number and enqueue.

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};

use crate::error::AuditError;
use crate::keys::key_id;
use crate::record::Entry;
use crate::schema::{self, Probe};
use crate::timestamp::Timestamp;

mod writer;

use writer::{
    PendingIncident, WAL_SIZE_LIMIT, WalCheckpointer, Writer, insert_incident, meta_u64, read_head,
    read_meta, set_meta,
};

/// When `append` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// After the record is committed: it survives the process being killed (and, with
    /// [`AuditConfig::fsync`], power loss). The default.
    #[default]
    Durable,
    /// After the record is queued: it is committed within [`AuditConfig::flush_interval`].
    /// A crash loses at most what was queued; the next open reports the range as a gap.
    Buffered,
}

/// What `append` does when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Wait for room. The default.
    #[default]
    Block,
    /// Return [`AuditError::QueueFull`] at once; the caller denies the action.
    Deny,
}

/// How an [`AuditLog`] writes. Build it from `AuditConfig::default()` and set fields.
#[derive(Clone)]
#[non_exhaustive]
pub struct AuditConfig {
    /// Durable (default) or buffered appends.
    pub mode: Mode,
    /// Sync the WAL to stable storage at every commit (`synchronous=FULL`), so committed
    /// records survive power loss. Off (the default), commits survive a killed process but a
    /// power cut may lose the last ones (`synchronous=NORMAL`).
    pub fsync: bool,
    /// In buffered mode, the longest a queued record waits before its batch is committed.
    /// Default 10 ms.
    pub flush_interval: Duration,
    /// Records that may wait in the queue. Default 4096.
    pub queue_capacity: usize,
    /// What a full queue does to `append`. Default [`WhenFull::Block`].
    pub when_full: WhenFull,
    /// Most records committed in one transaction. Default 1024.
    pub max_batch: usize,
    /// Sign a checkpoint after this many records… Default 1000.
    pub checkpoint_every: u64,
    /// …or when this much time has passed since the last one and there are new records.
    /// Default 5 s.
    pub checkpoint_interval: Duration,
    /// The node key that signs checkpoints. Without one no checkpoints are written and
    /// `verify` reports every record as unanchored.
    pub signing_key: Option<SigningKey>,
    /// How long a commit waits for another connection's lock (e.g. someone holding a write
    /// transaction open in `sqlite3`) before the batch fails. Default 5 s.
    pub busy_timeout: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            mode: Mode::Durable,
            fsync: false,
            flush_interval: Duration::from_millis(10),
            queue_capacity: 4096,
            when_full: WhenFull::Block,
            max_batch: 1024,
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(5),
            signing_key: None,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

impl fmt::Debug for AuditConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditConfig")
            .field("mode", &self.mode)
            .field("fsync", &self.fsync)
            .field("flush_interval", &self.flush_interval)
            .field("queue_capacity", &self.queue_capacity)
            .field("when_full", &self.when_full)
            .field("max_batch", &self.max_batch)
            .field("checkpoint_every", &self.checkpoint_every)
            .field("checkpoint_interval", &self.checkpoint_interval)
            .field(
                "signing_key",
                &self
                    .signing_key
                    .as_ref()
                    .map(|k| key_id(&k.verifying_key())),
            )
            .field("busy_timeout", &self.busy_timeout)
            .finish()
    }
}

/// A run of sequence numbers that were handed out but never committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The first missing sequence number.
    pub first_seq: u64,
    /// The last missing sequence number.
    pub last_seq: u64,
}

impl Gap {
    /// How many sequence numbers the gap spans.
    pub fn count(&self) -> u64 {
        self.last_seq - self.first_seq + 1
    }
}

/// Counters of an open log, for `/metrics` and health checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditStats {
    /// Appends accepted into the queue.
    pub appended: u64,
    /// Records committed.
    pub committed: u64,
    /// Records whose commit failed (their appends failed, or in buffered mode were lost).
    pub failed: u64,
    /// Records waiting in the queue now.
    pub queue_depth: usize,
    /// Appends that had to wait for room in the queue (`when_full = block`).
    pub blocked: u64,
    /// Appends refused because the queue was full (`when_full = deny`).
    pub rejected_full: u64,
    /// Checkpoints signed.
    pub checkpoints: u64,
    /// Whether the most recent commit failed.
    pub failing: bool,
    /// The most recent write error, if any ever happened.
    pub last_error: Option<String>,
}

/// The tamper-evident audit log, open for appending.
///
/// `AuditLog` is `Send + Sync`; share it behind an `Arc`. Dropping it closes it (see
/// [`AuditLog::close`] to see errors).
pub struct AuditLog {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    wal: Option<WalCheckpointer>,
    recovered_gap: Option<Gap>,
}

struct Shared {
    path: PathBuf,
    mode: Mode,
    when_full: WhenFull,
    capacity: usize,
    max_batch: usize,
    flush_interval: Duration,
    queue: Mutex<Queue>,
    /// The writer waits here for work.
    work: Condvar,
    /// Appenders wait here for room (`WhenFull::Block`).
    room: Condvar,
    progress: Mutex<Progress>,
    /// `flush` waits here for the writer to get past its target.
    progressed: Condvar,
    appended: AtomicU64,
    committed: AtomicU64,
    failed: AtomicU64,
    blocked: AtomicU64,
    rejected_full: AtomicU64,
    checkpoints: AtomicU64,
    /// The last commit failed. Buffered appends are refused while it is set (they would be
    /// acknowledged and then lost); the writer probes until a write succeeds again.
    failing: AtomicBool,
    errors: Mutex<ErrorState>,
}

struct Queue {
    items: VecDeque<Pending>,
    next_seq: u64,
    writer_idle: bool,
    flush_waiters: usize,
    closing: bool,
    /// Set when the writer thread has stopped; appends fail with this reason.
    stopped: Option<String>,
}

#[derive(Default)]
struct Progress {
    /// Every sequence number up to this one is committed or failed.
    done_through: u64,
    /// Records failed so far (to tell `flush` whether something failed meanwhile).
    failed_total: u64,
}

#[derive(Default)]
struct ErrorState {
    last_error: Option<String>,
    /// The error that made the log fail to close cleanly.
    close_error: Option<String>,
}

/// A queued record. Dropping it without completing it (the writer stopped or panicked)
/// fails the waiting appender, so nobody waits forever.
struct Pending {
    seq: u64,
    ts_ns: i64,
    enqueued: Instant,
    entry: Entry,
    done: Option<Arc<Completion>>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            done.complete(Err(
                "the audit writer stopped before committing the record".into()
            ));
        }
    }
}

/// Where a durable append waits for its commit.
struct Completion {
    /// Set once the result is stored, so a spinning waiter can see it without the lock.
    ready: AtomicBool,
    slot: Mutex<Slot>,
    woken: Condvar,
}

#[derive(Default)]
struct Slot {
    result: Option<Result<(), String>>,
    /// The waiter stopped spinning and sleeps on `woken`.
    parked: bool,
}

/// How long a durable append spins for its commit before sleeping, and how long the writer
/// spins for more work before sleeping. A commit takes ~10 µs, while waking a sleeping
/// thread costs ~20 µs on a virtual machine, twice per append; spinning this briefly keeps
/// a lone durable append well under 50 µs at the price of a few µs of CPU.
const APPEND_SPIN: Duration = Duration::from_micros(60);
const WRITER_SPIN: Duration = Duration::from_micros(50);
/// How often a failing writer tries whether it can write again.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

impl Completion {
    fn new() -> Self {
        Completion {
            ready: AtomicBool::new(false),
            slot: Mutex::new(Slot::default()),
            woken: Condvar::new(),
        }
    }

    fn complete(&self, result: Result<(), String>) {
        let mut slot = lock(&self.slot);
        slot.result = Some(result);
        self.ready.store(true, Ordering::Release);
        let parked = slot.parked;
        drop(slot);
        if parked {
            self.woken.notify_one();
        }
    }

    fn wait(&self) -> Result<(), String> {
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
fn spin_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
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

/// How many sequence numbers buffered mode may have handed out beyond the last commit.
fn reservation_window(config: &AuditConfig) -> u64 {
    (config.queue_capacity + 2 * config.max_batch) as u64
}

/// Lock a mutex, ignoring poisoning: every critical section here leaves the data consistent
/// at each step, and the audit path must keep failing closed rather than panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AuditLog {
    /// Open `path` with checkpoints signed by the node key at `key` (default `<path>.key`).
    /// A missing key file is created (mode 0600, plus `.pub`) only once the log itself has
    /// opened, so a bad `path` leaves nothing behind. This is how Warden's doors (CLI,
    /// server, hook, MCP proxy) open their logs, so every log they write is anchored.
    pub fn open_signed(
        path: impl AsRef<Path>,
        mut config: AuditConfig,
        key: Option<&Path>,
    ) -> Result<AuditLog, AuditError> {
        let path = path.as_ref();
        let key_path = key.map_or_else(|| crate::keys::default_key_path(path), Path::to_path_buf);
        let existing = key_path.exists();
        let signing_key = if existing {
            crate::keys::load_signing_key(&key_path)?
        } else {
            crate::keys::generate_signing_key()?
        };
        config.signing_key = Some(signing_key.clone());
        let log = AuditLog::open(path, config)?;
        if !existing {
            crate::keys::write_key_file(&key_path, &signing_key)?;
        }
        Ok(log)
    }

    /// Open the log at `path`, creating it if there is no file there.
    ///
    /// An existing file is checked (SQLite header, Warden's application id, format version,
    /// schema, the last record's hash) before anything is written to it; a file that fails
    /// the check is left untouched and the error names it. If the previous writer stopped
    /// without closing the log in buffered mode, the sequence numbers it may have handed
    /// out without committing are skipped, reported by [`AuditLog::recovered_gap`], printed
    /// to stderr and recorded as an incident that `verify` shows.
    pub fn open(path: impl AsRef<Path>, config: AuditConfig) -> Result<AuditLog, AuditError> {
        let path = path.as_ref().to_path_buf();
        if config.queue_capacity == 0 || config.max_batch == 0 || config.checkpoint_every == 0 {
            return Err(AuditError::InvalidInput {
                path,
                detail: "queue_capacity, max_batch and checkpoint_every must be at least 1"
                    .to_string(),
            });
        }
        if let Probe::Missing = schema::probe(&path)? {
            schema::create(&path, Timestamp::now().unix_nanos())?;
        }
        // Read-only first: a file that is not ours, or is damaged, is never written to.
        drop(schema::open_read_only(&path)?);

        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(AuditError::sqlite(
            &path,
            "cannot open audit log for writing",
        ))?;
        conn.busy_timeout(config.busy_timeout)
            .map_err(AuditError::sqlite(&path, "cannot set busy timeout"))?;
        let journal: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(AuditError::sqlite(&path, "cannot switch to WAL mode"))?;
        if !journal.eq_ignore_ascii_case("wal") {
            return Err(AuditError::Corrupt {
                path,
                detail: format!("cannot use WAL mode (journal mode stays `{journal}`)"),
            });
        }
        let sync = if config.fsync { "FULL" } else { "NORMAL" };
        // WAL checkpoints run on their own thread (see `WalCheckpointer`), not in commits.
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {sync}; PRAGMA wal_autocheckpoint = 0; \
             PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};"
        ))
        .map_err(AuditError::sqlite(&path, "cannot set synchronous mode"))?;
        schema::check_schema(&conn, &path)?;

        let head = read_head(&conn, &path)?;
        let last_checkpoint: Option<i64> = conn
            .query_row("SELECT max(seq) FROM checkpoints", [], |r| r.get(0))
            .map_err(AuditError::sqlite(&path, "cannot read checkpoints"))?;
        let state = read_meta(&conn, &path, "state")?.unwrap_or_default();
        let reserved = meta_u64(&read_meta(&conn, &path, "reserved_through")?);
        let closed_next = meta_u64(&read_meta(&conn, &path, "next_seq")?);

        // Where numbering resumes: never below a number a caller may already hold.
        let mut next_seq = (head.0 + 1).max(closed_next);
        let mut recovered_gap = None;
        let mut incidents = Vec::new();
        if state == "open:buffered" && reserved > head.0 && reserved >= next_seq {
            let gap = Gap {
                first_seq: next_seq,
                last_seq: reserved,
            };
            tracing::warn!(
                "{}: the previous writer stopped without closing the log in buffered mode; \
                 records {}..={} may have been lost (at most {} records)",
                path.display(),
                gap.first_seq,
                gap.last_seq,
                gap.count()
            );
            incidents.push(PendingIncident {
                kind: "unclean_shutdown",
                first_seq: gap.first_seq,
                last_seq: gap.last_seq,
                detail: "the writer stopped without closing the log in buffered mode; \
                         queued records in this range may have been lost"
                    .to_string(),
            });
            recovered_gap = Some(gap);
            next_seq = reserved + 1;
        }

        let buffered = config.mode == Mode::Buffered;
        // In buffered mode callers hold numbers of records not yet committed: at most the
        // queue plus the batch being written (plus one batch that just failed). Reserving
        // that window durably lets a restart after a crash skip every number that might have
        // been handed out.
        let window = reservation_window(&config);
        let state_value = if buffered {
            "open:buffered"
        } else {
            "open:durable"
        };
        let now = Timestamp::now().unix_nanos();
        let tx = || -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            set_meta(&conn, "state", state_value)?;
            set_meta(
                &conn,
                "reserved_through",
                &(next_seq - 1 + if buffered { window } else { 0 }).to_string(),
            )?;
            for i in &incidents {
                insert_incident(&conn, now, i)?;
            }
            conn.execute_batch("COMMIT")
        };
        if let Err(e) = tx() {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(AuditError::sqlite(&path, "cannot mark the log open")(e));
        }

        let shared = Arc::new(Shared {
            path: path.clone(),
            mode: config.mode,
            when_full: config.when_full,
            capacity: config.queue_capacity,
            max_batch: config.max_batch,
            flush_interval: config.flush_interval,
            queue: Mutex::new(Queue {
                items: VecDeque::with_capacity(config.queue_capacity.min(1 << 16)),
                next_seq,
                writer_idle: false,
                flush_waiters: 0,
                closing: false,
                stopped: None,
            }),
            work: Condvar::new(),
            room: Condvar::new(),
            progress: Mutex::new(Progress {
                done_through: next_seq - 1,
                failed_total: 0,
            }),
            progressed: Condvar::new(),
            appended: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            blocked: AtomicU64::new(0),
            rejected_full: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            errors: Mutex::new(ErrorState::default()),
        });
        let last_cp_seq = last_checkpoint.map_or(0, |s| s.max(0).cast_unsigned());
        let writer = Writer::new(shared.clone(), conn, head, last_cp_seq, config.clone());
        let wal = WalCheckpointer::spawn(&path, config.busy_timeout, shared.clone())?;
        let handle = std::thread::Builder::new()
            .name("warden-audit-writer".to_string())
            .spawn(move || writer.run())
            .map_err(AuditError::io(
                &path,
                "cannot start the audit writer thread",
            ))?;
        Ok(AuditLog {
            shared,
            writer: Some(handle),
            wal: Some(wal),
            recovered_gap,
        })
    }

    /// Append one record and return its sequence number.
    ///
    /// Durable mode returns once the record is committed; buffered mode once it is queued.
    /// An error means the record is not (and will not be) in the log: deny the action.
    pub fn append(&self, entry: Entry) -> Result<u64, AuditError> {
        let s = &*self.shared;
        if entry
            .policy_version
            .is_some_and(|v| i64::try_from(v).is_err())
        {
            return Err(AuditError::InvalidInput {
                path: s.path.clone(),
                detail: "policy_version must be below 2^63".to_string(),
            });
        }
        if s.mode == Mode::Buffered && s.failing.load(Ordering::Relaxed) {
            let detail = lock(&s.errors)
                .last_error
                .clone()
                .unwrap_or_else(|| "writes are failing".to_string());
            return Err(AuditError::WriteFailed {
                path: s.path.clone(),
                detail,
            });
        }
        let done = (s.mode == Mode::Durable).then(|| Arc::new(Completion::new()));
        let mut q = lock(&s.queue);
        loop {
            if let Some(reason) = &q.stopped {
                return Err(AuditError::Closed {
                    path: s.path.clone(),
                    detail: reason.clone(),
                });
            }
            if q.closing {
                return Err(AuditError::Closed {
                    path: s.path.clone(),
                    detail: "the log is being closed".to_string(),
                });
            }
            if q.items.len() < s.capacity {
                break;
            }
            match s.when_full {
                WhenFull::Deny => {
                    s.rejected_full.fetch_add(1, Ordering::Relaxed);
                    return Err(AuditError::QueueFull {
                        path: s.path.clone(),
                        capacity: s.capacity,
                    });
                }
                WhenFull::Block => {
                    s.blocked.fetch_add(1, Ordering::Relaxed);
                    q = s.room.wait(q).unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
        let seq = q.next_seq;
        q.next_seq += 1;
        // Taken under the lock so that timestamps follow sequence order on a steady clock.
        let ts_ns = Timestamp::now().unix_nanos();
        q.items.push_back(Pending {
            seq,
            ts_ns,
            enqueued: Instant::now(),
            entry,
            done: done.clone(),
        });
        s.appended.fetch_add(1, Ordering::Relaxed);
        // Wake the writer only when it has something to do now: in buffered mode a lone
        // record waits out the flush interval anyway, so waking per record would be waste.
        let wake = q.writer_idle
            && (s.mode == Mode::Durable
                || q.items.len() == 1
                || q.items.len() >= s.max_batch
                || q.flush_waiters > 0);
        drop(q);
        if wake {
            s.work.notify_one();
        }
        match done {
            None => Ok(seq),
            Some(done) => match done.wait() {
                Ok(()) => Ok(seq),
                Err(detail) => Err(AuditError::WriteFailed {
                    path: s.path.clone(),
                    detail,
                }),
            },
        }
    }

    /// Wait until every record appended before this call is committed. Returns an error if
    /// any write failed meanwhile (in buffered mode, the only way a caller learns of it
    /// besides [`AuditLog::stats`]).
    pub fn flush(&self) -> Result<(), AuditError> {
        let s = &*self.shared;
        let failed_before = lock(&s.progress).failed_total;
        let target = {
            let mut q = lock(&s.queue);
            if let Some(reason) = &q.stopped {
                return Err(AuditError::Closed {
                    path: s.path.clone(),
                    detail: reason.clone(),
                });
            }
            q.flush_waiters += 1;
            q.next_seq - 1
        };
        s.work.notify_one();
        let mut stopped = None;
        {
            let mut p = lock(&s.progress);
            while p.done_through < target {
                if let Some(reason) = &lock(&s.queue).stopped {
                    stopped = Some(reason.clone());
                    break;
                }
                p = s
                    .progressed
                    .wait_timeout(p, Duration::from_millis(100))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            if stopped.is_none() && p.failed_total > failed_before {
                let detail = lock(&s.errors)
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "a write failed".to_string());
                lock(&s.queue).flush_waiters -= 1;
                return Err(AuditError::WriteFailed {
                    path: s.path.clone(),
                    detail,
                });
            }
        }
        lock(&s.queue).flush_waiters -= 1;
        match stopped {
            Some(detail) => Err(AuditError::Closed {
                path: s.path.clone(),
                detail,
            }),
            None => Ok(()),
        }
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> AuditStats {
        let s = &*self.shared;
        let queue_depth = lock(&s.queue).items.len();
        let errors = lock(&s.errors);
        AuditStats {
            appended: s.appended.load(Ordering::Relaxed),
            committed: s.committed.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            queue_depth,
            blocked: s.blocked.load(Ordering::Relaxed),
            rejected_full: s.rejected_full.load(Ordering::Relaxed),
            checkpoints: s.checkpoints.load(Ordering::Relaxed),
            failing: s.failing.load(Ordering::Relaxed),
            last_error: errors.last_error.clone(),
        }
    }

    /// The sequence numbers skipped at open because the previous writer stopped uncleanly in
    /// buffered mode (records in that range may have been lost), if any.
    pub fn recovered_gap(&self) -> Option<Gap> {
        self.recovered_gap
    }

    /// The file this log writes.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Commit everything queued, sign a final checkpoint, mark the log cleanly closed and
    /// stop the writer.
    pub fn close(mut self) -> Result<(), AuditError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), AuditError> {
        let Some(handle) = self.writer.take() else {
            return Ok(());
        };
        lock(&self.shared.queue).closing = true;
        self.shared.work.notify_one();
        self.shared.room.notify_all();
        let joined = handle.join();
        // After the writer: the last connection to close folds the WAL back and removes it.
        drop(self.wal.take());
        let close_error = lock(&self.shared.errors).close_error.clone();
        match (joined, close_error) {
            (Err(_), _) => Err(AuditError::Closed {
                path: self.shared.path.clone(),
                detail: "the audit writer thread panicked".to_string(),
            }),
            (Ok(()), Some(detail)) => Err(AuditError::WriteFailed {
                path: self.shared.path.clone(),
                detail,
            }),
            (Ok(()), None) => Ok(()),
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!("closing the log failed: {e}");
        }
    }
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.shared.path)
            .field("mode", &self.shared.mode)
            .finish_non_exhaustive()
    }
}
