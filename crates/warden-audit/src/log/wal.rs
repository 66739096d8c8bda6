//! The thread that copies the WAL back into the database file, so that no commit stalls
//! for it: SQLite's automatic checkpoint runs inside a commit and, with the fsync of the
//! database file it needs, holds that commit (and, with several processes, everyone's write
//! lock) for milliseconds.
//!
//! Why it also restarts the WAL: SQLite writes the WAL from its start again only when a write
//! transaction begins with every frame already copied back. Under sustained load a commit
//! lands while each copy runs, so that moment never comes and the WAL grows without end
//! (measured: 2 GB in 12 s of `warden serve --db` at 40k decisions/s, until the disk is
//! full), each commit writing into freshly allocated blocks. Once the WAL holds more than
//! [`AuditConfig::wal_restart_bytes`], this thread runs a `RESTART` checkpoint: it copies
//! what the passive copy left and makes the next transaction start the WAL over. That needs
//! the write lock for a millisecond or more (two fsyncs), so the thread first takes this
//! process's writer (its mutex, then the file's in-process gate) and never waits for
//! SQLite's lock: meanwhile the writer thread waits on a mutex and async appenders leave
//! their records queued, instead of sleeping in SQLite's busy handler (1, 2, 5 ms…, which
//! made a 2.5 ms stall an 8 ms one). The copying runs here, not on the writer thread, which
//! is the bottleneck of a buffered log (measured: +0.5 µs a record there).
//!
//! [`AuditConfig::wal_restart_bytes`]: super::config::AuditConfig::wal_restart_bytes

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::queue::{Shared, lock};
use super::writer::Writer;
use crate::error::AuditError;

/// What the WAL file is truncated to after a checkpoint, so one burst does not leave a huge
/// file behind.
pub(super) const WAL_SIZE_LIMIT: u64 = 64 << 20;
/// How often the WAL is copied back into the database file while records are being written.
/// (50 ms with a 4 MiB restart threshold kept the WAL under 10 MB and each restart near
/// 1.2 ms at 50k audited decisions/s; 100 ms and 32 MiB made 4 ms restarts and p99 2.2 ms.)
const WAL_CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// Before a restart, the WAL is copied again while a copy takes at least
/// [`RESTART_SHORT_PASS`] (what arrives during a long copy is what the restart would copy
/// holding the writer), at most this many times.
const RESTART_PASSES: usize = 4;
const RESTART_SHORT_PASS: Duration = Duration::from_millis(1);
/// Restarts in a row that found a lock or a reader in the way before that is warned about
/// (≈ 5 s of rounds under load).
const RESTART_MISSES_WARNED: u32 = 100;

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
        restart_bytes: u64,
        shared: Arc<Shared>,
        committer: Weak<Mutex<Writer>>,
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
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(AuditError::sqlite(path, "cannot read the page size"))?;
        // A WAL frame: a 24-byte header and one page.
        let frame = u64::try_from(page_size).unwrap_or(4096) + 24;
        // (At least 16 frames: a threshold of 0 would take the writer's lock every round.)
        let restart_frames = i64::try_from(restart_bytes / frame)
            .unwrap_or(i64::MAX)
            .max(16);
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = stop.clone();
        let handle = std::thread::Builder::new()
            .name("warden-audit-wal".to_string())
            .spawn(move || {
                let mut seen = 0;
                let mut warned = false;
                let mut missed_restarts = 0;
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
                    let result = passive(&conn);
                    if let Ok(frames) = result
                        && frames > restart_frames
                    {
                        // Copy again what arrived during the copy, while a copy takes long:
                        // the restart holds the writer while it copies the rest.
                        for _ in 0..RESTART_PASSES {
                            let pass = Instant::now();
                            let copied = passive(&conn);
                            if copied.is_err() || pass.elapsed() < RESTART_SHORT_PASS {
                                break;
                            }
                        }
                        if restart(&conn, &committer, busy_timeout, &shared) {
                            shared.wal_restarts.fetch_add(1, Ordering::Relaxed);
                            missed_restarts = 0;
                        } else {
                            missed_restarts += 1;
                            if missed_restarts == RESTART_MISSES_WARNED {
                                tracing::warn!(
                                    "{}: the WAL cannot be started over (another connection keeps reading old frames or holding the write lock); it grows until it can",
                                    shared.path.display()
                                );
                            }
                        }
                    }
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

/// A PASSIVE checkpoint: copy what no reader still needs, never wait for the writer.
/// Returns the frames in the WAL.
fn passive(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
}

/// Copy what is left of the WAL back and have the next transaction start it over
/// (`RESTART`), holding this process's writer meanwhile (see the module docs). Never waits
/// for SQLite's lock: another connection's write lock, or a reader still on old frames, makes
/// it return `false`, to be tried at the next round.
fn restart(
    conn: &Connection,
    committer: &Weak<Mutex<Writer>>,
    busy_timeout: Duration,
    shared: &Shared,
) -> bool {
    let Some(committer) = committer.upgrade() else {
        return false;
    };
    // The writer thread takes its lock again right after each commit: ask it to stand back
    // until this thread has the lock, or a busy writer keeps it for hundreds of ms.
    shared.restart_wanted.store(true, Ordering::SeqCst);
    let writer = lock(&committer);
    shared.restart_wanted.store(false, Ordering::SeqCst);
    // The writer's own gate: the one its commits and the trust store's take.
    let gate = writer.gate().clone();
    let done = match gate.try_enter() {
        Some(_turn) if conn.busy_timeout(Duration::ZERO).is_ok() => {
            // Its first column is 1 when a lock or a reader kept it from finishing.
            let done = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0));
            let _ = conn.busy_timeout(busy_timeout);
            matches!(done, Ok(0))
        }
        _ => false,
    };
    drop(writer);
    // Records that async appenders left queued meanwhile (`writer::combine`).
    shared.wake_writer();
    done
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
