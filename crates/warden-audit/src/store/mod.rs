//! The SQLite file: recognising it, creating it, opening it, and the names of its tables and
//! columns. Everything that knows SQL lives below this module, so the writer, the readers and
//! the verifier share one description of the file.
//!
//! A file is only ever written after it has been recognised as a Warden audit log from its
//! header bytes (SQLite magic, Warden's `application_id`, a known `user_version`) and, through
//! a read-only connection, its schema. So pointing Warden at the wrong file — a PDF, another
//! program's database, a damaged log — yields an error naming the file and leaves it
//! byte-for-byte as it was.

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::encoding::Encoding;
use crate::error::AuditError;

mod create;
mod meta;
mod row;
mod schema;

pub(crate) use create::create;
pub(crate) use meta::{
    Head, MetaHead, checkpoint_before, delete_checkpoint, insert_incident, newest_checkpoint,
    read_checkpoint_mac, read_checkpoints, read_head, read_incidents, read_meta, read_meta_head,
    set_checkpoint_mac, set_meta_head,
};
pub(crate) use row::{RawRow, record_from_values, row_values};
pub use schema::{APPLICATION_ID, FORMAT_VERSION};
use schema::{
    CHECKPOINT_COLUMNS, INCIDENT_COLUMNS_V1, INCIDENT_COLUMNS_V2, RECORD_COLUMNS_V1,
    RECORD_COLUMNS_V2,
};
pub(crate) use schema::{
    INSERT_CHECKPOINT, INSERT_RECORD, RECORD_WIDTH, record_select, to_i64, to_u64,
};

/// Open the Warden database at `path` for the state other parts of Warden keep beside the
/// audit log (kill switch, trust, revocations, approvals, sagas: DESIGN's "one SQLite file").
/// A missing file is created as an empty audit log first; an existing one must be recognised
/// as Warden's (header and schema) before anything is written. The connection is read-write,
/// in WAL mode, with the same busy timeout writers use, so many processes can share the file.
/// Callers create their own tables (`CREATE TABLE IF NOT EXISTS`, names prefixed by what they
/// are for) and never touch the audit log's.
pub fn open_state(
    path: &Path,
    busy_timeout: std::time::Duration,
) -> Result<Connection, AuditError> {
    if let Probe::Missing = probe(path)? {
        create(path, crate::timestamp::Timestamp::now().unix_nanos())?;
    }
    drop(open_read_only(path)?);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(AuditError::sqlite(path, "cannot open the Warden database"))?;
    conn.busy_timeout(busy_timeout)
        .map_err(AuditError::sqlite(path, "cannot set busy timeout"))?;
    let journal: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(AuditError::sqlite(path, "cannot switch to WAL mode"))?;
    if !journal.eq_ignore_ascii_case("wal") {
        return Err(AuditError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("cannot use WAL mode (journal mode stays `{journal}`)"),
        });
    }
    Ok(conn)
}

/// Open the existing Warden database at `path` for reading only: recognised as Warden's
/// first, never created, and every write refused (`query_only`). Opened as the audit log's
/// readers open it, so no `-wal`/`-shm` file is left behind and the journal mode is not
/// changed: for commands that promise to write nothing (`warden policy explain --db`).
pub fn open_state_read_only(path: &Path) -> Result<Connection, AuditError> {
    open_read_only(path).map(|store| store.conn)
}

/// The in-process turn to write the Warden database at one file: every writer thread of this
/// process that shares the file (the audit log's writer, the trust store's) takes it around
/// its write transaction.
///
/// Why: SQLite has one writer at a time per file, and a connection that finds the write lock
/// taken sleeps in its busy handler — 1 ms, then 2, 5, 10 … — before it tries again. Two busy
/// writer threads in one process took turns that way, each sleeping milliseconds while the
/// other committed in microseconds, and the queues behind both filled up. Waiting on a mutex
/// instead wakes the next writer as soon as the lock is free. Other processes still meet at
/// SQLite's lock as before (the gate is per process).
#[derive(Clone)]
pub struct WriteGate(std::sync::Arc<Mutex<()>>);

impl WriteGate {
    /// The gate of the file at `path` (every path to the same file gets the same gate). A
    /// file that cannot be looked at gets a gate of its own, which only means its writers
    /// meet at SQLite's lock, as without a gate.
    pub fn of(path: &Path) -> WriteGate {
        type Gates = HashMap<(u64, u64), std::sync::Weak<Mutex<()>>>;
        static GATES: OnceLock<Mutex<Gates>> = OnceLock::new();
        let Ok(meta) = fs::metadata(path) else {
            return WriteGate(std::sync::Arc::default());
        };
        let mut gates = GATES
            .get_or_init(|| Mutex::new(HashMap::new()))
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = (meta.dev(), meta.ino());
        if let Some(gate) = gates.get(&key).and_then(std::sync::Weak::upgrade) {
            return WriteGate(gate);
        }
        // Forget gates nobody holds any more (a long-lived process opening many files).
        gates.retain(|_, g| g.strong_count() > 0);
        let gate = std::sync::Arc::new(Mutex::new(()));
        gates.insert(key, std::sync::Arc::downgrade(&gate));
        WriteGate(gate)
    }

    /// Wait for this process's turn to write the file; the turn ends when the guard drops.
    pub fn enter(&self) -> std::sync::MutexGuard<'_, ()> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This process's turn to write the file if nobody in it is writing now (for a caller
    /// that must not wait: it hands its work to a thread that may).
    pub fn try_enter(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        match self.0.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

impl std::fmt::Debug for WriteGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteGate")
    }
}

/// What the header check found.
pub(crate) enum Probe {
    /// No file: a writer may create one.
    Missing,
    /// A file whose header says it is a Warden audit log with this record encoding.
    AuditLog(Encoding),
}

/// Look at the first 100 bytes of `path` — the SQLite header — without opening it with SQLite.
pub(crate) fn probe(path: &Path) -> Result<Probe, AuditError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Probe::Missing),
        Err(e) => return Err(AuditError::io(path, "cannot read file")(e)),
    };
    let not_sqlite = |detail: String| AuditError::NotSqlite {
        path: path.to_path_buf(),
        detail,
    };
    if meta.is_dir() {
        return Err(not_sqlite("it is a directory".to_string()));
    }
    if meta.len() < 100 {
        return Err(not_sqlite(format!(
            "the file is {} bytes long, too short for an SQLite database",
            meta.len()
        )));
    }
    let header =
        read_header(path, &meta).map_err(AuditError::io(path, "cannot read file header"))?;
    if &header[..16] != b"SQLite format 3\0" {
        return Err(not_sqlite(
            "it does not start with the SQLite header (\"SQLite format 3\")".to_string(),
        ));
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let app_id = be32(68);
    if app_id != APPLICATION_ID {
        return Err(AuditError::NotAuditLog {
            path: path.to_path_buf(),
            detail: if app_id == 0 {
                "it has no application id (another program's database)".to_string()
            } else {
                format!("its application id is {app_id:#010x}, not Warden's {APPLICATION_ID:#010x}")
            },
        });
    }
    match i64::from(be32(60)) {
        1 => Ok(Probe::AuditLog(Encoding::V1)),
        2 => Ok(Probe::AuditLog(Encoding::V2)),
        v if v > FORMAT_VERSION => Err(AuditError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: v,
            supported: FORMAT_VERSION,
        }),
        v => Err(AuditError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("format version {v} in the header"),
        }),
    }
}

/// Descriptors of the files [`probe`] has read, kept open for the life of the process, one
/// per file (device and inode).
///
/// Why never closed: POSIX record locks belong to the process and the file, not to the
/// descriptor, so closing *any* descriptor of the database drops every lock this process
/// holds on it — including the shared lock each SQLite connection keeps on a WAL database.
/// Without it, another process's last connection to close believes it is the last one
/// anywhere, checkpoints and deletes the `-wal` and `-shm` files under the living
/// connections, and what they commit next goes to an unlinked WAL no other process can see
/// (SQLite's "How To Corrupt", 2.2). A process probes the file again whenever it opens one
/// more connection (a reader, the runtime's state) while its writer is open, so the header is
/// read through a descriptor that is never closed. Bounded by the files a process probes.
fn read_header(path: &Path, meta: &fs::Metadata) -> std::io::Result<[u8; 100]> {
    static KEPT: OnceLock<Mutex<HashMap<(u64, u64), File>>> = OnceLock::new();
    let mut kept = KEPT
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let key = (meta.dev(), meta.ino());
    if !kept.contains_key(&key) {
        let file = File::open(path)?;
        let opened = file.metadata()?;
        let real = (opened.dev(), opened.ino());
        // Keep it under the file it is, even when that is not the one just looked at; one
        // already kept for that file means this one is surplus, and it must still not be
        // closed.
        match kept.entry(real) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(file);
            }
            std::collections::hash_map::Entry::Occupied(_) => std::mem::forget(file),
        }
        if real != key {
            return Err(std::io::Error::other(
                "the file was replaced while it was being opened",
            ));
        }
    }
    let mut header = [0u8; 100];
    kept[&key].read_exact_at(&mut header, 0)?;
    Ok(header)
}

/// A connection to a recognised log, and the record encoding its format version uses.
pub(crate) struct Store {
    pub conn: Connection,
    pub encoding: Encoding,
}

/// Open an existing log for reading only and check that its schema is the audit log's.
pub(crate) fn open_read_only(path: &Path) -> Result<Store, AuditError> {
    let encoding = match probe(path)? {
        Probe::Missing => {
            return Err(AuditError::Io {
                path: path.to_path_buf(),
                what: "cannot open audit log",
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        Probe::AuditLog(encoding) => encoding,
    };
    // A read-only connection to a WAL database creates `-wal` and `-shm` files and, unable
    // to write, never removes them. So when there is no `-wal` (no connection is open and the
    // main file holds everything), open read-write but refuse all writes (`query_only`):
    // SQLite then removes the files it made when this, the last connection, closes, and with
    // an empty WAL it writes nothing to the log. When a `-wal` exists (a writer is running or
    // crashed), read-only adds nothing.
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if !Path::new(&wal).exists() {
        match open_reader(path, OpenFlags::SQLITE_OPEN_READ_WRITE, encoding) {
            Ok(conn) => return Ok(Store { conn, encoding }),
            // Damage or a foreign schema is an answer; anything else (say, a directory
            // where `-shm` cannot be created) gets a plain read-only try.
            Err(e @ (AuditError::Corrupt { .. } | AuditError::NotAuditLog { .. })) => {
                return Err(e);
            }
            Err(_) => {}
        }
    }
    let conn = open_reader(path, OpenFlags::SQLITE_OPEN_READ_ONLY, encoding)?;
    Ok(Store { conn, encoding })
}

fn open_reader(path: &Path, mode: OpenFlags, encoding: Encoding) -> Result<Connection, AuditError> {
    let conn = Connection::open_with_flags(path, mode | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(AuditError::sqlite(path, "cannot open audit log"))?;
    conn.execute_batch("PRAGMA query_only = 1;")
        .map_err(AuditError::sqlite(path, "cannot open audit log read-only"))?;
    check_schema(&conn, path, encoding)?;
    Ok(conn)
}

/// Check that every table and column the log needs is there, and that `meta` says what the
/// header says. A damaged page surfaces here as [`AuditError::Corrupt`].
pub(crate) fn check_schema(
    conn: &Connection,
    path: &Path,
    encoding: Encoding,
) -> Result<(), AuditError> {
    let (records, incidents) = match encoding {
        Encoding::V1 => (RECORD_COLUMNS_V1, INCIDENT_COLUMNS_V1),
        Encoding::V2 => (RECORD_COLUMNS_V2, INCIDENT_COLUMNS_V2),
    };
    let expected: [(&str, &str); 4] = [
        ("meta", "key, value"),
        ("records", records),
        ("checkpoints", CHECKPOINT_COLUMNS),
        ("incidents", incidents),
    ];
    for (table, columns) in expected {
        let mut stmt = conn
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
            .map_err(AuditError::sqlite(path, "cannot read the schema"))?;
        let found: Vec<String> = stmt
            .query_map([table], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(AuditError::sqlite(path, "cannot read the schema"))?;
        if found.is_empty() {
            return Err(AuditError::Corrupt {
                path: path.to_path_buf(),
                detail: format!("table `{table}` is missing"),
            });
        }
        if found.join(", ") != columns {
            return Err(AuditError::Corrupt {
                path: path.to_path_buf(),
                detail: format!(
                    "table `{table}` has columns ({}), expected ({columns})",
                    found.join(", ")
                ),
            });
        }
    }
    let format: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(AuditError::sqlite(path, "cannot read the meta table"))?;
    if format.as_deref() != Some("warden-audit") {
        return Err(AuditError::Corrupt {
            path: path.to_path_buf(),
            detail: "the meta table does not name the format `warden-audit`".to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::WriteGate;

    #[test]
    fn every_path_to_one_file_shares_one_gate_and_other_files_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.db");
        let b = dir.path().join("b.db");
        std::fs::write(&a, b"").unwrap();
        std::fs::write(&b, b"").unwrap();
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&a, &link).unwrap();
        let hard = dir.path().join("hard.db");
        std::fs::hard_link(&a, &hard).unwrap();
        let gate = WriteGate::of(&a);
        for other in [&link, &hard, &dir.path().join(".").join("a.db")] {
            let g = WriteGate::of(other);
            assert!(std::sync::Arc::ptr_eq(&gate.0, &g.0), "{}", other.display());
        }
        assert!(!std::sync::Arc::ptr_eq(&gate.0, &WriteGate::of(&b).0));
        // Held by one writer, the same file's gate is taken for everyone in the process.
        let turn = gate.enter();
        assert!(WriteGate::of(&link).0.try_lock().is_err());
        drop(turn);
        assert!(WriteGate::of(&link).0.try_lock().is_ok());
    }
}
