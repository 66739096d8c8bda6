//! The writer thread: takes batches off the queue and commits each in one SQLite write
//! transaction that reads the current head, numbers and chains the records after it, moves
//! the head marker and, when due, signs a checkpoint. Also notes lost records as incidents
//! and probes a failing log.
//!
//! Why the head is read inside every transaction: other processes append to the same file
//! (each hook call, each `warden check --db`, a server beside them). `BEGIN IMMEDIATE` takes
//! SQLite's write lock, so between it and `COMMIT` nobody else can append; whatever this
//! process last wrote may no longer be the head, and the file, not memory, says what is.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey};
use rusqlite::{Connection, params};

use super::config::{AuditConfig, Mode};
use super::queue::{Pending, PendingIncident, Shared, WRITER_SPIN, lock, spin_until};
use super::tail;
use crate::encoding::checkpoint_message;
use crate::error::WriteError;
use crate::keys::{SCHEME_ED25519, key_id};
use crate::store::{
    self, Head, INSERT_CHECKPOINT, INSERT_RECORD, insert_incident, last_checkpoint, to_i64,
};
use crate::timestamp::Timestamp;

/// How often a failing writer tries whether it can write again.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// The writer thread's state. Owns this process's read-write connection.
pub(super) struct Writer {
    shared: Arc<Shared>,
    conn: Connection,
    key: Option<SigningKey>,
    checkpoint_every: u64,
    checkpoint_interval: Duration,
    allow_tampered_tail: bool,
    /// The head as of this writer's last transaction (for incidents and idle checkpoints).
    head: Head,
    /// The newest checkpoint as of the last transaction: its sequence number and when this
    /// writer learned of it (for the time bound while idle).
    last_cp_seq: u64,
    last_cp_seen: Instant,
    /// The newest head up to which this writer checked the chain or wrote it itself, so a
    /// checkpoint re-checks only what others wrote since.
    known_good: Option<Head>,
    buf: Vec<u8>,
    incidents: Vec<PendingIncident>,
    /// When the writer last tried whether a failing log can be written again.
    last_probe: Instant,
    /// Lease of a buffered writer, released (and its registration removed) at close.
    lease: Option<super::lease::Lease>,
}

impl Writer {
    pub(super) fn new(
        shared: Arc<Shared>,
        conn: Connection,
        head: Head,
        config: AuditConfig,
        lease: Option<super::lease::Lease>,
    ) -> Self {
        Writer {
            shared,
            conn,
            key: config.signing_key,
            checkpoint_every: config.checkpoint_every,
            checkpoint_interval: config.checkpoint_interval,
            allow_tampered_tail: config.allow_tampered_tail,
            head,
            last_cp_seq: head.seq,
            last_cp_seen: Instant::now(),
            known_good: None,
            buf: Vec::with_capacity(1024),
            incidents: Vec::new(),
            last_probe: Instant::now(),
            lease,
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
            } else if self.probe_due() {
                self.probe();
            } else if self.checkpoint_due() {
                self.checkpoint_only();
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
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
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
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0
                }
                None => s
                    .work
                    .wait(q)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
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

    /// Records this writer knows of are past the last checkpoint and the interval passed.
    fn checkpoint_due(&self) -> bool {
        self.checkpoint_wait() == Some(Duration::ZERO)
    }

    /// How long until the time-based checkpoint is due, if one is pending.
    fn checkpoint_wait(&self) -> Option<Duration> {
        (self.key.is_some() && self.head.seq > self.last_cp_seq).then(|| {
            self.checkpoint_interval
                .saturating_sub(self.last_cp_seen.elapsed())
        })
    }

    /// Writes are failing and it is time to try again.
    fn probe_due(&self) -> bool {
        self.shared.failing.load(Ordering::Relaxed) && self.last_probe.elapsed() >= PROBE_INTERVAL
    }

    /// Run `body` in one write transaction (`BEGIN IMMEDIATE` … `COMMIT`), rolled back on
    /// any error.
    fn transaction<T>(
        &mut self,
        body: impl FnOnce(&mut Self) -> Result<T, WriteError>,
    ) -> Result<T, WriteError> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(WriteError::sqlite("cannot start a write transaction"))?;
        let result = body(self).and_then(|v| {
            self.conn
                .execute_batch("COMMIT")
                .map_err(WriteError::sqlite("commit failed"))
                .map(|()| v)
        });
        if result.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        result
    }

    /// The head inside a write transaction; a damaged end is refused unless allowed, in which
    /// case it is noted once and the chain continues from the last record as it is.
    fn head_in_tx(&mut self) -> Result<Head, WriteError> {
        match tail::current_head(&self.conn) {
            Ok(head) => Ok(head),
            Err(WriteError::TamperedTail { seq, detail }) if self.allow_tampered_tail => {
                let head = store::read_head(&self.conn)
                    .map_err(WriteError::sqlite("cannot read the last record"))?
                    .ok_or_else(|| WriteError::TamperedTail {
                        seq,
                        detail: detail.clone(),
                    })?;
                tracing::warn!(
                    "{}: record {seq}: {detail}; continuing as allowed",
                    self.shared.path.display()
                );
                self.incidents.push(PendingIncident {
                    kind: "tampered_tail",
                    after_seq: head.seq,
                    lost: 0,
                    detail: format!("appending after a damaged end (record {seq}: {detail})"),
                });
                Ok(head)
            }
            Err(e) => Err(e),
        }
    }

    /// Try a small write transaction (which also records pending incidents) to learn
    /// whether the log can be written again, so buffered appends are accepted again.
    fn probe(&mut self) {
        self.last_probe = Instant::now();
        let result = self.transaction(|w| {
            let head = w.head_in_tx()?;
            w.write_incidents(head)?;
            Ok(head)
        });
        match result {
            Ok(head) => {
                self.head = head;
                self.incidents.clear();
                self.recovered();
            }
            Err(e) => *lock(&self.shared.last_error) = Some(e),
        }
    }

    /// A write succeeded: clear the failing state (and say so once).
    fn recovered(&self) {
        if self.shared.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("{}: writes succeed again", self.shared.path.display());
        }
    }

    fn commit(&mut self, batch: &mut Vec<Pending>) {
        let n = batch.len() as u64;
        let result = self.transaction(|w| w.write_batch(batch));
        let failed = result.is_err();
        let s = self.shared.clone();
        match result {
            Ok((first, cp)) => {
                self.incidents.clear();
                if cp {
                    s.checkpoints.fetch_add(1, Ordering::Relaxed);
                }
                // Counters first, so a caller whose append returned sees them updated.
                s.committed.fetch_add(n, Ordering::Relaxed);
                self.recovered();
                for (i, p) in batch.iter_mut().enumerate() {
                    p.complete(Ok(first + i as u64));
                }
            }
            Err(e) => {
                s.failed.fetch_add(n, Ordering::Relaxed);
                if !s.failing.swap(true, Ordering::Relaxed) {
                    // Once per failure episode, so a full disk does not flood the log.
                    tracing::error!(
                        "{}: cannot write {n} audit records: {e}; appends fail until writes succeed again",
                        s.path.display()
                    );
                }
                *lock(&s.last_error) = Some(e.clone());
                self.last_probe = Instant::now();
                if s.mode == Mode::Buffered {
                    // Their appenders were told "accepted": the loss goes into the log.
                    match self.incidents.last_mut() {
                        Some(i) if i.kind == "write_failed" && i.after_seq == self.head.seq => {
                            i.lost += n
                        }
                        _ => self.incidents.push(PendingIncident {
                            kind: "write_failed",
                            after_seq: self.head.seq,
                            lost: n,
                            detail: e.to_string(),
                        }),
                    }
                }
                for p in batch.iter_mut() {
                    p.complete(Err(e.clone()));
                }
            }
        }
        batch.clear();
        let mut p = lock(&s.progress);
        p.done += n;
        if failed {
            p.failed_total += n;
        }
        drop(p);
        s.progressed.notify_all();
    }

    /// Inside the transaction: number, chain and insert the batch after the current head,
    /// move the head marker, write pending incidents, sign if due. Returns the first
    /// sequence number and whether a checkpoint was signed.
    fn write_batch(&mut self, batch: &[Pending]) -> Result<(u64, bool), WriteError> {
        let start = self.head_in_tx()?;
        let mut head = start;
        {
            let mut insert = self
                .conn
                .prepare_cached(INSERT_RECORD)
                .map_err(WriteError::sqlite("cannot prepare insert"))?;
            for p in batch {
                let e = &p.entry;
                let seq = head.seq + 1;
                let ts_ns = Timestamp::now().unix_nanos();
                let hash = e.fields(seq, ts_ns, &head.hash).hash(&mut self.buf);
                insert
                    .execute(params![
                        to_i64(seq),
                        ts_ns,
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
                        e.context,
                        to_i64(e.latency_ns),
                        e.policy_version.map(to_i64),
                        &head.hash[..],
                        &hash[..],
                    ])
                    .map_err(WriteError::sqlite("cannot insert a record"))?;
                head = Head { seq, hash };
            }
        }
        store::set_meta_head(&self.conn, &head)
            .map_err(WriteError::sqlite("cannot move the head marker"))?;
        // Our own records extend what we know to be good only if nobody wrote in between.
        let known_before = self.known_good;
        if self.known_good == Some(start) {
            self.known_good = Some(head);
        }
        self.write_incidents(start)?;
        let signed = self.sign_if_due(head, false).inspect_err(|_| {
            // The transaction rolls back: forget what it would have added.
            self.known_good = known_before;
        })?;
        self.head = head;
        Ok((start.seq + 1, signed))
    }

    fn write_incidents(&mut self, head: Head) -> Result<(), WriteError> {
        let now = Timestamp::now().unix_nanos();
        for i in &self.incidents {
            let after = if i.after_seq > head.seq {
                head.seq
            } else {
                i.after_seq
            };
            insert_incident(&self.conn, now, i.kind, after, i.lost, &i.detail)
                .map_err(WriteError::sqlite("cannot record an incident"))?;
        }
        Ok(())
    }

    /// Sign a checkpoint at `head` if records follow the newest one (whoever signed it) and
    /// the count or the time says so (`force`: whenever records follow it). Several
    /// processes with the same key share the schedule because they read it from the file.
    fn sign_if_due(&mut self, head: Head, force: bool) -> Result<bool, WriteError> {
        let Some(key) = &self.key else {
            return Ok(false);
        };
        let last = last_checkpoint(&self.conn)
            .map_err(WriteError::sqlite("cannot read the last checkpoint"))?;
        let now = Timestamp::now().unix_nanos();
        let last_seq = last.as_ref().map_or(0, |(s, _, _)| *s);
        self.last_cp_seq = last_seq.min(head.seq);
        if head.seq <= last_seq {
            return Ok(false);
        }
        // The time bound: the oldest record not yet covered waits at most the interval.
        let oldest_unanchored: i64 = self
            .conn
            .prepare_cached("SELECT ts_ns FROM records WHERE seq = ?1")
            .and_then(|mut st| st.query_row([to_i64(last_seq + 1)], |r| r.get(0)))
            .unwrap_or(now);
        let interval = i64::try_from(self.checkpoint_interval.as_nanos()).unwrap_or(i64::MAX);
        let due = force
            || head.seq - last_seq >= self.checkpoint_every
            || now.saturating_sub(oldest_unanchored) >= interval;
        if !due {
            return Ok(false);
        }
        let last = last.map(|(seq, hash, _)| (seq, hash));
        match tail::check_before_signing(&self.conn, head, last, self.known_good) {
            Ok(()) => self.known_good = Some(head),
            Err(e) => {
                if !self.allow_tampered_tail {
                    return Err(e);
                }
                tracing::warn!(
                    "{}: signing a checkpoint over a chain that does not verify ({e}), as allowed",
                    self.shared.path.display()
                );
            }
        }
        let message = checkpoint_message(SCHEME_ED25519, head.seq, &head.hash, now);
        let signature = key.sign(&message);
        let public = key.verifying_key();
        self.conn
            .prepare_cached(INSERT_CHECKPOINT)
            .and_then(|mut st| {
                st.execute(params![
                    to_i64(head.seq),
                    &head.hash[..],
                    now,
                    SCHEME_ED25519,
                    key_id(&public),
                    &public.as_bytes()[..],
                    &signature.to_bytes()[..],
                ])
            })
            .map_err(WriteError::sqlite("cannot store a checkpoint"))?;
        self.last_cp_seq = head.seq;
        self.last_cp_seen = Instant::now();
        Ok(true)
    }

    /// A transaction holding only a checkpoint (the time bound passed while idle).
    fn checkpoint_only(&mut self) {
        let result = self.transaction(|w| {
            let head = w.head_in_tx()?;
            w.head = head;
            w.sign_if_due(head, false)
        });
        match result {
            Ok(signed) => {
                if signed {
                    self.shared.checkpoints.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => tracing::error!(
                "{}: cannot sign a checkpoint: {e}",
                self.shared.path.display()
            ),
        }
        // Whether or not it worked (or was needed), look again after a full interval rather
        // than in a tight loop.
        self.last_cp_seen = Instant::now();
    }

    /// Final checkpoint over whatever the head is now, pending incidents, and the end of
    /// this writer's lease.
    fn finish(&mut self) {
        let lease = self.lease.take();
        let result = self.transaction(|w| {
            let head = w.head_in_tx()?;
            w.write_incidents(head)?;
            if let Some(lease) = &lease {
                lease
                    .unregister(&w.conn)
                    .map_err(WriteError::sqlite("cannot end the writer's registration"))?;
            }
            w.sign_if_due(head, true)
        });
        match result {
            Ok(signed) => {
                if signed {
                    self.shared.checkpoints.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                tracing::error!(
                    "{}: cannot close the log cleanly: {e}",
                    self.shared.path.display()
                );
                *lock(&self.shared.close_error) = Some(e);
            }
        }
        drop(lease);
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
