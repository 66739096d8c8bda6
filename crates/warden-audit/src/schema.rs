//! Recognising, creating and opening audit log files.
//!
//! A file is only ever written after it has been recognised as a Warden audit log from its
//! header bytes (SQLite magic, Warden's `application_id`, a known `user_version`) and, through
//! a read-only connection, its schema. So pointing Warden at the wrong file — a PDF, another
//! program's database, a damaged log — yields an error naming the file and leaves it
//! byte-for-byte as it was.

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::error::AuditError;

/// `PRAGMA application_id` of every Warden audit log: "WAUD" in ASCII.
pub const APPLICATION_ID: u32 = 0x5741_5544;
/// `PRAGMA user_version`: the format version this build writes and the newest it reads.
pub const FORMAT_VERSION: i64 = 1;

/// The schema. `STRICT` tables make SQLite itself refuse a value of the wrong type, so a hand
/// edit cannot smuggle text into an integer column. `seq` is the rowid, so reading in `seq`
/// order is a sequential scan.
const SCHEMA: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
CREATE TABLE records (
    seq            INTEGER PRIMARY KEY,
    ts_ns          INTEGER NOT NULL,
    agent          TEXT,
    action         TEXT NOT NULL,
    tool           TEXT,
    resource       TEXT,
    verdict        TEXT NOT NULL,
    policy         TEXT,
    rule           TEXT,
    reason         TEXT NOT NULL,
    args           TEXT,
    args_digest    BLOB NOT NULL,
    latency_ns     INTEGER NOT NULL,
    policy_version INTEGER,
    prev_hash      BLOB NOT NULL,
    hash           BLOB NOT NULL
) STRICT;
CREATE TABLE checkpoints (
    seq          INTEGER PRIMARY KEY,
    head_hash    BLOB NOT NULL,
    signed_at_ns INTEGER NOT NULL,
    scheme       TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    public_key   BLOB NOT NULL,
    signature    BLOB NOT NULL
) STRICT;
CREATE TABLE incidents (
    id        INTEGER PRIMARY KEY,
    at_ns     INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL,
    detail    TEXT NOT NULL
) STRICT;
";

/// The columns of `records`, in table order; the verifier and the readers select them in
/// this order.
pub(crate) const RECORD_COLUMNS: &str = "seq, ts_ns, agent, action, tool, resource, verdict, \
    policy, rule, reason, args, args_digest, latency_ns, policy_version, prev_hash, hash";

/// What the header check found.
pub(crate) enum Probe {
    /// No file: a writer may create one.
    Missing,
    /// A file whose header says it is a Warden audit log of a version this build reads.
    AuditLog,
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
    let mut header = [0u8; 100];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(AuditError::io(path, "cannot read file header"))?;
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
    let version = i64::from(be32(60));
    if version > FORMAT_VERSION {
        return Err(AuditError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if version < 1 {
        return Err(AuditError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("format version {version} in the header"),
        });
    }
    Ok(Probe::AuditLog)
}

/// Open an existing log for reading only and check that its schema is the audit log's.
pub(crate) fn open_read_only(path: &Path) -> Result<Connection, AuditError> {
    match probe(path)? {
        Probe::Missing => Err(AuditError::Io {
            path: path.to_path_buf(),
            what: "cannot open audit log",
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }),
        Probe::AuditLog => {
            // A read-only connection to a WAL database creates `-wal` and `-shm` files and,
            // unable to write, never removes them. So when there is no `-wal` (no connection
            // is open and the main file holds everything), open read-write but refuse all
            // writes (`query_only`): SQLite then removes the files it made when this, the
            // last connection, closes, and with an empty WAL it writes nothing to the log.
            // When a `-wal` exists (a writer is running or crashed), read-only adds nothing.
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            if !Path::new(&wal).exists() {
                match open_reader(path, OpenFlags::SQLITE_OPEN_READ_WRITE) {
                    Ok(conn) => return Ok(conn),
                    // Damage or a foreign schema is an answer; anything else (say, a
                    // directory where `-shm` cannot be created) gets a plain read-only try.
                    Err(e @ (AuditError::Corrupt { .. } | AuditError::NotAuditLog { .. })) => {
                        return Err(e);
                    }
                    Err(_) => {}
                }
            }
            open_reader(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        }
    }
}

fn open_reader(path: &Path, mode: OpenFlags) -> Result<Connection, AuditError> {
    let conn = Connection::open_with_flags(path, mode | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(AuditError::sqlite(path, "cannot open audit log"))?;
    conn.execute_batch("PRAGMA query_only = 1;")
        .map_err(AuditError::sqlite(path, "cannot open audit log read-only"))?;
    check_schema(&conn, path)?;
    Ok(conn)
}

/// Check that every table and column the log needs is there, and that `meta` says what the
/// header says. A damaged page surfaces here as [`AuditError::Corrupt`].
pub(crate) fn check_schema(conn: &Connection, path: &Path) -> Result<(), AuditError> {
    let expected: [(&str, &str); 4] = [
        ("meta", "key, value"),
        ("records", RECORD_COLUMNS),
        (
            "checkpoints",
            "seq, head_hash, signed_at_ns, scheme, key_id, public_key, signature",
        ),
        ("incidents", "id, at_ns, kind, first_seq, last_seq, detail"),
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

/// Create a new, empty log at `path`, atomically: it is built under a temporary name in the
/// same directory and linked into place, so a crash leaves either no log or a complete one,
/// and a file that appeared meanwhile is never overwritten.
pub(crate) fn create(path: &Path, created_at_ns: i64) -> Result<(), AuditError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "audit.db".to_string());
    // Unique per process and call, so concurrent creators never share a temporary file.
    static CREATING: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{file_name}.creating-{}-{}",
        std::process::id(),
        CREATING.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_file(&tmp);
    let result = build(&tmp, created_at_ns).and_then(|()| {
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(AuditError::io(&tmp, "cannot sync new audit log"))?;
        match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            // Another process created it first; it will be probed like any existing file.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(AuditError::io(path, "cannot create audit log")(e)),
        }
    });
    let _ = fs::remove_file(&tmp);
    if result.is_ok() {
        // Make the new directory entry durable too; not every platform can open a directory.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
    }
    result
}

fn build(tmp: &Path, created_at_ns: i64) -> Result<(), AuditError> {
    let conn = Connection::open(tmp).map_err(AuditError::sqlite(tmp, "cannot create audit log"))?;
    let setup = format!(
        "PRAGMA application_id = {app};
         PRAGMA user_version = {FORMAT_VERSION};
         BEGIN;
         {SCHEMA}
         INSERT INTO meta (key, value) VALUES ('format', 'warden-audit'), ('created_at_ns', '{created_at_ns}'),
             ('state', 'closed'), ('reserved_through', '0');
         COMMIT;
         PRAGMA journal_mode = WAL;",
        app = i32::from_be_bytes(APPLICATION_ID.to_be_bytes()),
    );
    conn.execute_batch(&setup)
        .map_err(AuditError::sqlite(tmp, "cannot create audit log schema"))?;
    conn.close()
        .map_err(|(_, e)| AuditError::sqlite(tmp, "cannot close new audit log")(e))
}
