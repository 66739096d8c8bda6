//! The one error type of the audit log. Every variant names the file it is about, so a
//! message on its own tells an operator which log (or key file) to look at and what is wrong.

use std::path::PathBuf;
use std::sync::Arc;

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
    /// The end of the log is not one an honest writer leaves, so new records (and the
    /// checkpoint signed over them) would extend, and vouch for, a chain that may be forged or
    /// cut: the last record does not match its hash, does not link to the one before, or
    /// disagrees with the head marker; records follow the newest checkpoint (every writer
    /// signs one with each commit, so they were added without the key); the newest checkpoint
    /// is not signed by this writer's key; or a record this writer committed is gone or
    /// changed. Refused unless the log was opened with `AuditConfig::allow_tampered_tail`.
    #[error(
        "{}: record {seq}: {detail}; refusing to append to a log whose end does not verify",
        path.display()
    )]
    TamperedTail {
        /// The file.
        path: PathBuf,
        /// The sequence number where the problem was found.
        seq: u64,
        /// What is wrong.
        detail: String,
    },
    /// The log is signed (it has checkpoints), but this writer has no signing key: its records
    /// would be covered by no checkpoint, and every writer with the key would then refuse
    /// the log as tampered.
    #[error(
        "{}: the log is signed (its newest checkpoint is by key {key_id}); appending without the signing key would leave records no checkpoint vouches for",
        path.display()
    )]
    KeyRequired {
        /// The file.
        path: PathBuf,
        /// The id of the key that signed the newest checkpoint.
        key_id: String,
    },
    /// The log was written by an older Warden (format version 1) whose records do not keep
    /// the action's context. It can still be verified, queried and exported, but not
    /// appended to: start a new log beside it.
    #[error(
        "{}: audit log format version {found} is read-only for this build (it appends to version {current}); verify and keep it, and write new records to a new log",
        path.display()
    )]
    OldFormat {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: i64,
        /// The version this build writes.
        current: i64,
    },
    /// The directory that should hold a new log does not exist.
    #[error("{}: cannot create the audit log: directory {} does not exist", path.display(), dir.display())]
    NoDirectory {
        /// The log the caller asked for.
        path: PathBuf,
        /// The missing directory.
        dir: PathBuf,
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
    #[error("{}: audit record could not be written: {source}", path.display())]
    WriteFailed {
        /// The log.
        path: PathBuf,
        /// What the writer reported.
        #[source]
        source: WriteError,
    },
    /// The log was closed, or its writer thread stopped.
    #[error("{}: audit log is closed: {detail}", path.display())]
    Closed {
        /// The log.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// A key file or key string could not be used.
    #[error("{}: {detail}", path.display())]
    Key {
        /// The key file (or `<argument>` for a key given on the command line).
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A secret signing key was given where a public key is expected (to pin a verifier).
    #[error(
        "{}: this is a secret signing key; pass the public key ({})",
        path.display(),
        public.display()
    )]
    SecretKeyGiven {
        /// The secret key file.
        path: PathBuf,
        /// Where its public key is (or would be) kept.
        public: PathBuf,
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

/// Why a batch of records could not be committed. Cloned to every append of the batch.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum WriteError {
    /// An SQLite call failed (disk full, I/O error, the write lock held by another
    /// connection beyond `busy_timeout`, …).
    #[error("{what}: {source}")]
    Sqlite {
        /// What was being done.
        what: &'static str,
        /// SQLite's error.
        #[source]
        source: Arc<rusqlite::Error>,
    },
    /// The end of the log is not one an honest writer leaves (see
    /// [`AuditError::TamperedTail`]): someone edited the file while it was open.
    #[error("record {seq}: {detail}")]
    TamperedTail {
        /// Where.
        seq: u64,
        /// What is wrong.
        detail: String,
    },
    /// The log is signed and this writer has no key (see [`AuditError::KeyRequired`]).
    #[error(
        "the log is signed (its newest checkpoint is by key {key_id}) and this writer has no signing key"
    )]
    KeyRequired {
        /// The id of the key that signed the newest checkpoint.
        key_id: String,
    },
    /// The writer thread stopped (closed or panicked) before committing the record.
    #[error("the audit writer stopped before committing the record")]
    WriterStopped,
    /// Buffered mode refuses appends while commits fail; this was the last failure.
    #[error("writes are failing: {0}")]
    Failing(Box<WriteError>),
}

impl WriteError {
    pub(crate) fn sqlite(what: &'static str) -> impl FnOnce(rusqlite::Error) -> WriteError {
        move |source| WriteError::Sqlite {
            what,
            source: Arc::new(source),
        }
    }
}

impl AuditError {
    /// A writer's error as the caller sees it: a damaged end keeps its own variant.
    pub(crate) fn from_write(path: PathBuf, e: WriteError) -> AuditError {
        match e {
            WriteError::TamperedTail { seq, detail } => {
                AuditError::TamperedTail { path, seq, detail }
            }
            WriteError::KeyRequired { key_id } => AuditError::KeyRequired { path, key_id },
            source => AuditError::WriteFailed { path, source },
        }
    }

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
