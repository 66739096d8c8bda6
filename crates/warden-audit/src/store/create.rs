//! Creating a new, empty log, safely when many processes try at once.
//!
//! The log is built under a temporary name in the same directory and hard-linked into place:
//! a crash leaves either no log or a complete one, and when several processes create the same
//! missing log at once exactly one link succeeds; the others find the winner's complete file
//! and open it like any existing log. Nothing is ever overwritten.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;

use super::schema::{APPLICATION_ID, FORMAT_VERSION, SCHEMA};
use crate::error::AuditError;

/// Create a new, empty log at `path` unless one appears there first.
pub(crate) fn create(path: &Path, created_at_ns: i64) -> Result<(), AuditError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(AuditError::NoDirectory {
            path: path.to_path_buf(),
            dir,
        });
    }
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
    // Errors name the log the caller asked for, not the temporary file.
    let result = build(&tmp, created_at_ns)
        .map_err(|e| AuditError::Sqlite {
            path: path.to_path_buf(),
            what: "cannot create audit log",
            source: e,
        })
        .and_then(|()| {
            File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(AuditError::io(path, "cannot sync new audit log"))?;
            match fs::hard_link(&tmp, path) {
                // Another process created it first; it will be probed like any existing file.
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    Err(AuditError::io(path, "cannot create audit log")(e))
                }
                _ => Ok(()),
            }
        });
    let _ = fs::remove_file(&tmp);
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut side = tmp.as_os_str().to_owned();
        side.push(suffix);
        let _ = fs::remove_file(PathBuf::from(side));
    }
    if result.is_ok() {
        // Make the new directory entry durable too; not every platform can open a directory.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
    }
    result
}

fn build(tmp: &Path, created_at_ns: i64) -> rusqlite::Result<()> {
    let conn = Connection::open(tmp)?;
    let setup = format!(
        "PRAGMA application_id = {app};
         PRAGMA user_version = {FORMAT_VERSION};
         BEGIN;
         {SCHEMA}
         INSERT INTO meta (key, value) VALUES ('format', 'warden-audit'),
             ('created_at_ns', '{created_at_ns}');
         COMMIT;
         PRAGMA journal_mode = WAL;",
        app = i32::from_be_bytes(APPLICATION_ID.to_be_bytes()),
    );
    conn.execute_batch(&setup)?;
    conn.close().map_err(|(_, e)| e)
}
