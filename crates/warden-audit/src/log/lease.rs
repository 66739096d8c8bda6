//! Noticing buffered writers that died with records still queued.
//!
//! A buffered append returns before its record is committed, so a crash loses what was
//! queued. That loss must not be silent. Each buffered writer therefore registers itself in
//! `meta` (`writer:<id>` = `<pid> <opened_at_ns> <most records it may lose>`) and, for as long
//! as it lives, holds a shared lock on `<log>.writers.lock`. The operating system releases
//! that lock when the process dies, however it dies. Whoever opens the log next and finds
//! registrations tries the lock exclusively: if that succeeds no registered writer is alive,
//! so each registration left behind is an unclean shutdown, written down as an incident.
//! While some buffered writer is alive the check waits for a later open (a registration is
//! never reaped while its owner might still hold it).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::queue::PendingIncident;
use crate::error::AuditError;

const PREFIX: &str = "writer:";

/// A live buffered writer's registration and its shared lock.
pub(super) struct Lease {
    key: String,
    /// Holds the shared lock until dropped.
    _lock: File,
}

fn lock_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".writers.lock");
    PathBuf::from(name)
}

fn open_lock(log: &Path) -> Result<File, AuditError> {
    let path = lock_path(log);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(AuditError::io(&path, "cannot open the writers' lock file"))
}

impl Lease {
    /// Take the shared lock, then register (in that order, so a reaper holding the lock
    /// exclusively never sees a registration whose owner is alive).
    pub(super) fn acquire(
        log: &Path,
        conn: &Connection,
        lost_at_most: u64,
    ) -> Result<Lease, AuditError> {
        let file = open_lock(log)?;
        file.lock_shared().map_err(AuditError::io(
            &lock_path(log),
            "cannot lock the writers' lock file",
        ))?;
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| AuditError::Io {
            path: log.to_path_buf(),
            what: "cannot draw a writer id",
            source: std::io::Error::other(e.to_string()),
        })?;
        let key = format!("{PREFIX}{}", crate::hex::to_hex(&id));
        let value = format!(
            "{} {} {lost_at_most}",
            std::process::id(),
            crate::timestamp::Timestamp::now().unix_nanos()
        );
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
            [&key, &value],
        )
        .map_err(AuditError::sqlite(
            log,
            "cannot register the buffered writer",
        ))?;
        Ok(Lease { key, _lock: file })
    }

    /// Remove the registration (at a clean close, inside the final transaction).
    pub(super) fn unregister(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.execute("DELETE FROM meta WHERE key = ?1", [&self.key])
            .map(drop)
    }
}

/// Whether any buffered writer is registered (the cheap check every open makes).
pub(super) fn any_registrations(log: &Path, conn: &Connection) -> Result<bool, AuditError> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM meta WHERE key LIKE 'writer:%')",
        [],
        |r| r.get(0),
    )
    .map_err(AuditError::sqlite(log, "cannot read writer registrations"))
}

/// Registrations left by buffered writers that are no longer alive, as incidents to write
/// (and the keys to delete). Empty when there are none, or when some buffered writer is
/// still alive (then nobody can tell which registrations are stale).
pub(super) fn stale_registrations(
    log: &Path,
    conn: &Connection,
    after_seq: u64,
) -> Result<(Vec<String>, Vec<PendingIncident>), AuditError> {
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT key, value FROM meta WHERE key LIKE 'writer:%'")
        .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .map_err(AuditError::sqlite(log, "cannot read writer registrations"))?;
    if rows.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let file = open_lock(log)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok((Vec::new(), Vec::new())),
        Err(TryLockError::Error(e)) => {
            return Err(AuditError::io(
                &lock_path(log),
                "cannot lock the writers' lock file",
            )(e));
        }
    }
    // The caller removes them in the same write transaction, so no other opener sees them.
    let mut keys = Vec::new();
    let mut incidents = Vec::new();
    for (key, value) in rows {
        let mut parts = value.split(' ');
        let pid = parts.next().unwrap_or("?").to_string();
        let _opened = parts.next();
        let lost: u64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        incidents.push(PendingIncident {
            kind: "unclean_shutdown",
            after_seq,
            lost,
            detail: format!(
                "buffered writer (process {pid}) stopped without closing the log; \
                 up to {lost} records it had accepted but not committed were lost"
            ),
        });
        keys.push(key);
    }
    drop(file);
    Ok((keys, incidents))
}
