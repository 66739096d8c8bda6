//! The writer thread: takes batches off the queue and commits each in one SQLite write
//! transaction that checks the end of the log, numbers and chains the records after it,
//! moves the head marker and signs a checkpoint over the new end. Also notes lost records as
//! incidents and probes a failing log.
//!
//! Why the head is read inside every transaction: other processes append to the same file
//! (each hook call, each `warden check --db`, a server beside them). `BEGIN IMMEDIATE` takes
//! SQLite's write lock, so between it and `COMMIT` nobody else can append; whatever this
//! process last wrote may no longer be the head, and the file, not memory, says what is.
//!
//! Why every commit signs: a checkpoint vouches for the whole chain before it, so a writer
//! that signed on a schedule would sign over whatever someone without the key had appended
//! since the last checkpoint. Signing in the same transaction as each batch means no honest
//! writer ever leaves unsigned records behind, not even when it is killed (a batch and its
//! checkpoint commit together or not at all); so unsigned records at the end can only be a
//! forgery, and the next writer refuses them (`tail.rs`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rusqlite::{Connection, params};

use super::config::{AuditConfig, Mode};
use super::queue::{Pending, PendingIncident, Shared, WRITER_SPIN, lock, spin_until};
use super::tail::{self, End};
use crate::encoding::{checkpoint_mac, checkpoint_mac_key, checkpoint_message};
use crate::error::WriteError;
use crate::keys::{SCHEME_ED25519, key_id};
use crate::record::Checkpoint;
use crate::store::{
    self, Head, INSERT_CHECKPOINT, INSERT_RECORD, checkpoint_before, delete_checkpoint,
    insert_incident, to_i64,
};
use crate::timestamp::Timestamp;

/// How often a failing writer tries whether it can write again.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// The longest the writer thread stands back for the WAL checkpoint thread's restart.
const RESTART_STAND_BACK: Duration = Duration::from_millis(2);

/// The node key and what is derived from it once.
struct NodeKey {
    key: SigningKey,
    public: VerifyingKey,
    key_id: String,
    /// The key of the MAC stored beside each checkpoint (see `encoding::checkpoint_mac`).
    mac_key: [u8; 32],
}

/// What the open found at the end of the log, handed to the writer.
pub(super) struct Opened {
    /// The end the open checked (`Head::EMPTY` when it did not check out and that was
    /// allowed): the first transaction checks the file still holds it.
    pub head: Head,
    /// The newest checkpoint, its signature checked at open.
    pub trusted: Option<Checkpoint>,
    /// With `allow_tampered_tail`: the damaged end the open already noted as an incident.
    pub accepted: Option<Head>,
}

/// A committed batch.
struct Committed {
    first: u64,
    head: Head,
    checkpoint: Option<Checkpoint>,
}

/// The writer thread's state. Owns this process's read-write connection.
pub(super) struct Writer {
    shared: Arc<Shared>,
    conn: Connection,
    signer: Option<NodeKey>,
    keep_checkpoint_every: u64,
    allow_tampered_tail: bool,
    /// The end of the log as of this writer's last successful transaction: the last record
    /// it committed, or the end it checked. Every later transaction first checks that the
    /// file still holds it, so a cut back (or rewrite) while the log is open is refused.
    head: Head,
    /// The newest checkpoint this writer signed or whose signature it checked, so the next
    /// transaction does not check the same signature again.
    trusted: Option<Checkpoint>,
    /// With `allow_tampered_tail`: the damaged end already noted as an incident (so it is
    /// noted once, not at every try).
    accepted: Option<Head>,
    buf: Vec<u8>,
    incidents: Vec<PendingIncident>,
    /// When the writer last tried whether a failing log can be written again.
    last_probe: Instant,
    /// Lease of a buffered writer, released (and its registration removed) at close.
    lease: Option<super::lease::Lease>,
    /// This process's turn at the file (shared with the trust store's writer).
    gate: store::WriteGate,
    /// How long the writer thread's commits wait for another connection's write lock (an
    /// async appender's commit does not wait: see [`combine`]).
    busy_timeout: Duration,
    /// A batch's room, kept between the commits of async appenders.
    scratch: Vec<Pending>,
    /// SQLite's `data_version` as this connection saw it in its last committed batch, whose
    /// end it had checked (or vouched for by committing it). While it has not changed, no
    /// other connection has committed anything since, so the end is exactly the one this
    /// writer left and the checks of `tail.rs` need not run again.
    clean_since: Option<i64>,
    /// `data_version` as read in the current transaction, once its end checked out.
    tx_version: Option<i64>,
}

impl Writer {
    pub(super) fn new(
        shared: Arc<Shared>,
        conn: Connection,
        opened: Opened,
        config: AuditConfig,
        lease: Option<super::lease::Lease>,
    ) -> Self {
        let signer = config.signing_key.map(|key| {
            let public = key.verifying_key();
            NodeKey {
                key_id: key_id(&public),
                mac_key: checkpoint_mac_key(key.as_bytes()),
                public,
                key,
            }
        });
        let gate = store::WriteGate::of(&shared.path);
        Writer {
            shared,
            conn,
            signer,
            keep_checkpoint_every: config.keep_checkpoint_every,
            allow_tampered_tail: config.allow_tampered_tail,
            head: opened.head,
            trusted: opened.trusted,
            accepted: opened.accepted,
            buf: Vec::with_capacity(1024),
            incidents: Vec::new(),
            last_probe: Instant::now(),
            gate,
            lease,
            busy_timeout: config.busy_timeout,
            scratch: Vec::new(),
            clean_since: None,
            tx_version: None,
        }
    }

    /// The writer thread: commit what is queued until the log closes. Async appenders may
    /// commit groups themselves meanwhile ([`combine`]); both take the writer's lock before
    /// they take records off the queue, so records are committed in the order they were
    /// queued.
    pub(super) fn run(committer: Arc<Mutex<Writer>>, shared: Arc<Shared>) {
        // Whatever ends this thread (including a panic), appenders must stop waiting.
        let _stopped = StopGuard(shared.clone());
        let mut batch: Vec<Pending> = Vec::with_capacity(shared.max_batch);
        let mut spin = false;
        loop {
            let probe_at = lock(&committer).next_probe();
            wait_for_work(&shared, spin, probe_at);
            // Stand back while the WAL checkpoint thread takes the lock for a restart (for
            // at most RESTART_STAND_BACK: then queue behind it like anyone).
            spin_until(RESTART_STAND_BACK, || {
                !shared.restart_wanted.load(Ordering::SeqCst)
            });
            let mut w = lock(&committer);
            let closing = take_batch(&shared, &mut batch);
            spin = false;
            if !batch.is_empty() {
                spin = batch.iter().any(|p| p.blocking);
                w.commit(&mut batch);
            } else if closing {
                w.finish();
                break;
            } else if w.probe_due() {
                w.probe();
            }
        }
    }

    /// This process's turn at the file (shared with the trust store's writer).
    pub(super) fn gate(&self) -> &store::WriteGate {
        &self.gate
    }

    /// When a failing log should next be probed (`None` while writes work).
    fn next_probe(&self) -> Option<Instant> {
        self.shared
            .failing
            .load(Ordering::Relaxed)
            .then(|| self.last_probe + PROBE_INTERVAL)
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
        let gate = self.gate.clone();
        let _turn = gate.enter();
        self.begin()
            .map_err(WriteError::sqlite("cannot start a write transaction"))?;
        self.in_transaction(body)
    }

    /// `BEGIN IMMEDIATE`: take the file's write lock (waiting up to the busy timeout).
    fn begin(&mut self) -> rusqlite::Result<()> {
        self.tx_version = None;
        self.conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut st| st.execute([]))
            .map(|_| ())
    }

    /// After `BEGIN IMMEDIATE`: run `body`, then `COMMIT`, or `ROLLBACK` on any error.
    fn in_transaction<T>(
        &mut self,
        body: impl FnOnce(&mut Self) -> Result<T, WriteError>,
    ) -> Result<T, WriteError> {
        let result = body(self).and_then(|v| {
            // (Prepared once: parsing the statement at every commit showed in profiles.)
            self.conn
                .prepare_cached("COMMIT")
                .and_then(|mut st| st.execute([]))
                .map_err(WriteError::sqlite("commit failed"))
                .map(|_| v)
        });
        if result.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        result
    }

    /// The end of the log inside a write transaction (see `tail.rs`). A damaged or forged end
    /// is refused unless allowed; then it is noted once as an incident and the chain continues
    /// from the last record as it is.
    fn end_in_tx(&mut self) -> Result<End, WriteError> {
        // Inside the write lock: nobody can commit between this read and our commit.
        let version: i64 = self
            .conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(WriteError::sqlite("cannot read the data version"))?;
        if self.clean_since == Some(version) {
            // Unchanged since this writer's last commit: the end is the one it left (its
            // last record, signed by its own checkpoint), checked then.
            self.tx_version = Some(version);
            return Ok(End {
                head: self.head,
                anchor: self.signer.as_ref().and(self.trusted.clone()),
                mac: None,
            });
        }
        let checked =
            tail::check_end(&self.conn, self.signer.is_some(), self.head).and_then(|end| {
                match (&end.anchor, &self.signer) {
                    (Some(anchor), Some(signer)) => {
                        // (Not computed for the checkpoint this writer already trusts.)
                        let mac_ok = self.trusted.as_ref() != Some(anchor)
                            && end.mac.is_some()
                            && anchor.mac(&signer.mac_key) == end.mac;
                        tail::check_signer(anchor, &signer.public, mac_ok, &mut self.trusted)
                            .map(|()| end)
                    }
                    _ => Ok(end),
                }
            });
        match checked {
            Ok(end) => {
                self.tx_version = Some(version);
                Ok(end)
            }
            Err(WriteError::TamperedTail { seq, detail }) if self.allow_tampered_tail => {
                let head = store::read_head(&self.conn)
                    .map_err(WriteError::sqlite("cannot read the last record"))?
                    .ok_or_else(|| WriteError::TamperedTail {
                        seq,
                        detail: detail.clone(),
                    })?;
                if self.accepted != Some(head) {
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
                    self.accepted = Some(head);
                }
                // Nothing found here is vouched for: the new checkpoint replaces none.
                Ok(End {
                    head,
                    anchor: None,
                    mac: None,
                })
            }
            other => other,
        }
    }

    /// Try a small write transaction (which also records pending incidents) to learn
    /// whether the log can be written again, so buffered appends are accepted again.
    fn probe(&mut self) {
        self.last_probe = Instant::now();
        let result = self.transaction(|w| {
            let head = w.end_in_tx()?.head;
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
        let result = self.transaction(|w| w.write_batch(batch));
        self.settle(batch, result);
    }

    /// [`Writer::commit`] on a thread that must not wait for a lock: returns `false`, with
    /// nothing done and `batch` untouched, when this process's other writer or another
    /// connection holds the file's write lock now. Otherwise the batch is committed (or
    /// failed, every record of it) as by `commit`.
    fn commit_without_waiting(&mut self, batch: &mut Vec<Pending>) -> bool {
        let gate = self.gate.clone();
        let Some(_turn) = gate.try_enter() else {
            return false;
        };
        // No busy handler for this BEGIN: a lock held elsewhere is the writer thread's to
        // wait for. (Once begun, the transaction holds the write lock; nothing else waits.)
        if self.conn.busy_timeout(Duration::ZERO).is_err() {
            return false;
        }
        let begun = self.begin();
        if let Err(e) = self.conn.busy_timeout(self.busy_timeout) {
            tracing::warn!(
                "{}: cannot restore the busy timeout: {e}",
                self.shared.path.display()
            );
        }
        let result = match begun {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                return false;
            }
            Err(e) => Err(WriteError::sqlite("cannot start a write transaction")(e)),
            Ok(()) => self.in_transaction(|w| w.write_batch(batch)),
        };
        self.settle(batch, result);
        true
    }

    /// Complete every record of a batch with the commit's result and update the counters.
    fn settle(&mut self, batch: &mut Vec<Pending>, result: Result<Committed, WriteError>) {
        let n = batch.len() as u64;
        let failed = result.is_err();
        let s = self.shared.clone();
        match result {
            Ok(Committed {
                first,
                head,
                checkpoint,
            }) => {
                self.clean_since = self.tx_version.take();
                self.incidents.clear();
                self.head = head;
                if let Some(cp) = checkpoint {
                    self.trusted = Some(cp);
                    s.checkpoints.fetch_add(1, Ordering::Relaxed);
                }
                // Counters first, so a caller whose append returned sees them updated.
                s.committed.fetch_add(n, Ordering::Relaxed);
                let peak = s.recent_group.load(Ordering::Relaxed);
                s.recent_group
                    .store(recent_group(peak, batch.len()), Ordering::Relaxed);
                self.recovered();
                for (i, p) in batch.iter_mut().enumerate() {
                    p.complete(Ok(first + i as u64));
                }
            }
            Err(e) => {
                self.clean_since = None;
                self.tx_version = None;
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
        // (After `done` moved, under its lock: a flusher counted itself before it looked.)
        if s.flushers.load(Ordering::SeqCst) > 0 {
            s.progressed.notify_all();
        }
    }

    /// Inside the transaction: check the end, number, chain and insert the batch after it,
    /// move the head marker, write pending incidents, and sign the new end.
    fn write_batch(&mut self, batch: &[Pending]) -> Result<Committed, WriteError> {
        let end = self.end_in_tx()?;
        let start = end.head;
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
        self.write_incidents(start)?;
        let checkpoint = self.sign(head, end.anchor.map(|cp| cp.seq))?;
        Ok(Committed {
            first: start.seq + 1,
            head,
            checkpoint,
        })
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

    /// Inside the batch's transaction: sign a checkpoint at the new `head`. The previous
    /// newest checkpoint (`replaces`, one this writer checked is signed by its key) is removed
    /// unless it is the first at least `keep_checkpoint_every` records after the one before
    /// it. Returns the checkpoint, or `None` without a key.
    fn sign(
        &mut self,
        head: Head,
        replaces: Option<u64>,
    ) -> Result<Option<Checkpoint>, WriteError> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        let now = Timestamp::now().unix_nanos();
        let message = checkpoint_message(SCHEME_ED25519, head.seq, &head.hash, now);
        let signature = signer.key.sign(&message).to_bytes();
        self.conn
            .prepare_cached(INSERT_CHECKPOINT)
            .and_then(|mut st| {
                st.execute(params![
                    to_i64(head.seq),
                    &head.hash[..],
                    now,
                    SCHEME_ED25519,
                    &signer.key_id,
                    &signer.public.as_bytes()[..],
                    &signature[..],
                ])
            })
            .map_err(WriteError::sqlite("cannot store a checkpoint"))?;
        let mac = checkpoint_mac(
            &signer.mac_key,
            &message,
            signer.public.as_bytes(),
            &signature,
        );
        store::set_checkpoint_mac(&self.conn, &mac)
            .map_err(WriteError::sqlite("cannot store a checkpoint"))?;
        if let Some(previous) = replaces.filter(|&p| p > 0 && p < head.seq) {
            let before = checkpoint_before(&self.conn, previous)
                .map_err(WriteError::sqlite("cannot read checkpoints"))?;
            if previous - before < self.keep_checkpoint_every {
                delete_checkpoint(&self.conn, previous)
                    .map_err(WriteError::sqlite("cannot replace a checkpoint"))?;
            }
        }
        Ok(Some(Checkpoint {
            seq: head.seq,
            head_hash: head.hash.to_vec(),
            signed_at: Timestamp::from_unix_nanos(now),
            scheme: SCHEME_ED25519.to_string(),
            key_id: signer.key_id.clone(),
            public_key: signer.public.as_bytes().to_vec(),
            signature: signature.to_vec(),
        }))
    }

    /// Pending incidents and the end of this writer's lease, if there are any. (No final
    /// checkpoint: every commit signed one.)
    fn finish(&mut self) {
        let lease = self.lease.take();
        if self.incidents.is_empty() && lease.is_none() {
            return;
        }
        let result = self.transaction(|w| {
            let head = w.end_in_tx()?.head;
            w.write_incidents(head)?;
            if let Some(lease) = &lease {
                lease
                    .unregister(&w.conn)
                    .map_err(WriteError::sqlite("cannot end the writer's registration"))?;
            }
            Ok(())
        });
        if let Err(e) = result {
            tracing::error!(
                "{}: cannot close the log cleanly: {e}",
                self.shared.path.display()
            );
            *lock(&self.shared.close_error) = Some(e);
        }
        drop(lease);
    }
}

/// Wait until there is a batch to commit (durable: any record; buffered: a full batch, a
/// flush, or the oldest record's flush interval), the log is closing, or a probe is due.
/// `spin`: the last batch had appenders waiting on threads, so spin briefly for the next one
/// instead of sleeping (a wake-up costs more than the commit).
fn wait_for_work(s: &Shared, mut spin: bool, probe_at: Option<Instant>) {
    let mut q = lock(&s.queue);
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
                return;
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
        if q.closing || probe_at.is_some_and(|t| Instant::now() >= t) {
            return;
        }
        if spin {
            // Durable appenders wait on us: catch the next one without a wake-up.
            let seen = s.appended.load(Ordering::Relaxed);
            drop(q);
            spin_until(WRITER_SPIN, || s.appended.load(Ordering::Relaxed) != seen);
            spin = false;
            q = lock(&s.queue);
            continue;
        }
        q.writer_idle = true;
        q = match probe_at {
            Some(t) => {
                s.work
                    .wait_timeout(q, t.saturating_duration_since(Instant::now()))
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
}

/// The largest recent group after a commit of `n` records, in 1/256ths of a record: `n`, or
/// the last value less a sixteenth (so from 8 to 1 in ~34 commits of one).
fn recent_group(peak: usize, n: usize) -> usize {
    (n << 8).max(peak - peak / 16)
}

/// Take up to `max_batch` queued records (the caller holds the writer's lock). Returns
/// whether the log is closing.
fn take_batch(s: &Shared, batch: &mut Vec<Pending>) -> bool {
    let mut q = lock(&s.queue);
    let n = q.items.len().min(s.max_batch);
    batch.extend(q.items.drain(..n));
    let closing = q.closing;
    let room = n > 0 && q.room_waiters > 0;
    drop(q);
    if room {
        s.room.notify_all();
    }
    closing
}

/// How many groups an async appender commits in a row before it leaves the rest to the
/// writer thread (it holds a thread of the caller's runtime meanwhile).
const COMBINE_ROUNDS: usize = 2;

/// Called by an async durable appender whose record is not committed yet: if nobody else is
/// committing, commit what is queued now — its own record and those of every other
/// appender that queued meanwhile — on this thread, without waking the writer thread (flat
/// combining). A commit that would have to wait (another thread of this process or another
/// process holds the file's write lock) is handed back to the writer thread instead, which
/// may wait `busy_timeout`. Whatever is still queued when this returns is the writer
/// thread's (woken here), so no record waits on a caller that stopped committing.
pub(super) fn combine(committer: &Mutex<Writer>, s: &Shared) {
    if s.restart_wanted.load(Ordering::SeqCst) {
        // The WAL checkpoint thread takes the lock next, and wakes the writer after.
        return;
    }
    let mut w = match committer.try_lock() {
        Ok(w) => w,
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        // The holder commits, or leaves what remains to the writer thread.
        Err(std::sync::TryLockError::WouldBlock) => return,
    };
    let mut batch = std::mem::take(&mut w.scratch);
    for _ in 0..COMBINE_ROUNDS {
        take_batch(s, &mut batch);
        if batch.is_empty() {
            break;
        }
        if !w.commit_without_waiting(&mut batch) {
            // Back at the front of the queue, in order, for the writer thread.
            let mut q = lock(&s.queue);
            for p in batch.drain(..).rev() {
                q.items.push_front(p);
            }
            break;
        }
    }
    w.scratch = batch;
    drop(w);
    s.wake_writer();
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

#[cfg(test)]
mod tests {
    use super::recent_group;

    #[test]
    fn the_recent_group_follows_the_largest_and_forgets_it_slowly() {
        let as_records = |v: usize| v.div_ceil(256);
        let mut v = recent_group(0, 8);
        assert_eq!(as_records(v), 8);
        v = recent_group(v, 3);
        assert_eq!(
            as_records(v),
            8,
            "one smaller group does not undo a larger one"
        );
        let mut commits = 1;
        while as_records(v) > 1 {
            v = recent_group(v, 1);
            commits += 1;
            assert!(commits < 100, "never forgot the group of 8");
        }
        assert!((20..=40).contains(&commits), "{commits}");
        assert_eq!(as_records(recent_group(v, 5)), 5);
    }
}
