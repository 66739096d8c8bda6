//! The thread that copies the WAL back into the database file, so that no commit stalls
//! for it: SQLite's automatic checkpoint runs inside a commit and, with the fsync of the
//! database file it needs, holds that commit (and, with several processes, everyone's write
//! lock) for milliseconds.

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
