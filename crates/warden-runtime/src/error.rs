//! What can go wrong in the runtime's durable state.

use std::path::{Path, PathBuf};

use thiserror::Error;
use warden_audit::AuditError;

/// An operation on the runtime's state that could not be done. Nothing was changed unless
/// the variant says so.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The Warden database could not be opened (not a Warden file, unreadable, …).
    #[error(transparent)]
    Open(#[from] AuditError),
    /// A statement on the database failed.
    #[error("{path}: {what}: {source}")]
    Db {
        /// The database.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A row holds something Warden never writes.
    #[error("{path}: the runtime state is damaged: {detail}")]
    Corrupt {
        /// The database.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Bad input from the operator (an empty reason, a bad glob, an unknown ring).
    #[error("{0}")]
    Invalid(String),
    /// The change was made but its audit record could not be written.
    #[error("the change was made, but its audit record could not be written: {0}")]
    Unrecorded(AuditError),
    /// The audit record of a revival or elevation could not be written, so it was not made.
    #[error("nothing was changed: the audit record could not be written first: {0}")]
    NotRecorded(AuditError),
    /// This runtime keeps its state in memory only, and the operation needs the database.
    #[error("this runtime has no database")]
    NoDatabase,
    /// Another process took over the saga this one was working on (it judged this one
    /// dead): this one stops before it starts anything more of it.
    #[error("saga `{saga}` was taken over by {}: this process stops working on it", owner.as_deref().unwrap_or("nobody"))]
    TakenOver {
        /// The saga.
        saga: String,
        /// Its owner now, as the journal names it.
        owner: Option<String>,
    },
}

impl RuntimeError {
    pub(crate) fn db(
        path: &Path,
        what: &'static str,
    ) -> impl FnOnce(rusqlite::Error) -> RuntimeError {
        let path = path.to_path_buf();
        move |source| RuntimeError::Db { path, what, source }
    }
}
