//! The one error type of the audit log. Every variant names the file it is about, so a
//! message on its own tells an operator which log (or key file) to look at and what is wrong.

use std::path::PathBuf;

use thiserror::Error;

/// Something the audit log could not do.
///
/// The decision path turns any of these into a deny: an action that cannot be recorded does
/// not happen.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The file is not an SQLite database at all (wrong magic bytes, too short, …).
    #[error("{}: not a Warden audit log: {detail}", path.display())]
    NotSqlite {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// The file is an SQLite database, but not one written by Warden's audit log.
    #[error("{}: an SQLite database, but not a Warden audit log: {detail}", path.display())]
    NotAuditLog {
        /// The file.
        path: PathBuf,
        /// Why it was not recognised.
        detail: String,
    },
    /// The log was written by a newer Warden with a format this build does not know.
    #[error(
        "{}: audit log format version {found} is newer than this build supports (up to {supported})",
        path.display()
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: i64,
        /// The newest version this build reads.
        supported: i64,
    },
    /// The file claims to be an audit log but SQLite cannot read it, or its contents are
    /// inconsistent in a way that is not tampering (missing table, malformed page).
    #[error("{}: the audit log is corrupt: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite or the schema check reported.
        detail: String,
    },
    /// The last record does not match its own hash, so new records would extend a chain that
    /// is already broken. Run `warden audit verify` to find where.
    #[error(
        "{}: record {seq} does not match its hash; refusing to append to a tampered log (run `warden audit verify`)",
        path.display()
    )]
    TamperedHead {
        /// The file.
        path: PathBuf,
        /// The sequence number of the last record.
        seq: u64,
    },
    /// An SQLite call failed.
    #[error("{}: {what}: {source}", path.display())]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A file system call failed.
    #[error("{}: {what}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The queue in front of the writer is full and the log is configured to refuse rather
    /// than wait (`when_full = deny`).
    #[error("{}: audit queue is full ({capacity} records waiting); the action is denied", path.display())]
    QueueFull {
        /// The log.
        path: PathBuf,
        /// The queue's capacity.
        capacity: usize,
    },
    /// The record could not be committed (disk full, I/O error, lock held too long, …).
    #[error("{}: audit record could not be written: {detail}", path.display())]
    WriteFailed {
        /// The log.
        path: PathBuf,
        /// What the writer reported.
        detail: String,
    },
    /// The log was closed, or its writer thread stopped.
    #[error("{}: audit log is closed: {detail}", path.display())]
    Closed {
        /// The log.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// Another connection appended to the log behind this writer's back; appending further
    /// would fork the chain.
    #[error(
        "{}: another writer appended to this log (expected last record {expected}, found {found}); only one process may write an audit log",
        path.display()
    )]
    ConcurrentWriter {
        /// The log.
        path: PathBuf,
        /// The last sequence number this writer committed.
        expected: u64,
        /// The last sequence number in the file.
        found: u64,
    },
    /// A key file or key string could not be used.
    #[error("{}: {detail}", path.display())]
    Key {
        /// The key file (or `<argument>` for a key given on the command line).
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A value given to the log is out of the range it can store.
    #[error("{}: {detail}", path.display())]
    InvalidInput {
        /// The log.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

impl AuditError {
    pub(crate) fn sqlite(
        path: &std::path::Path,
        what: &'static str,
    ) -> impl FnOnce(rusqlite::Error) -> AuditError {
        let path = path.to_path_buf();
        move |source| {
            // SQLite reports damaged files through two codes; give them the clearer variant.
            if let rusqlite::Error::SqliteFailure(e, msg) = &source
                && matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
                )
            {
                let detail = match msg {
                    Some(m) => format!("{what}: {m}"),
                    None => format!("{what}: {e}"),
                };
                return AuditError::Corrupt { path, detail };
            }
            AuditError::Sqlite { path, what, source }
        }
    }

    pub(crate) fn io(
        path: &std::path::Path,
        what: &'static str,
    ) -> impl FnOnce(std::io::Error) -> AuditError {
        let path = path.to_path_buf();
        move |source| AuditError::Io { path, what, source }
    }
}
