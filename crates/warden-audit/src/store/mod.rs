//! The SQLite file: recognising it, creating it, opening it, and the names of its tables and
//! columns. Everything that knows SQL lives below this module, so the writer, the readers and
//! the verifier share one description of the file.
//!
//! A file is only ever written after it has been recognised as a Warden audit log from its
//! header bytes (SQLite magic, Warden's `application_id`, a known `user_version`) and, through
//! a read-only connection, its schema. So pointing Warden at the wrong file — a PDF, another
//! program's database, a damaged log — yields an error naming the file and leaves it
//! byte-for-byte as it was.

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::encoding::Encoding;
use crate::error::AuditError;

mod create;
mod meta;
mod row;

pub(crate) use create::create;
pub(crate) use meta::{
    Head, MetaHead, insert_incident, last_checkpoint, read_checkpoints, read_head, read_incidents,
    read_meta, read_meta_head, set_meta_head,
};
pub(crate) use row::{RawRow, record_from_values, row_values};

/// `PRAGMA application_id` of every Warden audit log: "WAUD" in ASCII.
pub const APPLICATION_ID: u32 = 0x5741_5544;
/// `PRAGMA user_version`: the format version this build writes and the newest it reads.
/// Version 1 logs (without the action's context) are still read and verified.
pub const FORMAT_VERSION: i64 = 2;

/// The columns of `records` in a version 2 log, in table order.
const RECORD_COLUMNS_V2: &str = "seq, ts_ns, agent, action, tool, resource, verdict, \
    policy, rule, reason, args, args_digest, context, latency_ns, policy_version, prev_hash, hash";
/// The columns of `records` in a version 1 log.
const RECORD_COLUMNS_V1: &str = "seq, ts_ns, agent, action, tool, resource, verdict, \
    policy, rule, reason, args, args_digest, latency_ns, policy_version, prev_hash, hash";
/// What readers select from a version 1 log: the same positions as version 2, with no
/// context, so one row decoder serves both.
const SELECT_RECORD_V1: &str = "seq, ts_ns, agent, action, tool, resource, verdict, \
    policy, rule, reason, args, args_digest, NULL, latency_ns, policy_version, prev_hash, hash";
/// How many columns a record row has as selected.
pub(crate) const RECORD_WIDTH: usize = 17;

const CHECKPOINT_COLUMNS: &str =
    "seq, head_hash, signed_at_ns, scheme, key_id, public_key, signature";
const INCIDENT_COLUMNS_V1: &str = "id, at_ns, kind, first_seq, last_seq, detail";
const INCIDENT_COLUMNS_V2: &str = "id, at_ns, kind, after_seq, lost, detail";

/// The record columns to select, in the order [`RawRow`] decodes them.
pub(crate) fn record_select(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::V1 => SELECT_RECORD_V1,
        Encoding::V2 => RECORD_COLUMNS_V2,
    }
}

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
    context        TEXT,
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
    after_seq INTEGER NOT NULL,
    lost      INTEGER NOT NULL,
    detail    TEXT NOT NULL
) STRICT;
";

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

/// The statement that appends one record (version 2 logs only).
pub(crate) const INSERT_RECORD: &str = "INSERT INTO records (seq, ts_ns, agent, action, tool, \
    resource, verdict, policy, rule, reason, args, args_digest, context, latency_ns, \
    policy_version, prev_hash, hash) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";

/// The statement that stores one signed checkpoint.
pub(crate) const INSERT_CHECKPOINT: &str = "INSERT OR REPLACE INTO checkpoints \
    (seq, head_hash, signed_at_ns, scheme, key_id, public_key, signature) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// SQLite stores integers signed; sequence numbers, latencies and versions never reach 2^63.
pub(crate) fn to_i64(v: u64) -> i64 {
    // INVARIANT: sequence numbers count up from 1 and latencies are nanoseconds; neither
    // reaches 2^63. Policy versions are checked in `append`.
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored integer read back as the unsigned value it was written from (negatives: 0).
pub(crate) fn to_u64(v: i64) -> u64 {
    v.max(0).cast_unsigned()
}
