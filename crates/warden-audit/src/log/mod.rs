//! [`AuditLog`]: appending records through a bounded queue to one writer thread that group
//! commits them, chains their hashes and signs a checkpoint with every commit.
//!
//! Why one writer thread per process: the chain is sequential (each hash covers the previous
//! one), SQLite has one writer at a time anyway, and batching many appends into one
//! transaction is what makes the log fast. Why it works with many processes: every batch is
//! numbered and chained inside SQLite's write lock from the head the file holds at that
//! moment (see `writer.rs`), so hook calls, CLI checks and a server can share one log.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::error::{AuditError, WriteError};
use crate::record::{Checkpoint, Entry, Incident};
use crate::store::{self, Head, Probe};
use crate::timestamp::Timestamp;

mod config;
mod lease;
mod queue;
mod tail;
mod wal;
mod writer;

pub use config::{AuditConfig, Mode, WhenFull};
use queue::{Completion, Pending, PendingIncident, Shared, lock};
use wal::{WAL_SIZE_LIMIT, WalCheckpointer};
use writer::{Opened, Writer};

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
    /// Checkpoints signed by this process.
    pub checkpoints: u64,
    /// Times this process's checkpoint thread started the WAL over (see `wal_restart_bytes`).
    pub wal_restarts: u64,
    /// Whether the most recent commit failed.
    pub failing: bool,
    /// The most recent write error, if any ever happened.
    pub last_error: Option<String>,
}

/// The tamper-evident audit log, open for appending.
///
/// `AuditLog` is `Send + Sync`; share it behind an `Arc`. Any number of processes (and of
/// `AuditLog`s in one process) may append to the same file at once. Dropping it closes it
/// (see [`AuditLog::close`] to see errors).
pub struct AuditLog {
    shared: Arc<Shared>,
    /// The writer's state, owned by the writer thread and lent to async appenders that
    /// commit their group themselves (`writer::combine`).
    committer: Weak<Mutex<Writer>>,
    writer: Option<JoinHandle<()>>,
    wal: Option<WalCheckpointer>,
    incidents_at_open: Vec<Incident>,
}

/// A log file recognised, checked and opened for writing, before its writer starts.
struct Prepared {
    path: PathBuf,
    conn: Connection,
    opened: Opened,
    /// The newest checkpoint as the open found it, its signature not checked yet (the key
    /// may not be loaded yet: see [`check_signer`]).
    anchor: Option<Checkpoint>,
    incidents: Vec<PendingIncident>,
}

impl AuditLog {
    /// Open `path` with checkpoints signed by the node key at `key` (default `<path>.key`).
    /// A missing key file is created (mode 0600, plus `.pub`) only once the log itself has
    /// opened, so a bad `path` leaves nothing behind; when several processes create it at
    /// once they all end up with the same key. This is how Warden's doors (CLI, server,
    /// hook, MCP proxy) open their logs, so every log they write is anchored.
    pub fn open_signed(
        path: impl AsRef<Path>,
        mut config: AuditConfig,
        key: Option<&Path>,
    ) -> Result<AuditLog, AuditError> {
        let path = path.as_ref();
        let mut prepared = prepare(path, &config, true)?;
        let key_path = key.map_or_else(|| crate::keys::default_key_path(path), Path::to_path_buf);
        config.signing_key = Some(crate::keys::load_or_create_key_file(&key_path)?);
        check_signer(&mut prepared, &config)?;
        start(prepared, config)
    }

    /// Open the log at `path`, creating it if there is no file there.
    ///
    /// An existing file is checked (SQLite header, Warden's application id, format version,
    /// schema, and the end of the chain: see [`AuditError::TamperedTail`]; with a key, the
    /// newest checkpoint must be signed by it and cover the last record) before anything is
    /// written to it; a file that fails the check is left untouched and the error names it.
    /// If a buffered writer died without closing the log, the records it may have lost are
    /// noted as an incident, returned by [`AuditLog::incidents_at_open`].
    pub fn open(path: impl AsRef<Path>, config: AuditConfig) -> Result<AuditLog, AuditError> {
        let mut prepared = prepare(path.as_ref(), &config, config.signing_key.is_some())?;
        check_signer(&mut prepared, &config)?;
        start(prepared, config)
    }

    /// Append one record.
    ///
    /// Durable mode returns `Some(seq)` once the record is committed. Buffered mode returns
    /// `None` once it is queued: its number is assigned when its batch commits, under the
    /// file's write lock, because other processes may be appending too. An error means the
    /// record is not (and will not be) in the log: deny the action.
    pub fn append(&self, entry: Entry) -> Result<Option<u64>, AuditError> {
        match enqueue(&self.shared, entry, true, true) {
            Ok(done) => finish_blocking(&self.shared, done),
            Err(Refused::Error(e)) => Err(e),
            // (Not returned when blocking is allowed.)
            Err(Refused::Full(_)) => Err(queue_full(&self.shared)),
        }
    }

    /// Append one record without blocking the calling thread: the returned [`Appended`] is a
    /// future (and can be waited for with [`Appended::wait`]) with the same result as
    /// [`AuditLog::append`], completed by the writer thread when the record's group commits.
    /// Async callers await it instead of parking a thread per record, and all records
    /// submitted while a commit runs share the next one.
    ///
    /// In durable mode without `fsync` the writer thread is not woken for it: the first
    /// poll yields once (so the caller's runtime runs its other ready tasks, which queue
    /// their records too), and the next poll commits everything queued on the polling
    /// thread unless someone else is committing already (then their commit, or the writer
    /// thread, completes it). Such a commit never waits for a lock: if another connection
    /// or this process's other writer holds the file, the group goes to the writer thread.
    ///
    /// One case still needs a thread that may block: the queue is full and the log is set to
    /// wait for room (`when_full = block`). Then the record is not queued yet and
    /// [`Appended::must_block`] says so; [`Appended::wait`] (on a blocking thread) queues it
    /// and waits, while polling the future would block the polling thread.
    pub fn submit(&self, entry: Entry) -> Appended {
        let state = match enqueue(&self.shared, entry, false, !self.shared.combine) {
            Ok(None) => Waiting::Done(Ok(None)),
            Ok(Some(done)) => Waiting::Commit(done),
            Err(Refused::Error(e)) => Waiting::Done(Err(e)),
            Err(Refused::Full(entry)) => Waiting::Room(entry),
        };
        Appended {
            shared: self.shared.clone(),
            committer: self.committer.clone(),
            yielded: false,
            state,
        }
    }

    fn write_error(&self, e: WriteError) -> AuditError {
        AuditError::from_write(self.shared.path.clone(), e)
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
            s.flushers.fetch_add(1, Ordering::SeqCst);
            q.accepted
        };
        s.work.notify_one();
        let mut stopped = None;
        let mut failed = false;
        {
            let mut p = lock(&s.progress);
            while p.done < target {
                if let Some(reason) = &lock(&s.queue).stopped {
                    stopped = Some(reason.clone());
                    break;
                }
                p = s
                    .progressed
                    .wait_timeout(p, Duration::from_millis(100))
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
            if p.failed_total > failed_before {
                failed = true;
            }
        }
        lock(&s.queue).flush_waiters -= 1;
        s.flushers.fetch_sub(1, Ordering::SeqCst);
        match (stopped, failed) {
            (Some(detail), _) => Err(AuditError::Closed {
                path: s.path.clone(),
                detail,
            }),
            (None, true) => Err(self.write_error(s.last_error())),
            (None, false) => Ok(()),
        }
    }

    /// How many records the largest recent commit carried (0 before the first; forgotten
    /// by a sixteenth per commit): above one, appenders are concurrent, and waiting for that
    /// many records before committing makes groups as large as they recently were.
    pub fn recent_group(&self) -> usize {
        self.shared
            .recent_group
            .load(Ordering::Relaxed)
            .div_ceil(256)
    }

    /// Records handed to this log and not yet committed or failed (three atomic loads; may
    /// be off by the records of a commit in progress).
    pub fn uncommitted(&self) -> u64 {
        let s = &*self.shared;
        let done = s.committed.load(Ordering::Relaxed) + s.failed.load(Ordering::Relaxed);
        s.appended.load(Ordering::Relaxed).saturating_sub(done)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> AuditStats {
        let s = &*self.shared;
        let queue_depth = lock(&s.queue).items.len();
        AuditStats {
            appended: s.appended.load(Ordering::Relaxed),
            committed: s.committed.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            queue_depth,
            blocked: s.blocked.load(Ordering::Relaxed),
            rejected_full: s.rejected_full.load(Ordering::Relaxed),
            checkpoints: s.checkpoints.load(Ordering::Relaxed),
            wal_restarts: s.wal_restarts.load(Ordering::Relaxed),
            failing: s.failing.load(Ordering::Relaxed),
            last_error: lock(&s.last_error).as_ref().map(ToString::to_string),
        }
    }

    /// What this open found and wrote into the `incidents` table: buffered writers that died
    /// without closing the log (records they had accepted may be lost), or, with
    /// [`AuditConfig::allow_tampered_tail`], a damaged end it continued after.
    pub fn incidents_at_open(&self) -> &[Incident] {
        &self.incidents_at_open
    }

    /// The file this log writes.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Commit everything queued (each commit signs its checkpoint) and stop the writer.
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
        let close_error = lock(&self.shared.close_error).clone();
        match (joined, close_error) {
            (Err(_), _) => Err(AuditError::Closed {
                path: self.shared.path.clone(),
                detail: "the audit writer thread panicked".to_string(),
            }),
            (Ok(()), Some(e)) => Err(self.write_error(e)),
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

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.shared.path)
            .field("mode", &self.shared.mode)
            .finish_non_exhaustive()
    }
}

/// Why [`enqueue`] did not queue a record.
enum Refused {
    /// The record will not be in the log.
    Error(AuditError),
    /// The queue is full, the log waits for room, and the caller may not block.
    Full(Box<Entry>),
}

fn queue_full(s: &Shared) -> AuditError {
    AuditError::QueueFull {
        path: s.path.clone(),
        capacity: s.capacity,
    }
}

/// Put `entry` in the queue (waiting for room when the log says so and `block` allows).
/// Returns what a durable appender waits on (`None` in buffered mode: queued is done).
/// `blocking`: the appender waits on a thread for the writer thread's commit (otherwise,
/// with `Shared::combine`, it commits its group itself and the writer is not woken).
fn enqueue(
    s: &Shared,
    entry: Entry,
    block: bool,
    blocking: bool,
) -> Result<Option<Arc<Completion>>, Refused> {
    if entry
        .policy_version
        .is_some_and(|v| i64::try_from(v).is_err())
    {
        return Err(Refused::Error(AuditError::InvalidInput {
            path: s.path.clone(),
            detail: "policy_version must be below 2^63".to_string(),
        }));
    }
    if s.mode == Mode::Buffered && s.failing.load(Ordering::Relaxed) {
        return Err(Refused::Error(AuditError::from_write(
            s.path.clone(),
            WriteError::Failing(Box::new(s.last_error())),
        )));
    }
    let mut q = lock(&s.queue);
    loop {
        if let Some(reason) = &q.stopped {
            return Err(Refused::Error(AuditError::Closed {
                path: s.path.clone(),
                detail: reason.clone(),
            }));
        }
        if q.closing {
            return Err(Refused::Error(AuditError::Closed {
                path: s.path.clone(),
                detail: "the log is being closed".to_string(),
            }));
        }
        if q.items.len() < s.capacity {
            break;
        }
        match s.when_full {
            WhenFull::Deny => {
                s.rejected_full.fetch_add(1, Ordering::Relaxed);
                return Err(Refused::Error(queue_full(s)));
            }
            WhenFull::Block if !block => return Err(Refused::Full(Box::new(entry))),
            WhenFull::Block => {
                s.blocked.fetch_add(1, Ordering::Relaxed);
                q.room_waiters += 1;
                q = s
                    .room
                    .wait(q)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                q.room_waiters -= 1;
            }
        }
    }
    let done = (s.mode == Mode::Durable).then(|| Arc::new(Completion::new()));
    q.items.push_back(Pending {
        enqueued: Instant::now(),
        entry,
        done: done.clone(),
        blocking,
    });
    q.accepted += 1;
    s.appended.fetch_add(1, Ordering::Relaxed);
    // Wake the writer only when it has something to do now: in buffered mode a lone
    // record waits out the flush interval anyway, so waking per record would be waste.
    // An async durable appender that commits its group itself wakes nobody.
    let wake = q.writer_idle
        && (q.flush_waiters > 0
            || match s.mode {
                Mode::Durable => blocking || !s.combine,
                Mode::Buffered => q.items.len() == 1 || q.items.len() >= s.max_batch,
            });
    drop(q);
    if wake {
        s.work.notify_one();
    }
    Ok(done)
}

/// Wait (on this thread) for what [`enqueue`] returned.
fn finish_blocking(s: &Shared, done: Option<Arc<Completion>>) -> Result<Option<u64>, AuditError> {
    match done {
        None => Ok(None),
        Some(done) => done
            .wait()
            .map(Some)
            .map_err(|e| AuditError::from_write(s.path.clone(), e)),
    }
}

/// A record handed to the log by [`AuditLog::submit`]: a future of the append's result
/// (`Some(seq)` once committed in durable mode, `None` once queued in buffered mode, or the
/// error that means the record is not in the log: deny the action).
#[must_use = "a durable record is only committed once this says so"]
pub struct Appended {
    shared: Arc<Shared>,
    committer: Weak<Mutex<Writer>>,
    /// Polled once already: the next poll commits the group (see [`AuditLog::submit`]).
    yielded: bool,
    state: Waiting,
}

enum Waiting {
    /// The result is known.
    Done(Result<Option<u64>, AuditError>),
    /// Queued; the writer completes it after the commit.
    Commit(Arc<Completion>),
    /// Not queued yet: the queue was full and the log waits for room.
    Room(Box<Entry>),
    /// The result was handed out.
    Taken,
}

impl Appended {
    /// Whether finishing this append needs a thread that may block (the queue was full and
    /// the log waits for room): then use [`Appended::wait`] on such a thread.
    pub fn must_block(&self) -> bool {
        matches!(self.state, Waiting::Room(_))
    }

    /// Whether awaiting this append commits its group on the awaiting task (a durable log
    /// whose async appenders commit themselves, the record not committed yet). Records
    /// queued before that await join the same commit.
    pub fn commits_on_await(&self) -> bool {
        self.shared.combine && matches!(&self.state, Waiting::Commit(done) if !done.is_ready())
    }

    /// Wait on this thread for the result.
    pub fn wait(mut self) -> Result<Option<u64>, AuditError> {
        let s = &*self.shared;
        match std::mem::replace(&mut self.state, Waiting::Taken) {
            Waiting::Done(r) => r,
            Waiting::Commit(done) => {
                // Queued without waking the writer thread (the poller would have committed
                // it): this thread waits for the writer's commit instead.
                s.wake_writer();
                finish_blocking(s, Some(done))
            }
            Waiting::Room(entry) => match enqueue(s, *entry, true, true) {
                Ok(done) => finish_blocking(s, done),
                Err(Refused::Error(e)) => Err(e),
                Err(Refused::Full(_)) => Err(queue_full(s)),
            },
            Waiting::Taken => Err(taken(s)),
        }
    }
}

fn taken(s: &Shared) -> AuditError {
    AuditError::Closed {
        path: s.path.clone(),
        detail: "this append's result was already taken".to_string(),
    }
}

impl std::future::Future for Appended {
    type Output = Result<Option<u64>, AuditError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = &mut *self;
        let s = &*this.shared;
        let result = match &mut this.state {
            Waiting::Commit(done) => {
                let mut polled = done.poll(cx);
                if polled.is_pending() && s.combine {
                    if !this.yielded {
                        // Let the runtime run the other ready tasks first: their records
                        // join this one's commit.
                        this.yielded = true;
                        cx.waker().wake_by_ref();
                        return std::task::Poll::Pending;
                    }
                    if let Some(committer) = this.committer.upgrade() {
                        writer::combine(&committer, s);
                    }
                    polled = done.poll(cx);
                }
                match polled {
                    std::task::Poll::Pending => return std::task::Poll::Pending,
                    std::task::Poll::Ready(r) => r
                        .map(Some)
                        .map_err(|e| AuditError::from_write(s.path.clone(), e)),
                }
            }
            Waiting::Room(_) | Waiting::Done(_) | Waiting::Taken => {
                match std::mem::replace(&mut this.state, Waiting::Taken) {
                    Waiting::Done(r) => r,
                    // Documented: blocks this thread until there is room (see `must_block`).
                    Waiting::Room(entry) => match enqueue(s, *entry, true, !s.combine) {
                        Ok(None) => Ok(None),
                        Ok(Some(done)) => {
                            this.state = Waiting::Commit(done);
                            return std::pin::Pin::new(this).poll(cx);
                        }
                        Err(Refused::Error(e)) => Err(e),
                        Err(Refused::Full(_)) => Err(queue_full(s)),
                    },
                    _ => Err(taken(s)),
                }
            }
        };
        this.state = Waiting::Taken;
        std::task::Poll::Ready(result)
    }
}

impl Drop for Appended {
    fn drop(&mut self) {
        // Dropped before its commit (the caller went away): its record stays queued, and
        // nobody would commit it but the writer thread.
        if let Waiting::Commit(done) = &self.state
            && self.shared.combine
            && !done.is_ready()
        {
            self.shared.wake_writer();
        }
    }
}

impl std::fmt::Debug for Appended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            Waiting::Done(_) => "done",
            Waiting::Commit(_) => "committing",
            Waiting::Room(_) => "waiting for room",
            Waiting::Taken => "taken",
        };
        f.debug_struct("Appended")
            .field("path", &self.shared.path)
            .field("state", &state)
            .finish()
    }
}

/// Recognise (or create) the file, open the writing connection, check the end of the chain
/// (all but the newest checkpoint's signature: `keyed` says whether the writer will have a
/// key).
fn prepare(path: &Path, config: &AuditConfig, keyed: bool) -> Result<Prepared, AuditError> {
    let path = path.to_path_buf();
    if config.queue_capacity == 0 || config.max_batch == 0 || config.keep_checkpoint_every == 0 {
        return Err(AuditError::InvalidInput {
            path,
            detail: "queue_capacity, max_batch and keep_checkpoint_every must be at least 1"
                .to_string(),
        });
    }
    if let Probe::Missing = store::probe(&path)? {
        store::create(&path, Timestamp::now().unix_nanos())?;
    }
    // Read-only first: a file that is not ours, or is damaged, is never written to.
    let reader = store::open_read_only(&path)?;
    if reader.encoding == crate::encoding::Encoding::V1 {
        return Err(AuditError::OldFormat {
            path,
            found: 1,
            current: store::FORMAT_VERSION,
        });
    }
    drop(reader);

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
    store::check_schema(&conn, &path, crate::encoding::Encoding::V2)?;

    // One read transaction: the tail, the marker and the checkpoint from one snapshot.
    conn.execute_batch("BEGIN")
        .map_err(AuditError::sqlite(&path, "cannot start a read transaction"))?;
    let checked = tail::check_tail(&conn, keyed);
    let _ = conn.execute_batch("COMMIT");
    let mut prepared = Prepared {
        path,
        conn,
        opened: Opened {
            head: Head::EMPTY,
            trusted: None,
            accepted: None,
        },
        anchor: None,
        incidents: Vec::new(),
    };
    match checked {
        Ok(end) => {
            prepared.opened.head = end.head;
            prepared.anchor = end.anchor;
        }
        Err(e) => accept_damage(&mut prepared, config, e)?,
    }
    Ok(prepared)
}

/// With a key: the newest checkpoint the open found must be signed by it.
fn check_signer(prepared: &mut Prepared, config: &AuditConfig) -> Result<(), AuditError> {
    let (Some(anchor), Some(key)) = (prepared.anchor.take(), &config.signing_key) else {
        return Ok(());
    };
    let mut trusted = None;
    // Outside any write lock: the signature itself is checked (no MAC needed).
    match tail::check_signer(&anchor, &key.verifying_key(), false, &mut trusted) {
        Ok(()) => {
            prepared.opened.trusted = trusted;
            Ok(())
        }
        Err(e) => accept_damage(prepared, config, e),
    }
}

/// A damaged or forged end found at open: an error, unless `allow_tampered_tail`, which notes
/// an incident (written before any record) and lets the writer continue from the end as it is.
fn accept_damage(
    prepared: &mut Prepared,
    config: &AuditConfig,
    e: WriteError,
) -> Result<(), AuditError> {
    let path = &prepared.path;
    let WriteError::TamperedTail { seq, detail } = e else {
        return Err(AuditError::from_write(path.clone(), e));
    };
    if !config.allow_tampered_tail {
        return Err(AuditError::TamperedTail {
            path: path.clone(),
            seq,
            detail,
        });
    }
    tracing::warn!(
        "{}: record {seq}: {detail}; appending anyway, as allowed",
        path.display()
    );
    let found = store::read_head(&prepared.conn).ok().flatten();
    prepared.incidents.push(PendingIncident {
        kind: "tampered_tail",
        after_seq: found.map_or(seq, |h| h.seq),
        lost: 0,
        detail: format!("opened for appending although record {seq}: {detail}"),
    });
    // Nothing at the end is vouched for or remembered; the writer notes no second incident
    // for the same end.
    prepared.opened = Opened {
        head: Head::EMPTY,
        trusted: None,
        accepted: found,
    };
    Ok(())
}

/// Write what the open found (incidents, stale registrations), register a buffered writer,
/// and start the writer and WAL threads.
fn start(prepared: Prepared, config: AuditConfig) -> Result<AuditLog, AuditError> {
    let Prepared {
        path,
        conn,
        opened,
        anchor: _,
        mut incidents,
    } = prepared;
    let head = opened.accepted.unwrap_or(opened.head);
    let buffered = config.mode == Mode::Buffered;
    let mut lease = None;
    if buffered || !incidents.is_empty() || lease::any_registrations(&path, &conn)? {
        let now = Timestamp::now().unix_nanos();
        let mut tx = || -> Result<Option<lease::Lease>, AuditError> {
            let sql = AuditError::sqlite(&path, "cannot record what the open found");
            conn.execute_batch("BEGIN IMMEDIATE").map_err(sql)?;
            // Inside the write lock, so two openers never both reap the same registration.
            let (stale, reaped) = lease::stale_registrations(&path, &conn, head.seq)?;
            incidents.extend(reaped);
            for key in &stale {
                conn.execute("DELETE FROM meta WHERE key = ?1", [key])
                    .map_err(AuditError::sqlite(
                        &path,
                        "cannot remove a stale registration",
                    ))?;
            }
            for i in &incidents {
                store::insert_incident(&conn, now, i.kind, i.after_seq, i.lost, &i.detail)
                    .map_err(AuditError::sqlite(&path, "cannot record an incident"))?;
            }
            // In buffered mode callers hold acknowledgements of records not yet committed:
            // at most the queue plus the batch being written (plus one that just failed).
            let lease = buffered
                .then(|| {
                    let window = (config.queue_capacity + 2 * config.max_batch) as u64;
                    lease::Lease::acquire(&path, &conn, window)
                })
                .transpose()?;
            conn.execute_batch("COMMIT").map_err(AuditError::sqlite(
                &path,
                "cannot record what the open found",
            ))?;
            Ok(lease)
        };
        match tx() {
            Ok(l) => lease = l,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        for i in &incidents {
            if i.kind == "unclean_shutdown" {
                tracing::warn!("{}: {}", path.display(), i.detail);
            }
        }
    }
    let at = Timestamp::now();
    let incidents_at_open = incidents
        .iter()
        .map(|i| Incident {
            at,
            kind: i.kind.to_string(),
            after_seq: i.after_seq,
            lost: i.lost,
            detail: i.detail.clone(),
        })
        .collect();

    let shared = Arc::new(Shared::new(path.clone(), &config));
    let busy_timeout = config.busy_timeout;
    let wal_restart_bytes = config.wal_restart_bytes;
    let writer = Arc::new(Mutex::new(Writer::new(
        shared.clone(),
        conn,
        opened,
        config,
        lease,
    )));
    let committer = Arc::downgrade(&writer);
    let wal = WalCheckpointer::spawn(
        &path,
        busy_timeout,
        wal_restart_bytes,
        shared.clone(),
        committer.clone(),
    )?;
    let for_thread = shared.clone();
    let handle = std::thread::Builder::new()
        .name("warden-audit-writer".to_string())
        .spawn(move || Writer::run(writer, for_thread))
        .map_err(AuditError::io(
            &path,
            "cannot start the audit writer thread",
        ))?;
    Ok(AuditLog {
        shared,
        committer,
        writer: Some(handle),
        wal: Some(wal),
        incidents_at_open,
    })
}
