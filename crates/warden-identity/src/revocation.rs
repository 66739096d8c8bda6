//! Revocations, persisted in the Warden database (the audit log's SQLite file), so a
//! `warden identity revoke` in one process is seen by every other process using the file.
//!
//! Each process keeps a snapshot of the list in memory and checks a version counter in the
//! database at most every [`Revocations::refresh`] (default 250 ms): a revocation takes
//! effect everywhere within that time, and the decision path pays a memory lookup, not a
//! query. If the database cannot be read, lookups fail and chains are refused (fail closed).
//!
//! Tables (created if missing): `identity_revocations(target PRIMARY KEY, kind, reason,
//! revoked_at)` and `identity_meta(key PRIMARY KEY, value)` holding `revocations_version`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::IdentityError;
use crate::verify::{Revocation, RevocationCheck};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS identity_revocations (
    target TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    reason TEXT,
    revoked_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS identity_meta (
    key TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
);
";

/// How long a database write may wait for another process's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Snapshot {
    version: i64,
    map: HashMap<String, Revocation>,
}

/// The revocation list of one Warden database.
pub struct Revocations {
    path: PathBuf,
    conn: Mutex<Connection>,
    snapshot: RwLock<Arc<Snapshot>>,
    /// The snapshot's version and whether it is empty, readable without the lock: every
    /// decision by a verified agent asks (two or three times), nearly always of an empty
    /// list, and two threads taking the same lock (and counting the same `Arc`) for that
    /// bounced one cache line between cores. Written with the snapshot, under its lock.
    version: AtomicI64,
    empty: AtomicBool,
    started: Instant,
    /// Nanoseconds after `started` of the last version check.
    checked: AtomicU64,
    refresh: Duration,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Revocations({})", self.path.display())
    }
}

impl Revocations {
    /// Open (creating the tables if needed) the revocation list in the Warden database at
    /// `path` (created as an empty audit log if missing).
    pub fn open(path: &Path) -> Result<Self, IdentityError> {
        let store = |detail: String| IdentityError::Store {
            path: path.to_path_buf(),
            detail,
        };
        let conn =
            warden_audit::open_state(path, BUSY_TIMEOUT).map_err(|e| store(e.to_string()))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| store(format!("cannot create the revocation tables: {e}")))?;
        let snapshot = load(&conn).map_err(store)?;
        Ok(Revocations {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            version: AtomicI64::new(snapshot.version),
            empty: AtomicBool::new(snapshot.map.is_empty()),
            snapshot: RwLock::new(Arc::new(snapshot)),
            started: Instant::now(),
            checked: AtomicU64::new(0),
            refresh: Duration::from_millis(250),
        })
    }

    /// How often the database is asked whether the list changed (default 250 ms).
    pub fn refresh(mut self, every: Duration) -> Self {
        self.refresh = every;
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Revoke a credential id or a DID. Returns false when it was already revoked (the first
    /// reason stands).
    pub fn revoke(
        &self,
        target: &str,
        kind: &str,
        reason: Option<&str>,
        now: u64,
    ) -> Result<bool, IdentityError> {
        let changed = self.write(|tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO identity_revocations (target, kind, reason, revoked_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![target, kind, reason, i64::try_from(now).unwrap_or(i64::MAX)],
            )?;
            Ok(n > 0)
        })?;
        Ok(changed)
    }

    /// Lift a revocation (an operator's decision). Returns false when there was none.
    pub fn restore(&self, target: &str) -> Result<bool, IdentityError> {
        self.write(|tx| {
            let n = tx.execute(
                "DELETE FROM identity_revocations WHERE target = ?1",
                params![target],
            )?;
            Ok(n > 0)
        })
    }

    /// Every revocation, oldest first.
    pub fn list(&self) -> Result<Vec<Revocation>, IdentityError> {
        self.refresh_now().map_err(|detail| IdentityError::Store {
            path: self.path.clone(),
            detail,
        })?;
        let snap = self.current();
        let mut all: Vec<Revocation> = snap.map.values().cloned().collect();
        all.sort_by(|a, b| (a.at, &a.target).cmp(&(b.at, &b.target)));
        Ok(all)
    }

    /// A number that changes whenever the list does (checked against the database when the
    /// last check is older than the refresh interval).
    pub fn epoch(&self) -> Result<u64, String> {
        self.refresh_if_stale()?;
        Ok(u64::try_from(self.version.load(Ordering::Acquire)).unwrap_or(0))
    }

    /// Put a freshly read list in place (and its lock-free mirrors, under the same lock).
    fn install(&self, snapshot: Snapshot) {
        let mut slot = self
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.empty.store(snapshot.map.is_empty(), Ordering::Release);
        self.version.store(snapshot.version, Ordering::Release);
        *slot = Arc::new(snapshot);
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn write(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<bool>,
    ) -> Result<bool, IdentityError> {
        let store = |detail: String| IdentityError::Store {
            path: self.path.clone(),
            detail,
        };
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| store(format!("cannot start a transaction: {e}")))?;
        let changed = f(&tx).map_err(|e| store(format!("cannot update revocations: {e}")))?;
        if changed {
            tx.execute(
                "INSERT INTO identity_meta (key, value) VALUES ('revocations_version', 1)
                 ON CONFLICT(key) DO UPDATE SET value = value + 1",
                [],
            )
            .map_err(|e| store(format!("cannot update revocations: {e}")))?;
        }
        tx.commit()
            .map_err(|e| store(format!("cannot commit: {e}")))?;
        let snapshot = load(&conn).map_err(store)?;
        self.install(snapshot);
        Ok(changed)
    }

    fn refresh_if_stale(&self) -> Result<(), String> {
        let now = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let last = self.checked.load(Ordering::Relaxed);
        if now.saturating_sub(last) < u64::try_from(self.refresh.as_nanos()).unwrap_or(u64::MAX)
            && last != 0
        {
            return Ok(());
        }
        self.refresh_now()?;
        self.checked.store(now.max(1), Ordering::Relaxed);
        Ok(())
    }

    fn refresh_now(&self) -> Result<(), String> {
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let version = read_version(&conn)?;
        if version != self.version.load(Ordering::Acquire) {
            let snapshot = load(&conn)?;
            self.install(snapshot);
        }
        Ok(())
    }
}

impl RevocationCheck for Revocations {
    fn revoked(&self, target: &str) -> Result<Option<Revocation>, String> {
        self.refresh_if_stale()?;
        if self.empty.load(Ordering::Acquire) {
            return Ok(None);
        }
        Ok(self
            .snapshot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .map
            .get(target)
            .cloned())
    }
}

fn read_version(conn: &Connection) -> Result<i64, String> {
    conn.query_row(
        "SELECT value FROM identity_meta WHERE key = 'revocations_version'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(Option::unwrap_or_default)
    .map_err(|e| format!("cannot read the revocation list: {e}"))
}

fn load(conn: &Connection) -> Result<Snapshot, String> {
    let version = read_version(conn)?;
    let mut stmt = conn
        .prepare("SELECT target, reason, revoked_at FROM identity_revocations")
        .map_err(|e| format!("cannot read the revocation list: {e}"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Revocation {
                target: r.get(0)?,
                reason: r.get(1)?,
                at: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            })
        })
        .map_err(|e| format!("cannot read the revocation list: {e}"))?;
    let mut map = HashMap::new();
    for row in rows {
        let r = row.map_err(|e| format!("cannot read the revocation list: {e}"))?;
        map.insert(r.target.clone(), r);
    }
    Ok(Snapshot { version, map })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_in_one_process_reaches_another() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.db");
        let a = Revocations::open(&db).unwrap().refresh(Duration::ZERO);
        let b = Revocations::open(&db).unwrap().refresh(Duration::ZERO);
        assert_eq!(b.revoked("x").unwrap(), None);
        let e0 = b.epoch().unwrap();
        assert!(a.revoke("x", "credential", Some("leaked"), 7).unwrap());
        assert!(!a.revoke("x", "credential", Some("again"), 8).unwrap());
        let r = b.revoked("x").unwrap().unwrap();
        assert_eq!((r.reason.as_deref(), r.at), (Some("leaked"), 7));
        assert_ne!(b.epoch().unwrap(), e0);
        assert!(a.restore("x").unwrap());
        assert_eq!(b.revoked("x").unwrap(), None);
        assert_eq!(a.list().unwrap(), vec![]);
    }
}
