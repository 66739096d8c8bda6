//! The thread that copies the WAL back into the database file, so that no commit stalls
//! for it: SQLite's automatic checkpoint runs inside a commit and, with the fsync of the
//! database file it needs, holds that commit (and, with several processes, everyone's write
//! lock) for milliseconds.
//!
//! Why it also has the WAL restarted: SQLite writes the WAL from its start again only when a
//! write transaction begins with every frame already copied back. Under sustained load a
//! commit lands while each copy runs, so that moment never comes and the WAL grows without
//! end (measured: 2 GB in 12 s of `warden serve --db` at 40k decisions/s, until the disk is
//! full), each commit writing into freshly allocated blocks. Once the WAL holds more than
//! [`AuditConfig::wal_restart_bytes`], this thread asks the writer thread for a `RESTART`
//! checkpoint (`Writer::restart_wal`): it copies what the passive copy left and makes the
//! next transaction start the WAL over. It holds the write lock for a few milliseconds (two
//! fsyncs), which is why it runs on the writer thread under the writer's own lock: async
//! appenders meanwhile leave their records to it instead of retrying against SQLite's busy
//! handler, whose sleeps (1, 2, 5 ms…) made a 2.5 ms stall an 8 ms one.
//!
//! [`AuditConfig::wal_restart_bytes`]: super::config::AuditConfig::wal_restart_bytes

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::queue::{Shared, lock};
use crate::error::AuditError;

/// What the WAL file is truncated to after a checkpoint, so one burst does not leave a huge
/// file behind.
pub(super) const WAL_SIZE_LIMIT: u64 = 64 << 20;
/// How often the WAL is copied back into the database file while records are being written.
/// (50 ms with a 4 MiB restart threshold kept the WAL under 10 MB and each restart near
/// 1.2 ms at 50k audited decisions/s; 100 ms and 32 MiB made 4 ms restarts and p99 2.2 ms.)
const WAL_CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

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
        let restart_frames = i64::try_from(restart_bytes / frame).unwrap_or(i64::MAX);
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
                    // (Its second column: the frames in the WAL.)
                    let result = conn
                        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1));
                    if let Ok(frames) = result
                        && frames > restart_frames
                    {
                        shared.request_wal_restart();
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

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        *lock(&self.stop.0) = true;
        self.stop.1.notify_one();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
