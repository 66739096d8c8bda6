//! The writer thread: takes batches off the queue, chains and commits them, signs
//! checkpoints, records incidents, probes a failing log; and the thread that copies the WAL
//! back into the database file. Everything here runs off the callers' threads.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{
    AuditConfig, Mode, PROBE_INTERVAL, Pending, Shared, WRITER_SPIN, lock, reservation_window,
    spin_until,
};
use crate::encoding::{GENESIS_HASH, checkpoint_message};
use crate::error::AuditError;
use crate::keys::{SCHEME_ED25519, key_id};
use crate::schema;
use crate::timestamp::Timestamp;

/// An explanation for a gap, written into the `incidents` table with the next commit.
pub(super) struct PendingIncident {
    pub kind: &'static str,
    pub first_seq: u64,
    pub last_seq: u64,
    pub detail: String,
}

/// The writer thread's state. Owns the only read-write connection.
pub(super) struct Writer {
    shared: Arc<Shared>,
    conn: Connection,
    head_seq: u64,
    head_hash: [u8; 32],
    last_cp_seq: u64,
    last_cp_at: Instant,
    key: Option<SigningKey>,
    checkpoint_every: u64,
    checkpoint_interval: Duration,
    /// Buffered mode's reservation window (0 in durable mode).
    window: u64,
    buf: Vec<u8>,
    incidents: Vec<PendingIncident>,
    /// When the writer last tried whether a failing log can be written again.
    last_probe: Instant,
}

const INSERT_RECORD: &str = "INSERT INTO records (seq, ts_ns, agent, action, tool, resource, \
    verdict, policy, rule, reason, args, args_digest, latency_ns, policy_version, prev_hash, hash) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";

impl Writer {
    pub(super) fn new(
        shared: Arc<Shared>,
        conn: Connection,
        head: (u64, [u8; 32]),
        last_cp_seq: u64,
        config: AuditConfig,
    ) -> Self {
        let window = if config.mode == Mode::Buffered {
            reservation_window(&config)
        } else {
            0
        };
        Writer {
            shared,
            conn,
            head_seq: head.0,
            head_hash: head.1,
            last_cp_seq,
            last_cp_at: Instant::now(),
            key: config.signing_key,
            checkpoint_every: config.checkpoint_every,
            checkpoint_interval: config.checkpoint_interval,
            window,
            buf: Vec::with_capacity(1024),
            incidents: Vec::new(),
            last_probe: Instant::now(),
        }
    }

    pub(super) fn run(mut self) {
        let shared = self.shared.clone();
        // Whatever ends this thread (including a panic), appenders must stop waiting.
        let _stopped = StopGuard(shared.clone());
        let mut batch: Vec<Pending> = Vec::with_capacity(shared.max_batch);
        loop {
            let closing = self.next_batch(&mut batch);
            if !batch.is_empty() {
                self.commit(&mut batch);
            } else if closing {
                break;
            } else {
                if self.probe_due() {
                    self.probe();
                }
                if self.checkpoint_due() {
                    self.checkpoint_only();
                }
            }
        }
        self.finish();
    }

    /// Wait for work and take up to `max_batch` records. Returns whether the log is closing.
    fn next_batch(&mut self, batch: &mut Vec<Pending>) -> bool {
        let s = &*self.shared;
        let mut q = lock(&s.queue);
        let mut spun = false;
        loop {
            if !q.items.is_empty() {
                let ready = q.closing
                    || s.mode == Mode::Durable
                    || q.items.len() >= s.max_batch
                    || q.flush_waiters > 0;
                let age = q
                    .items
                    .front()
                    .map_or(Duration::ZERO, |p| p.enqueued.elapsed());
                if ready || age >= s.flush_interval {
                    break;
                }
                q.writer_idle = true;
                q = s
                    .work
                    .wait_timeout(q, s.flush_interval - age)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                q.writer_idle = false;
                continue;
            }
            if q.closing {
                return true;
            }
            if self.checkpoint_due() || self.probe_due() {
                return false;
            }
            if s.mode == Mode::Durable && !spun {
                // Durable appenders wait on us: catch the next one without a wake-up.
                let seen = s.appended.load(Ordering::Relaxed);
                drop(q);
                spin_until(WRITER_SPIN, || s.appended.load(Ordering::Relaxed) != seen);
                spun = true;
                q = lock(&s.queue);
                continue;
            }
            q.writer_idle = true;
            let probe_wait = s
                .failing
                .load(Ordering::Relaxed)
                .then(|| PROBE_INTERVAL.saturating_sub(self.last_probe.elapsed()));
            let wait = match (self.checkpoint_wait(), probe_wait) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            q = match wait {
                Some(t) => {
                    s.work
                        .wait_timeout(q, t)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => s.work.wait(q).unwrap_or_else(PoisonError::into_inner),
            };
            q.writer_idle = false;
        }
        let n = q.items.len().min(s.max_batch);
        batch.extend(q.items.drain(..n));
        let closing = q.closing;
        drop(q);
        s.room.notify_all();
        closing
    }

    /// Records exist past the last checkpoint and the count or the time says sign now.
    fn checkpoint_due(&self) -> bool {
        self.key.is_some()
            && self.head_seq > self.last_cp_seq
            && (self.head_seq - self.last_cp_seq >= self.checkpoint_every
                || self.last_cp_at.elapsed() >= self.checkpoint_interval)
    }

    /// Writes are failing and it is time to try again.
    fn probe_due(&self) -> bool {
        self.shared.failing.load(Ordering::Relaxed) && self.last_probe.elapsed() >= PROBE_INTERVAL
    }

    /// Try a small write transaction (which also records pending incidents) to learn
    /// whether the log can be written again, so buffered appends are accepted again.
    fn probe(&mut self) {
        self.last_probe = Instant::now();
        let now = Timestamp::now().unix_nanos();
        let result = (|| -> Result<(), String> {
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| e.to_string())?;
            let found = read_head_seq(&self.conn).map_err(|e| e.to_string())?;
            if found != self.head_seq {
                return Err(AuditError::ConcurrentWriter {
                    path: self.shared.path.clone(),
                    expected: self.head_seq,
                    found,
                }
                .to_string());
            }
            let reserved = lock(&self.shared.queue).next_seq - 1 + self.window;
            set_meta(&self.conn, "reserved_through", &reserved.to_string())
                .map_err(|e| e.to_string())?;
            for i in &self.incidents {
                insert_incident(&self.conn, now, i).map_err(|e| e.to_string())?;
            }
            self.conn.execute_batch("COMMIT").map_err(|e| e.to_string())
        })();
        match result {
            Ok(()) => {
                self.incidents.clear();
                self.recovered();
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                lock(&self.shared.errors).last_error = Some(e);
            }
        }
    }

    /// A write succeeded: clear the failing state (and say so once).
    fn recovered(&self) {
        if self.shared.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("{}: writes succeed again", self.shared.path.display());
        }
    }

    /// How long until the time-based checkpoint is due, if one is pending.
    fn checkpoint_wait(&self) -> Option<Duration> {
        (self.key.is_some() && self.head_seq > self.last_cp_seq).then(|| {
            self.checkpoint_interval
                .saturating_sub(self.last_cp_at.elapsed())
        })
    }

    fn commit(&mut self, batch: &mut Vec<Pending>) {
        let first = batch.first().map_or(0, |p| p.seq);
        let last = batch.last().map_or(0, |p| p.seq);
        let result = self.write_batch(batch);
        let n = batch.len() as u64;
        let s = &*self.shared;
        match &result {
            Ok(()) => {
                // Counters first, so a caller whose append returned sees them updated.
                s.committed.fetch_add(n, Ordering::Relaxed);
                self.recovered();
                for p in batch.iter_mut() {
                    if let Some(done) = p.done.take() {
                        done.complete(Ok(()));
                    }
                }
            }
            Err(detail) => {
                s.failed.fetch_add(n, Ordering::Relaxed);
                let mut errors = lock(&s.errors);
                if !s.failing.swap(true, Ordering::Relaxed) {
                    // Once per failure episode, so a full disk does not flood stderr.
                    tracing::error!(
                        "{}: cannot write audit records {first}..={last}: {detail}; \
                         appends fail until writes succeed again",
                        s.path.display()
                    );
                }
                errors.last_error = Some(detail.clone());
                drop(errors);
                self.last_probe = Instant::now();
                for p in batch.iter_mut() {
                    if let Some(done) = p.done.take() {
                        done.complete(Err(detail.clone()));
                    }
                }
                // Explain the gap in the log once it can be written again.
                match self.incidents.last_mut() {
                    Some(i) if i.kind == "write_failed" && i.last_seq + 1 == first => {
                        i.last_seq = last
                    }
                    _ => self.incidents.push(PendingIncident {
                        kind: "write_failed",
                        first_seq: first,
                        last_seq: last,
                        detail: detail.clone(),
                    }),
                }
            }
        }
        batch.clear();
        let mut p = lock(&s.progress);
        p.done_through = last;
        if result.is_err() {
            p.failed_total += n;
        }
        drop(p);
        s.progressed.notify_all();
    }

    /// One transaction: the records, the reservation, pending incidents, maybe a checkpoint.
    fn write_batch(&mut self, batch: &[Pending]) -> Result<(), String> {
        let tx = self.conn.execute_batch("BEGIN IMMEDIATE");
        if let Err(e) = tx {
            return Err(format!("cannot start a transaction: {e}"));
        }
        match self.write_batch_in_tx(batch) {
            Ok((seq, hash, checkpointed)) => {
                if let Err(e) = self.conn.execute_batch("COMMIT") {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    return Err(format!("commit failed: {e}"));
                }
                self.head_seq = seq;
                self.head_hash = hash;
                self.incidents.clear();
                if checkpointed {
                    self.last_cp_seq = seq;
                    self.last_cp_at = Instant::now();
                    self.shared.checkpoints.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn write_batch_in_tx(&mut self, batch: &[Pending]) -> Result<(u64, [u8; 32], bool), String> {
        // Another connection appending would fork the chain; check the head is still ours.
        let found =
            read_head_seq(&self.conn).map_err(|e| format!("cannot read the last record: {e}"))?;
        if found != self.head_seq {
            return Err(AuditError::ConcurrentWriter {
                path: self.shared.path.clone(),
                expected: self.head_seq,
                found,
            }
            .to_string());
        }
        let mut seq = self.head_seq;
        let mut hash = self.head_hash;
        {
            let mut insert = self
                .conn
                .prepare_cached(INSERT_RECORD)
                .map_err(|e| format!("cannot prepare insert: {e}"))?;
            for p in batch {
                let e = &p.entry;
                let new_hash = e.fields(p.seq, p.ts_ns, &hash).hash(&mut self.buf);
                insert
                    .execute(params![
                        to_i64(p.seq),
                        p.ts_ns,
                        e.agent,
                        e.action,
                        e.tool,
                        e.resource,
                        e.verdict.as_str(),
                        e.policy.as_deref(),
                        e.rule.as_deref(),
                        &*e.reason,
                        e.args,
                        &e.args_digest[..],
                        to_i64(e.latency_ns),
                        e.policy_version.map(to_i64),
                        &hash[..],
                        &new_hash[..],
                    ])
                    .map_err(|e| format!("cannot insert record {}: {e}", p.seq))?;
                seq = p.seq;
                hash = new_hash;
            }
        }
        if self.window > 0 {
            set_meta(
                &self.conn,
                "reserved_through",
                &(seq + self.window).to_string(),
            )
            .map_err(|e| format!("cannot update the reservation: {e}"))?;
        }
        let now = Timestamp::now().unix_nanos();
        for i in &self.incidents {
            insert_incident(&self.conn, now, i)
                .map_err(|e| format!("cannot record incident: {e}"))?;
        }
        let due = self.key.is_some()
            && (seq - self.last_cp_seq >= self.checkpoint_every
                || self.last_cp_at.elapsed() >= self.checkpoint_interval);
        if due {
            self.insert_checkpoint(seq, &hash)?;
        }
        Ok((seq, hash, due))
    }

    fn insert_checkpoint(&self, seq: u64, hash: &[u8; 32]) -> Result<(), String> {
        let Some(key) = &self.key else {
            return Ok(());
        };
        let signed_at = Timestamp::now().unix_nanos();
        let message = checkpoint_message(SCHEME_ED25519, seq, hash, signed_at);
        let signature = key.sign(&message);
        let public = key.verifying_key();
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO checkpoints (seq, head_hash, signed_at_ns, scheme, key_id, public_key, signature) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    to_i64(seq),
                    &hash[..],
                    signed_at,
                    SCHEME_ED25519,
                    key_id(&public),
                    &public.as_bytes()[..],
                    &signature.to_bytes()[..],
                ])
            })
            .map(drop)
            .map_err(|e| format!("cannot store checkpoint at {seq}: {e}"))
    }

    /// A transaction holding only a checkpoint (the time bound passed while idle).
    fn checkpoint_only(&mut self) {
        let (seq, hash) = (self.head_seq, self.head_hash);
        let result = self
            .conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| e.to_string())
            .and_then(|()| self.insert_checkpoint(seq, &hash))
            .and_then(|()| self.conn.execute_batch("COMMIT").map_err(|e| e.to_string()));
        match result {
            Ok(()) => {
                self.last_cp_seq = seq;
                self.shared.checkpoints.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                tracing::error!(
                    "{}: cannot sign checkpoint at {seq}: {e}",
                    self.shared.path.display()
                );
            }
        }
        // Retry on the next interval rather than in a tight loop.
        self.last_cp_at = Instant::now();
    }

    /// Final checkpoint, and mark the log cleanly closed with where numbering resumes.
    fn finish(&mut self) {
        let next_seq = lock(&self.shared.queue).next_seq;
        let (seq, hash) = (self.head_seq, self.head_hash);
        let final_cp = self.key.is_some() && seq > self.last_cp_seq;
        let now = Timestamp::now().unix_nanos();
        let result = (|| -> Result<(), String> {
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| e.to_string())?;
            if final_cp {
                self.insert_checkpoint(seq, &hash)?;
            }
            for i in &self.incidents {
                insert_incident(&self.conn, now, i).map_err(|e| e.to_string())?;
            }
            set_meta(&self.conn, "state", "closed").map_err(|e| e.to_string())?;
            set_meta(&self.conn, "next_seq", &next_seq.to_string()).map_err(|e| e.to_string())?;
            self.conn.execute_batch("COMMIT").map_err(|e| e.to_string())
        })();
        match result {
            Ok(()) => {
                if final_cp {
                    self.shared.checkpoints.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                let mut errors = lock(&self.shared.errors);
                errors.close_error = Some(format!("cannot close the log cleanly: {e}"));
                tracing::error!(
                    "{}: cannot close the log cleanly: {e}",
                    self.shared.path.display()
                );
            }
        }
    }
}

/// What the WAL file is truncated to after a checkpoint, so one burst does not leave a huge
/// file behind.
pub(super) const WAL_SIZE_LIMIT: u64 = 64 << 20;
/// How often the WAL is copied back into the database file while records are being written.
const WAL_CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Copies the WAL back into the database file on its own thread and connection, so the writer
/// never stalls for it: SQLite's automatic checkpoint runs inside a commit and, with the fsync
/// of the database file it needs, holds that commit for milliseconds.
pub(super) struct WalCheckpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl WalCheckpointer {
    pub(super) fn spawn(
        path: &Path,
        busy_timeout: Duration,
        shared: Arc<Shared>,
    ) -> Result<Self, AuditError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(AuditError::sqlite(
            path,
            "cannot open audit log for checkpointing",
        ))?;
        conn.busy_timeout(busy_timeout)
            .map_err(AuditError::sqlite(path, "cannot set busy timeout"))?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let handle = std::thread::Builder::new()
            .name("warden-audit-wal".to_string())
            .spawn(move || {
                let mut seen = 0;
                let mut warned = false;
                let (stopped, wake) = &*signal;
                let mut guard = lock(stopped);
                while !*guard {
                    guard = wake
                        .wait_timeout(guard, WAL_CHECKPOINT_EVERY)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    let written = shared.committed.load(Ordering::Relaxed)
                        + shared.checkpoints.load(Ordering::Relaxed);
                    if *guard || written == seen {
                        continue;
                    }
                    seen = written;
                    // PASSIVE: copy what no reader still needs, never wait for the writer.
                    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    if let Err(e) = result
                        && !warned
                    {
                        warned = true;
                        tracing::warn!(
                            "{}: cannot checkpoint the WAL (it will grow until this works): {e}",
                            shared.path.display()
                        );
                    }
                }
            })
            .map_err(AuditError::io(
                path,
                "cannot start the WAL checkpoint thread",
            ))?;
        Ok(WalCheckpointer {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        *lock(&self.stop.0) = true;
        self.stop.1.notify_one();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Marks the writer stopped and wakes everyone when the writer thread ends, however it ends.
struct StopGuard(Arc<Shared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        let s = &*self.0;
        let orphans: Vec<Pending> = {
            let mut q = lock(&s.queue);
            if q.stopped.is_none() {
                q.stopped = Some(if std::thread::panicking() {
                    "the audit writer thread panicked".to_string()
                } else {
                    "the log is closed".to_string()
                });
            }
            q.items.drain(..).collect()
        };
        // Dropping them fails their appenders.
        drop(orphans);
        s.room.notify_all();
        s.progressed.notify_all();
    }
}

fn to_i64(v: u64) -> i64 {
    // INVARIANT: sequence numbers count up from 1 and latencies are nanoseconds; neither
    // reaches 2^63. Policy versions are checked in `append`.
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn read_head_seq(conn: &Connection) -> rusqlite::Result<u64> {
    let seq: Option<i64> = conn
        .prepare_cached("SELECT seq FROM records ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| r.get(0))
        .optional()?;
    Ok(seq.map_or(0, |s| s.max(0).cast_unsigned()))
}

/// The last record's sequence number and hash, after checking that the hash is right: new
/// records must not extend an already broken chain.
pub(super) fn read_head(conn: &Connection, path: &Path) -> Result<(u64, [u8; 32]), AuditError> {
    let sql = format!(
        "SELECT {} FROM records ORDER BY seq DESC LIMIT 1",
        schema::RECORD_COLUMNS
    );
    let mut stmt = conn
        .prepare(&sql)
        .map_err(AuditError::sqlite(path, "cannot read the last record"))?;
    let mut rows = stmt
        .query([])
        .map_err(AuditError::sqlite(path, "cannot read the last record"))?;
    let Some(row) = rows
        .next()
        .map_err(AuditError::sqlite(path, "cannot read the last record"))?
    else {
        return Ok((0, GENESIS_HASH));
    };
    let raw = crate::verify::RawRow::from_row(row);
    match raw {
        Ok(raw) if raw.recompute(raw.seq, &mut Vec::new()) == *raw.hash => Ok((raw.seq, *raw.hash)),
        Ok(raw) => Err(AuditError::TamperedHead {
            path: path.to_path_buf(),
            seq: raw.seq,
        }),
        Err(seq) => Err(AuditError::TamperedHead {
            path: path.to_path_buf(),
            seq,
        }),
    }
}

pub(super) fn read_meta(
    conn: &Connection,
    path: &Path,
    key: &str,
) -> Result<Option<String>, AuditError> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .map_err(AuditError::sqlite(path, "cannot read the meta table"))
}

pub(super) fn meta_u64(value: &Option<String>) -> u64 {
    value.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0)
}

pub(super) fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
        .execute([key, value])
        .map(drop)
}

pub(super) fn insert_incident(
    conn: &Connection,
    at_ns: i64,
    i: &PendingIncident,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO incidents (at_ns, kind, first_seq, last_seq, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![at_ns, i.kind, to_i64(i.first_seq), to_i64(i.last_seq), i.detail])
    .map(drop)
}
